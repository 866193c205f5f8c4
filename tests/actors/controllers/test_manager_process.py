"""``raftsman controller-manager`` as real processes: two replicas, one acts; SIGKILL the
one that acts and the other takes over."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from actors.client import ApiClient, open_api_client
from tests.actors.controllers.conftest import make, pod_template, wait_until
from tests.support import processes
from tests.support.apiserver import apiserver_process

ROOT = Path(__file__).resolve().parents[3]


def manager_argv(server: str, identity: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "controller-manager",
        f"--server={server}",
        "--controllers=replicaset",
        f"--identity={identity}",
        "--lease-duration=2",
        "--renew-deadline=1.5",
        "--retry-period=0.3",
    ]


def a_replica_set(name: str, ns: str, replicas: int) -> Any:
    rs = make("ReplicaSet", name, ns)
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = name
    pod_template(rs.spec.template, app=name)
    return rs


async def pods_of(api: ApiClient, ns: str, name: str) -> int:
    listed = await api.list("Pod", namespace=ns)
    return sum(1 for p in listed.items if p.metadata.name.startswith(name + "-"))


async def holder(api: ApiClient) -> str:
    lease: Any = await api.get("Lease", "raftsman-controller-manager", namespace="kube-system")
    return str(lease.spec.holder_identity)


async def test_killed_leader_is_replaced(store: tuple[str, ...], tmp_path: Path) -> None:
    with apiserver_process(store, tmp_path) as server:
        managers = {
            name: processes.start(
                manager_argv(server.address, name), log_path=tmp_path / f"{name}.log", cwd=ROOT
            )
            for name in ("cm-a", "cm-b")
        }
        try:
            async with open_api_client(server.address, timeout=10) as api:
                ns = "cmproc"
                await api.create(make("Namespace", ns))
                await api.create(a_replica_set("one", ns, 2))
                await wait_until(lambda: _equals(pods_of(api, ns, "one"), 2), timeout=30)
                leader = await holder(api)
                assert leader in managers
                managers[leader].kill()  # SIGKILL: no release, the lease must expire
                survivor = next(n for n in managers if n != leader)
                await wait_until(lambda: _equals(holder(api), survivor), timeout=15)
                await api.create(a_replica_set("two", ns, 3))
                await wait_until(lambda: _equals(pods_of(api, ns, "two"), 3), timeout=15)
                assert managers[survivor].alive
        finally:
            for process in managers.values():
                process.stop()
        log = managers[survivor].log_text()
        assert "component=controller-manager" in log


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
