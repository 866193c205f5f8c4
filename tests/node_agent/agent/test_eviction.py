"""The emptyDir sizeLimit eviction monitor on trio's fake clock, with fake volumes and pods."""

from __future__ import annotations

import uuid

import pytest
import trio
import trio.testing

from node_agent.agent.eviction import (
    EVICTED,
    EvictionMonitor,
    emptydir_message,
    size_limits,
)
from proto.k8s import core_pb2

Ki, Mi = 1024, 1024 * 1024


def make_pod(name: str, volumes: dict[str, str | None], *, phase: str = "Running") -> core_pb2.Pod:
    """A pod with an emptyDir per entry of ``volumes`` (name -> sizeLimit or None)."""
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.metadata.uid = str(uuid.uuid4())
    pod.status.phase = phase
    for volume_name, limit in volumes.items():
        volume = pod.spec.volumes.add(name=volume_name)
        volume.empty_dir.SetInParent()
        if limit is not None:
            volume.empty_dir.size_limit = limit
    return pod


class FakeVolumes:
    """Usage by (uid, volume); records what was measured and with which bound."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], int] = {}
        self.measured: list[tuple[str, str, int | None]] = []
        self.broken: set[tuple[str, str]] = set()

    async def emptydir_usage(
        self, pod: core_pb2.Pod, name: str, *, stop_above: int | None = None
    ) -> int | None:
        await trio.lowlevel.checkpoint()
        key = (pod.metadata.uid, name)
        self.measured.append((pod.metadata.name, name, stop_above))
        if key in self.broken:
            raise PermissionError(13, "Permission denied")
        return self.used.get(key)


class FakeEvictions:
    def __init__(self, *, accept: bool = True) -> None:
        self.calls: list[tuple[float, str, str, str]] = []
        self.accept = accept

    def __call__(self, uid: str, reason: str, message: str) -> bool:
        self.calls.append((trio.current_time(), uid, reason, message))
        return self.accept


def test_the_message_is_the_kubelets() -> None:
    assert (
        emptydir_message("cache", "1Mi")
        == 'Usage of EmptyDir volume "cache" exceeds the limit "1Mi". '
    )


def test_size_limits_of_a_pod() -> None:
    pod = make_pod("p", {"a": "1Mi", "b": None, "c": "0", "d": "1.5Ki", "e": "lots"})
    pod.spec.volumes.add(name="cfg").config_map.name = "x"
    limits, problems = size_limits(pod)
    assert [(limit.volume, limit.limit, limit.text) for limit in limits] == [
        ("a", Mi, "1Mi"),
        ("d", 1536, "1.5Ki"),
    ]
    assert len(problems) == 1 and problems[0].startswith('emptyDir volume "e": sizeLimit: ')


async def test_a_pod_over_its_limit_is_evicted_at_the_next_check(
    autojump_clock: trio.testing.MockClock,
) -> None:
    volumes, evict = FakeVolumes(), FakeEvictions()
    hog, calm = make_pod("hog", {"scratch": "1Mi"}), make_pod("calm", {"scratch": "1Mi"})
    volumes.used[(calm.metadata.uid, "scratch")] = Mi  # at the limit is not over it
    monitor = EvictionMonitor(pods=lambda: [hog, calm], usage=volumes, evict=evict, period=2.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        await trio.sleep(5)  # checks at 0, 2, 4: nothing over
        assert evict.calls == []
        volumes.used[(hog.metadata.uid, "scratch")] = 2 * Mi
        await trio.sleep(5)  # checks at 6, 8
        nursery.cancel_scope.cancel()
    assert evict.calls == [
        (
            6.0,
            hog.metadata.uid,
            EVICTED,
            'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ',
        )
    ]
    [overuse] = monitor.evicted
    assert (overuse.pod, overuse.volume, overuse.used, overuse.limit) == (
        "default/hog",
        "scratch",
        2 * Mi,
        "1Mi",
    )
    # Measured with the limit as the bound (the walk may stop above it); the evicted pod
    # is not measured again.
    assert ("hog", "scratch", Mi) in volumes.measured
    assert [m for m in volumes.measured if m[0] == "hog"][-1] == ("hog", "scratch", Mi)
    assert len([m for m in volumes.measured if m[0] == "hog"]) == 4  # at 0, 2, 4, 6
    assert len([m for m in volumes.measured if m[0] == "calm"]) == 5  # at 0 .. 8


async def test_the_first_volume_over_its_limit_names_the_eviction(
    autojump_clock: trio.testing.MockClock,
) -> None:
    volumes, evict = FakeVolumes(), FakeEvictions()
    pod = make_pod("two", {"logs": "10Mi", "cache": "2Ki", "free": None})
    volumes.used[(pod.metadata.uid, "logs")] = 5 * Mi
    volumes.used[(pod.metadata.uid, "cache")] = 3 * Ki
    volumes.used[(pod.metadata.uid, "free")] = 50 * Mi
    monitor = EvictionMonitor(pods=lambda: [pod], usage=volumes, evict=evict)
    await monitor.check()
    assert [c[3] for c in evict.calls] == [emptydir_message("cache", "2Ki")]
    assert [m[1] for m in volumes.measured] == ["logs", "cache"]  # "free" has no limit


async def test_finished_deleted_and_unlimited_pods_are_not_measured(
    autojump_clock: trio.testing.MockClock,
) -> None:
    volumes, evict = FakeVolumes(), FakeEvictions()
    done = make_pod("done", {"s": "1Ki"}, phase="Succeeded")
    failed = make_pod("failed", {"s": "1Ki"}, phase="Failed")
    leaving = make_pod("leaving", {"s": "1Ki"})
    leaving.metadata.deletion_timestamp.GetCurrentTime()
    free = make_pod("free", {"s": None})
    for p in (done, failed, leaving, free):
        volumes.used[(p.metadata.uid, "s")] = Mi
    monitor = EvictionMonitor(
        pods=lambda: [done, failed, leaving, free], usage=volumes, evict=evict
    )
    assert await monitor.check() == []
    assert volumes.measured == [] and evict.calls == []


async def test_a_refused_eviction_is_tried_again_and_errors_do_not_stop_the_monitor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    volumes, evict = FakeVolumes(), FakeEvictions(accept=False)
    broken, hog = make_pod("broken", {"s": "1Ki"}), make_pod("hog", {"s": "1Ki"})
    volumes.broken.add((broken.metadata.uid, "s"))
    volumes.used[(hog.metadata.uid, "s")] = Mi
    monitor = EvictionMonitor(pods=lambda: [broken, hog], usage=volumes, evict=evict, period=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        await trio.sleep(1.5)  # checks at 0 and 1: the pod manager does not run "hog" yet
        evict.accept = True
        await trio.sleep(2)  # check at 2 evicts; at 3 nothing more
        nursery.cancel_scope.cancel()
    assert [(t, uid) for t, uid, _, _ in evict.calls] == [
        (0.0, hog.metadata.uid),
        (1.0, hog.metadata.uid),
        (2.0, hog.metadata.uid),
    ]
    assert len(monitor.evicted) == 1


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="the eviction period must be positive, got 0"):
        EvictionMonitor(pods=list, usage=FakeVolumes(), evict=FakeEvictions(), period=0)
