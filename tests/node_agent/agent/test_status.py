"""The status manager on a fake API and trio's fake clock: coalescing and its limits."""

from __future__ import annotations

import trio

from actors.client import Conflict, NotFound, ServiceUnavailable
from node_agent.agent.status import StatusManager
from proto.k8s import core_pb2


class SlowApi:
    """Takes ``latency`` seconds per write; records writes and the most in flight at once."""

    def __init__(self, latency: float = 0.05) -> None:
        self.latency = latency
        self.writes: list[tuple[float, str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_with: list[Exception] = []

    async def update_status(self, obj: core_pb2.Pod) -> core_pb2.Pod:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(self.latency)
            if self.fail_with:
                raise self.fail_with.pop(0)
            self.writes.append((trio.current_time(), obj.metadata.name, obj.status.message))
            return obj
        finally:
            self.in_flight -= 1


def pod(name: str = "p", uid: str = "u1") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "ns", uid
    return p


def status(message: str) -> core_pb2.PodStatus:
    return core_pb2.PodStatus(phase="Running", message=message)


async def test_a_flapping_pod_is_written_at_most_every_min_interval(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    api = SlowApi()
    manager = StatusManager(api, min_interval=0.1)
    await nursery.start(manager.run)
    start = trio.current_time()
    for i in range(1000):  # one change every millisecond for a second
        manager.set(pod(), status(str(i)))
        await trio.sleep(0.001)
    await manager.wait_idle()
    times = [t for t, _, _ in api.writes]
    assert len(times) <= 1.0 / 0.1 + 2
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    assert api.max_in_flight == 1
    assert api.writes[-1][2] == "999"  # latest wins
    assert times[0] - start < 0.1  # the first change goes out at once


async def test_pods_do_not_wait_for_each_other_and_duplicates_are_dropped(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    api = SlowApi(latency=1.0)
    manager = StatusManager(api, min_interval=0.1)
    await nursery.start(manager.run)
    for i in range(20):
        manager.set(pod(f"p{i}", f"u{i}"), status("same"))
    start = trio.current_time()
    await manager.wait_idle()
    assert trio.current_time() - start < 1.1  # all twenty in parallel
    assert api.max_in_flight == 20
    manager.set(pod("p0", "u0"), status("same"))
    await manager.wait_idle()
    assert len(api.writes) == 20


async def test_gone_pods_are_dropped_and_transient_errors_retried(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    api = SlowApi(latency=0.01)
    manager = StatusManager(api)
    await nursery.start(manager.run)
    api.fail_with = [ServiceUnavailable("down"), ServiceUnavailable("down")]
    manager.set(pod(), status("a"))
    await manager.wait_idle()
    assert [m for _, _, m in api.writes] == ["a"]
    assert manager.writes == 3

    api.fail_with = [NotFound('pods "q" not found')]
    manager.set(pod("q", "u2"), status("x"))
    await manager.wait_idle()
    manager.set(pod("q", "u2"), status("y"))  # a new entry: the old one was forgotten
    await manager.wait_idle()
    assert [m for _, n, m in api.writes if n == "q"] == ["y"]

    api.fail_with = [Conflict("uid mismatch")]
    manager.set(pod("r", "u3"), status("z"))
    await manager.wait_idle()
    assert [m for _, n, m in api.writes if n == "r"] == []


async def test_statuses_set_before_run_are_written_when_it_starts(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    api = SlowApi(latency=0.01)
    manager = StatusManager(api)
    manager.set(pod(), status("early"))
    await nursery.start(manager.run)
    await manager.wait_idle()
    assert [m for _, _, m in api.writes] == ["early"]
