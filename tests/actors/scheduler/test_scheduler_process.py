"""Two ``raftsman scheduler`` processes: one leads and schedules; kill -9 it and the
other takes over within the lease duration and schedules the next pod.

Real processes: a raftstore member, a ``raftsman apiserver`` and two schedulers with a
2 s lease, 1.5 s renew deadline and 0.3 s retry period.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from actors.client import ApiClient, NotFound, open_api_client
from actors.scheduler import LEASE_NAME
from tests.actors.scheduler import objects
from tests.support import processes
from tests.support.apiserver import apiserver_process
from tests.support.processes import WaitTimeout, async_wait_for
from tests.support.raftstore import raftstore_cluster

ROOT = Path(__file__).resolve().parents[3]
LEASE, RENEW, RETRY = 2.0, 1.5, 0.3


def scheduler_argv(server: str, identity: str) -> list[str]:
    return [
        sys.executable, "-m", "cli.main", "scheduler", f"--server={server}",
        f"--identity={identity}", f"--lease-duration={LEASE}", f"--renew-deadline={RENEW}",
        f"--retry-period={RETRY}",
    ]  # fmt: skip


async def holder(api: ApiClient) -> str:
    try:
        lease = await api.get("leases", LEASE_NAME, namespace="kube-system")
    except NotFound:
        return ""
    return str(lease.spec.holder_identity)


async def create_pod(api: ApiClient, name: str) -> None:
    p = objects.pod(name, cpu="100m")
    p.metadata.uid = ""
    await api.create(p)


async def bound_to(api: ApiClient, name: str) -> str:
    pod: Any = await api.get("pods", name, namespace="default")
    return str(pod.spec.node_name)


async def test_the_standby_takes_over_when_the_leader_is_killed(tmp_path: Path) -> None:
    with (
        raftstore_cluster(tmp_path / "store", size=1) as store,
        apiserver_process(store.endpoints, tmp_path) as server,
        processes.running(
            scheduler_argv(server.address, "a"), log_path=tmp_path / "a.log", cwd=ROOT
        ) as a,
        processes.running(
            scheduler_argv(server.address, "b"), log_path=tmp_path / "b.log", cwd=ROOT
        ) as b,
    ):

        async def wait(predicate: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
            try:
                return await async_wait_for(predicate, timeout=timeout, message=what)
            except WaitTimeout as exc:
                raise AssertionError(f"{exc}\na:\n{a.log_text()}\nb:\n{b.log_text()}") from None

        async with open_api_client(server.address) as api:
            await api.create(objects.node("n1"))
            leader_id = await wait(lambda: holder(api), 60, "a leader")
            assert leader_id in ("a", "b")
            leader, standby_id = (a, "b") if leader_id == "a" else (b, "a")

            await create_pod(api, "first")
            await wait(lambda: bound_to(api, "first"), 20, "the first pod bound")
            assert await holder(api) == leader_id  # one leader throughout

            leader.kill()
            killed_at = time.monotonic()
            await wait(lambda: _is(holder(api), standby_id), LEASE + 10, "the standby to lead")
            took = time.monotonic() - killed_at
            # A lease of silence, counted from when the standby saw the last renewal (up
            # to a retry period after it), plus a retry period to notice; 1 s for load.
            assert took < LEASE + 2 * RETRY + 1.0, f"took {took:.2f}s"

            await create_pod(api, "second")
            node = await wait(lambda: bound_to(api, "second"), 20, "the second pod bound")
            assert node == "n1"


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)
