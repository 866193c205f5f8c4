"""Steady-state checks: what "the cluster has recovered" means, one small check each.

An experiment names the checks that define its steady state (``stores-ready``,
``leader: scheduler``, ``deployment: default/web``, ...). Before the first fault the
runner waits until all of them hold (the baseline); after each fault it polls them
until all hold again, and the time from the fault to that moment is the fault's
*time to recover*. A check is a frozen dataclass with an async ``probe(cluster)``
returning ``(ok, detail)``; it never raises for an unhealthy cluster (that is just
``ok=False`` with the reason), only for a malformed check.

=========================  ============================================================
``stores-ready``           every running store member answers and all name the same
                           leader, which is one of them; a majority of members runs
``store-writable``         a write through the store client succeeds within 3 s
``apiservers-serving``     every running API server's health check says SERVING
``processes-up``           every process of the plan runs (meaningful with restarts on)
``leader: ROLE``           ROLE's leader Lease names a running process of ROLE
``nodes-ready``            every running node agent's Node is Ready
``deployment: NS/NAME``    the Deployment's Running and Ready pods equal its replicas
=========================  ============================================================
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import trio

from chaos.cluster import ChaosError, Cluster
from cli.launcher.readiness import ready_nodes, statuses
from proto import rpc


class CheckError(ChaosError):
    """A steady-state check is malformed; the message says which and what is allowed."""


@dataclass(frozen=True)
class SteadyCheck(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        """Whether the check holds now, and why (or why not)."""

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class StoresReady(SteadyCheck):
    name: ClassVar[str] = "stores-ready"

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        planned = cluster.records("store")
        running = cluster.processes("store")
        if len(running) <= len(planned) // 2:
            return False, f"only {len(running)} of {len(planned)} store members run"
        endpoints = [p.endpoint("client") for p in running]
        found = await trio.to_thread.run_sync(partial(statuses, endpoints, timeout=1.0))
        if len(found) != len(endpoints):
            silent = sorted(set(endpoints) - set(found))
            return False, f"members at {', '.join(silent)} do not answer"
        leaders = {s.leader_id for s in found.values()}
        members = {s.member_id for s in found.values()}
        if len(leaders) != 1 or not leaders <= members:
            return False, f"members disagree on the leader ({len(leaders)} leaders named)"
        return True, f"{len(running)} members agree on one leader"


@dataclass(frozen=True)
class StoreWritable(SteadyCheck):
    name: ClassVar[str] = "store-writable"
    key: str = "/chaos/steady-state"
    timeout: float = 3.0

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        from raftstore.client import open_client

        endpoints = [p.endpoint("client") for p in cluster.processes("store")]
        if not endpoints:
            return False, "no store member runs"
        # As a client would: an attempt that fails or hangs moves on to the next member.
        errors = []
        async with open_client(endpoints, timeout=1.0) as store:
            with trio.move_on_after(self.timeout):
                while True:
                    try:
                        await store.put(self.key, "ok")
                    except rpc.RpcError as exc:
                        errors.append(f"{type(exc).__name__}")
                        await trio.sleep(0.05)
                        continue
                    return True, f"a write succeeded ({len(errors)} failed attempts first)"
        return False, f"no write succeeded within {self.timeout:g}s ({', '.join(errors[-3:])})"


@dataclass(frozen=True)
class ApiserversServing(SteadyCheck):
    name: ClassVar[str] = "apiservers-serving"

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        running = cluster.processes("apiserver")
        if not running:
            return False, "no API server runs"
        serving = await cluster.serving_apiservers()
        if len(serving) != len(running):
            names = sorted({p.name for p in running} - {p.name for p in serving})
            return False, f"not SERVING: {', '.join(names)}"
        return True, f"{len(serving)} SERVING"


@dataclass(frozen=True)
class ProcessesUp(SteadyCheck):
    name: ClassVar[str] = "processes-up"

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        running = {p.name for p in cluster.processes()}
        down = [r.name for r in cluster.records() if r.name not in running]
        if down:
            return False, f"down: {', '.join(down)}"
        return True, f"all {len(running)} processes run"


@dataclass(frozen=True)
class Leader(SteadyCheck):
    name: ClassVar[str] = "leader"
    role: str = "scheduler"

    def __post_init__(self) -> None:
        if self.role not in ("store", "scheduler", "controller-manager"):
            raise CheckError(
                f"leader: role must be store, scheduler or controller-manager, not {self.role!r}"
            )

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        leader = await cluster.leader(self.role)
        if leader is None:
            return False, f"no running {self.role} holds the lead"
        return True, f"{self.role} leader is {leader.name}"

    def describe(self) -> str:
        return f"leader: {self.role}"


@dataclass(frozen=True)
class NodesReady(SteadyCheck):
    name: ClassVar[str] = "nodes-ready"

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        nodes = {p.name for p in cluster.processes("node-agent")}
        for api in cluster.processes("apiserver"):
            ready = await trio.to_thread.run_sync(
                partial(ready_nodes, api.endpoint("api"), timeout=1.0)
            )
            if ready is None:
                continue
            missing = sorted(nodes - ready)
            if missing:
                return False, f"not Ready: {', '.join(missing)}"
            return True, f"{len(nodes)} nodes Ready"
        return False, "no API server answered"


@dataclass(frozen=True)
class DeploymentAvailable(SteadyCheck):
    name: ClassVar[str] = "deployment"
    namespace: str = "default"
    deployment: str = ""

    async def probe(self, cluster: Cluster) -> tuple[bool, str]:
        from actors.client import open_api_client
        from chaos.invariants import deployment_pods

        apis = [p.endpoint("api") for p in cluster.processes("apiserver")]
        if not apis:
            return False, "no API server runs"
        with trio.move_on_after(3.0):
            async with open_api_client(apis, timeout=2.0) as api:
                try:
                    desired, running = await deployment_pods(api, self.namespace, self.deployment)
                except rpc.RpcError as exc:
                    return False, f"API error: {exc}"
            ok = len(running) == desired
            return ok, f"{self.namespace}/{self.deployment}: {len(running)}/{desired} Running"
        return False, "the API did not answer within 3s"

    def describe(self) -> str:
        return f"deployment: {self.namespace}/{self.deployment}"


SIMPLE: Mapping[str, type[SteadyCheck]] = {
    cls.name: cls
    for cls in (StoresReady, StoreWritable, ApiserversServing, ProcessesUp, NodesReady)
}


def parse_check(spec: Any) -> SteadyCheck:
    """A check from its experiment-file form (see the module doc)."""
    if isinstance(spec, str):
        if spec in SIMPLE:
            return SIMPLE[spec]()
        raise CheckError(
            f"steady_state: unknown check {spec!r}; known: {', '.join(SIMPLE)}, "
            "leader: ROLE, deployment: NAMESPACE/NAME"
        )
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((kind, arg),) = spec.items()
        if kind == "leader":
            return Leader(role=str(arg))
        if kind == "deployment":
            namespace, _, name = str(arg).rpartition("/")
            if not name:
                raise CheckError(f"deployment: needs NAMESPACE/NAME, not {arg!r}")
            return DeploymentAvailable(namespace=namespace or "default", deployment=name)
    raise CheckError(f"steady_state: a check is a name or a one-key mapping, not {spec!r}")


async def probe_all(cluster: Cluster, checks: Sequence[SteadyCheck]) -> tuple[bool, list[str]]:
    """Run every check; whether all hold, and the detail of each that does not."""
    failing = []
    for check in checks:
        try:
            ok, detail = await check.probe(cluster)
        except (OSError, rpc.RpcError, ChaosError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            failing.append(f"{check.describe()}: {detail}")
    return not failing, failing


async def wait_steady(
    cluster: Cluster, checks: Sequence[SteadyCheck], *, timeout: float, period: float = 0.1
) -> tuple[bool, list[str]]:
    """Poll until every check holds or ``timeout`` passes; ``(held, last failures)``."""
    failing: list[str] = ["not checked yet"]
    with trio.move_on_after(timeout):
        while True:  # the cluster is other processes: poll it
            ok, failing = await probe_all(cluster, checks)
            if ok:
                return True, []
            await trio.sleep(period)
    return False, failing
