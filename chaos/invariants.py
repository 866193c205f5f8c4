"""Invariants: what must hold during and after an experiment, each a function with a verdict.

Store invariants are checked on a :class:`~chaos.workload.WorkloadResult` once the
workload has stopped and the store answers again:

* :func:`linearizable` -- the register history passes the Wing-Gong/Lowe checker
  (:mod:`chaos.linearizability`); "unknown" (the checker ran out of time) is reported as
  such and counts as a failure, because an unchecked history proves nothing.
* :func:`no_lost_writes` -- every append the store acknowledged is there, with its value,
  in a linearizable read of the whole prefix taken after the experiment.
* :func:`watch_continuity` -- the watch that ran through the experiment (resuming across
  endpoint failures and whole-store outages) delivered every revision of the prefix once,
  in order: its events equal a fresh replay of the same revisions from the store, and
  include every acknowledged write.

Cluster invariants need node agents and are checked while the experiment runs:

* :class:`PodPlacement` -- no pod (namespace/name) has running containers on two nodes at
  once, sampled from each node agent's container state (the process runtime's files
  under the agent's data directory), i.e. from what really runs, not from the API.
* :func:`deployment_available` -- a Deployment is back at its desired number of Running
  (and Ready) pods within a bound.

Every check returns an :class:`InvariantResult`: a name, a verdict and a one-paragraph
detail that says what was violated, with the offending keys or pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from chaos.linearizability import check
from chaos.workload import WorkloadResult
from proto import rpc
from raftstore.client import EventType, open_client


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def linearizable(result: WorkloadResult, *, timeout: float = 60.0) -> InvariantResult:
    checked = check(result.history, timeout=timeout)
    return InvariantResult("linearizable", checked.ok, checked.explain())


async def _read_prefix(
    endpoints: Sequence[str], prefix: str, *, timeout: float
) -> tuple[int, dict[str, str]]:
    """A linearizable read of everything under ``prefix``, retried until ``timeout``."""
    with trio.fail_after(timeout):
        async with open_client(endpoints, timeout=3.0) as store:
            while True:
                try:
                    got = await store.get(prefix, prefix=True)
                except rpc.RpcError:
                    await trio.sleep(0.2)
                    continue
                return got.revision, {kv.key.decode(): kv.value.decode() for kv in got.kvs}


async def no_lost_writes(
    endpoints: Sequence[str], result: WorkloadResult, *, timeout: float = 30.0
) -> InvariantResult:
    prefix = f"{result.config.prefix}ack/"
    _, found = await _read_prefix(endpoints, prefix, timeout=timeout)
    lost = sorted(k for k, v in result.acked.items() if found.get(k) != v)
    strangers = sorted(k for k in found if k not in result.acked and k not in result.maybe)
    applied = sum(1 for k in result.maybe if k in found)
    detail = (
        f"{len(result.acked)} acknowledged appends all present; {applied} of "
        f"{len(result.maybe)} indeterminate ones were applied"
    )
    problems = []
    if lost:
        problems.append(f"{len(lost)} acknowledged appends LOST: {', '.join(lost[:10])}")
    if strangers:
        problems.append(f"{len(strangers)} keys nobody wrote: {', '.join(strangers[:10])}")
    if problems:
        return InvariantResult("no-lost-writes", False, "; ".join(problems))
    return InvariantResult("no-lost-writes", True, detail)


async def _replay(
    endpoints: Sequence[str], prefix: str, start: int, end: int, *, timeout: float
) -> list[tuple[int, str, str, str]]:
    """The prefix's events from ``start`` through ``end``, from a fresh watch."""
    out: list[tuple[int, str, str, str]] = []
    if end < start:
        return out
    with trio.fail_after(timeout):
        async with (
            open_client(endpoints, timeout=3.0) as store,
            store.watch(prefix, prefix=True, start_revision=start) as watch,
        ):
            async for batch in watch:
                for event in batch.events:
                    kind = "PUT" if event.type is EventType.PUT else "DELETE"
                    out.append(
                        (event.revision, event.kv.key.decode(), kind, event.kv.value.decode())
                    )
                if batch.events and batch.events[-1].revision >= end:
                    break
    return [e for e in out if e[0] <= end]


async def watch_continuity(
    endpoints: Sequence[str], result: WorkloadResult, *, timeout: float = 30.0
) -> InvariantResult:
    name = "watch-continuity"
    if result.watch_error:
        return InvariantResult(name, False, f"the watch ended: {result.watch_error}")
    seen = [(e.revision, e.key, e.type, e.value) for e in result.watched]
    revisions = [e[0] for e in seen]
    problems = []
    if any(b <= a for a, b in zip(revisions, revisions[1:], strict=False)):
        dup = sorted({r for r in revisions if revisions.count(r) > 1})[:5]
        problems.append(f"revisions out of order or repeated (repeated: {dup})")
    last = revisions[-1] if revisions else result.start_revision - 1
    acked_seen = {r for r in result.acked_revisions if r <= last}
    missing_acked = sorted(acked_seen - set(revisions))
    if missing_acked:
        problems.append(
            f"acknowledged writes missing from the watch: revisions {missing_acked[:10]}"
        )
    replay = await _replay(
        endpoints, result.config.prefix, result.start_revision, last, timeout=timeout
    )
    if replay != seen:
        only_replay = sorted(set(replay) - set(seen))[:5]
        only_seen = sorted(set(seen) - set(replay))[:5]
        problems.append(
            f"the watch differs from a replay of revisions {result.start_revision}..{last}: "
            f"skipped {only_replay}, extra {only_seen}"
        )
    if problems:
        return InvariantResult(name, False, "; ".join(problems))
    return InvariantResult(
        name,
        True,
        f"{len(seen)} events from revision {result.start_revision} to {last}, "
        f"each once and in order, across {result.watch_reopens} reopens",
    )


async def store_invariants(
    endpoints: Sequence[str], result: WorkloadResult, *, timeout: float = 60.0
) -> list[InvariantResult]:
    """All three store invariants, in the order above."""
    out = [await trio.to_thread.run_sync(lambda: linearizable(result, timeout=timeout))]
    out.append(await no_lost_writes(endpoints, result, timeout=timeout))
    if result.config.watch:
        out.append(await watch_continuity(endpoints, result, timeout=timeout))
    return out


# --------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class RunningContainer:
    node: str
    pod: str
    """namespace/name"""
    pod_uid: str
    container: str
    pid: int | None


async def running_containers(nodes: dict[str, str]) -> list[RunningContainer]:
    """Every running container of the ``process`` runtime on ``nodes`` (name -> the node
    agent's data directory), read from the runtime's own state files."""
    from cli.launcher.pods import containers_dir
    from node_agent.runtime.process import ProcessRuntime

    out = []
    for node, data in sorted(nodes.items()):
        state = containers_dir(data)
        if not await trio.Path(state).is_dir():
            continue
        for info in await ProcessRuntime(state_dir=Path(state)).containers():
            if info.status.running:
                spec = info.spec
                out.append(
                    RunningContainer(
                        node=node,
                        pod=f"{spec.pod_namespace}/{spec.pod_name}",
                        pod_uid=spec.pod_uid,
                        container=spec.container_name,
                        pid=info.status.pid,
                    )
                )
    return out


async def orphans(api: Any, nodes: dict[str, str]) -> list[str]:
    """Running containers that should not run: their pod is gone, is being deleted, is
    another pod of the same name (other uid), or is bound to another node. Empty once
    every node agent has caught up with the API."""
    from actors.client import NotFound

    out = []
    for c in await running_containers(nodes):
        namespace, name = c.pod.split("/", 1)
        try:
            pod = await api.get("Pod", name, namespace=namespace)
        except NotFound:
            out.append(f"{c.pod} on {c.node}: the pod no longer exists")
            continue
        if pod.metadata.uid != c.pod_uid:
            out.append(f"{c.pod} on {c.node}: runs uid {c.pod_uid}, the pod is {pod.metadata.uid}")
        elif pod.metadata.HasField("deletion_timestamp"):
            out.append(f"{c.pod} on {c.node}: the pod is being deleted")
        elif pod.spec.node_name != c.node:
            out.append(f"{c.pod} on {c.node}: the pod is bound to {pod.spec.node_name!r}")
    return out


@dataclass
class PodPlacement:
    """Samples which node runs each pod; remembers every moment a pod ran on two nodes.

    ``nodes`` maps a node name to its agent's data directory. Run :meth:`run` in a nursery
    for the length of the experiment, then read :meth:`result`.
    """

    nodes: dict[str, str]
    period: float = 0.2
    samples: int = 0
    violations: list[str] = field(default_factory=list)

    async def sample(self) -> dict[str, set[str]]:
        """Pod (namespace/name) -> nodes with a running container of it, right now."""
        where: dict[str, set[str]] = {}
        for container in await running_containers(self.nodes):
            where.setdefault(container.pod, set()).add(container.node)
        self.samples += 1
        for pod, on in sorted(where.items()):
            if len(on) > 1:
                self.violations.append(f"{pod} running on {', '.join(sorted(on))}")
        return where

    async def run(self) -> None:
        while True:
            await self.sample()
            await trio.sleep(self.period)

    def result(self) -> InvariantResult:
        if self.violations:
            shown = "; ".join(sorted(set(self.violations))[:5])
            return InvariantResult("no-pod-on-two-nodes", False, shown)
        return InvariantResult(
            "no-pod-on-two-nodes", True, f"{self.samples} samples of {len(self.nodes)} nodes"
        )


async def deployment_pods(api: Any, namespace: str, name: str) -> tuple[int, list[Any]]:
    """The Deployment's desired replicas and its pods that are Running and Ready now."""
    from actors.controller import selector_matches

    deployment = await api.get("Deployment", name, namespace=namespace)
    desired = deployment.spec.replicas if deployment.spec.HasField("replicas") else 1
    pods = await api.list("Pod", namespace=namespace)
    running = [
        pod
        for pod in pods.items
        if selector_matches(deployment.spec.selector, pod.metadata.labels)
        and not pod.metadata.HasField("deletion_timestamp")
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    ]
    return desired, running


async def deployment_available(
    api: Any, namespace: str, name: str, *, bound: float
) -> tuple[InvariantResult, float]:
    """Wait up to ``bound`` seconds for the Deployment's Running+Ready pods to equal its
    desired replicas; the verdict and how long it took."""
    started = trio.current_time()
    detail = "never checked"
    with trio.move_on_after(bound):
        while True:
            try:
                desired, running = await deployment_pods(api, namespace, name)
                detail = f"{len(running)}/{desired} Running and Ready"
                if len(running) == desired:
                    took = trio.current_time() - started
                    return InvariantResult(
                        "deployment-available", True, f"{namespace}/{name}: {detail}"
                    ), took
            except rpc.RpcError as exc:
                detail = f"API error: {exc}"
            await trio.sleep(0.2)
    took = trio.current_time() - started
    return InvariantResult(
        "deployment-available", False, f"{namespace}/{name} after {bound:g}s: {detail}"
    ), took
