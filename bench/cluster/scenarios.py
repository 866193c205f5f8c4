"""The cluster benchmark's scenarios, each on a fresh ``raftsman up`` cluster.

* :func:`burst` -- a Deployment of ``pods`` replicas created at once, on ``nodes`` nodes
  (the process runtime's real node agents, or simulated nodes in one process). Measured:
  every pod's startup latency (:mod:`.pods`), pods bound and Running per second, the time
  until all are Running, API call latency while it happens (:mod:`.apiprobe`, simulated
  nodes only), leader changes of the scheduler and controller manager (their Leases'
  ``leaseTransitions``), and what every process costs (:mod:`.procs`) in three windows:
  nodes idle before the Deployment, during the burst, and ``settle`` seconds once all
  pods run. Optionally py-spy profiles (:mod:`.profile`) of the busiest processes during
  the burst.
* growth -- the same for several node counts: the nodes' idle cost, and with 10 pods
  per node where that stays within a pod budget (``pods=0``: nodes only; run by the
  command, :mod:`bench.cluster_bench`).

The benchmark's own process (the watch, the probes) runs beside the cluster on the same
2 cores; its CPU is reported as ``bench``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.client import (
    AlreadyExists,
    ApiClient,
    ApiError,
    ServiceUnavailable,
    Timeout,
    open_api_client,
)

from .apiprobe import ApiProbe
from .launch import LocalCluster, Member, local_cluster, sim_nodes, wait_nodes_ready
from .pods import PodTimeline, deployment_object, namespace_object
from .procs import Cost, CostMeter
from .profile import Profiler, StackSummary
from .stats import Summary

LEADER_LEASES = {
    "scheduler": "raftsman-scheduler",
    "controller-manager": "raftsman-controller-manager",
}
SIM_PREFIX = "sim"


@dataclass
class BurstResult:
    scenario: str
    runtime: str
    nodes: int
    pods: int
    running: int
    """Pods seen Running by the end (``pods`` unless the timeout passed first)."""
    seconds_to_all_running: float
    """From the Deployment's create to the last pod seen Running."""
    nodes_ready_seconds: float
    startup: Summary
    startup_started_at: Summary
    scheduling: Summary
    created_per_second: float
    bound_per_second: float
    running_per_second: float
    mutations: Summary | None
    lists: Summary | None
    api_errors: dict[str, int]
    leader_transitions: dict[str, int]
    watch_resumed: int
    store_elections: int | None = None
    """Raft terms the store went through during the burst (leader elections)."""
    leaders: list[str] = field(default_factory=list)
    """Processes that led (store, scheduler, controller manager) when the burst began."""
    idle_cost: list[Cost] = field(default_factory=list)
    burst_cost: list[Cost] = field(default_factory=list)
    settled_cost: list[Cost] = field(default_factory=list)
    profile: list[StackSummary] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _lease_transitions(api: ApiClient) -> dict[str, int]:
    out = {}
    for role, name in LEADER_LEASES.items():
        try:
            lease = await api.get("leases", name, namespace="kube-system")
        except ApiError:
            continue
        out[role] = int(lease.spec.lease_transitions)
    return out


async def _create_once(api: ApiClient, obj: Any) -> None:
    """Create ``obj``; a create that timed out may have happened, so look before retrying."""
    for _ in range(5):
        try:
            await api.create(obj)
            return
        except AlreadyExists:
            return
        except (Timeout, ServiceUnavailable) as exc:
            print(f"create {obj.metadata.name}: {exc}; retrying", file=sys.stderr)
    raise RuntimeError(f"could not create {obj.kind} {obj.metadata.name}")


async def _measure(meter: CostMeter, seconds: float) -> list[Cost]:
    meter.start()
    deadline = trio.current_time() + seconds
    while trio.current_time() < deadline:
        await trio.sleep(min(1.0, max(0.0, deadline - trio.current_time())))
        meter.poll()
    return meter.stop()


def _profiled(members: list[Member], sim_pid: int | None) -> dict[str, int]:
    """The processes worth profiling: every API server, the store leader, the leading
    scheduler and controller manager, the simulated nodes."""
    out = {}
    for m in members:
        if not m.pid or m.state != "up":
            continue
        if m.role == "apiserver" or (
            m.leader and m.role in ("store", "scheduler", "controller-manager")
        ):
            out[m.name] = m.pid
    if sim_pid is not None:
        out["sim-nodes"] = sim_pid
    return out


@dataclass(frozen=True)
class BurstOptions:
    runtime: str
    nodes: int
    pods: int
    work_dir: Path
    timeout: float = 600.0
    settle: float = 10.0
    probe: bool = True
    idle: bool = True
    profile_dir: Path | None = None
    keep: bool = False


async def burst(scenario: str, opts: BurstOptions) -> BurstResult:
    """Run one burst on a fresh cluster; see the module doc."""
    directory = opts.work_dir / scenario
    sim = opts.runtime == "sim"
    with ExitStack() as stack:
        print(f"[{scenario}] raftsman up --runtime {opts.runtime} ...", file=sys.stderr)
        cluster: LocalCluster = stack.enter_context(
            local_cluster(
                directory / "cluster",
                runtime=opts.runtime,
                nodes=0 if sim else opts.nodes,
                purge=not opts.keep,
            )
        )
        sim_pid = None
        agent = None
        if sim:
            agent = stack.enter_context(
                sim_nodes(cluster, count=opts.nodes, prefix=SIM_PREFIX, work_dir=directory)
            )
            sim_pid = agent.pid
        async with open_api_client(cluster.api_servers(), timeout=60) as api:
            print(f"[{scenario}] waiting for {opts.nodes} nodes ...", file=sys.stderr)
            ready_in = await wait_nodes_ready(
                api, count=opts.nodes, timeout=opts.timeout, alive=agent,
                prefix=f"{SIM_PREFIX}-" if sim else "",
            )  # fmt: skip
            members = cluster.status()
            pids = cluster.pids(members)
            if sim_pid is not None:
                pids["sim-nodes"] = sim_pid
            pids["bench"] = os.getpid()
            idle: list[Cost] = []
            if opts.idle:
                idle = await _measure(CostMeter(pids), opts.settle)
            term = await cluster.store_term(members)
            if opts.pods:
                result = await _run_burst(scenario, opts, api, pids, members, sim_pid)
            else:
                result = _nodes_only(scenario, opts, members)
            after = await cluster.store_term(members)
            if term is not None and after is not None:
                result.store_elections = after - term
            result.nodes_ready_seconds = ready_in
            result.idle_cost = idle
            if opts.pods and result.running == opts.pods:
                print(f"[{scenario}] settled cost ({opts.settle:g} s) ...", file=sys.stderr)
                result.settled_cost = await _measure(CostMeter(pids), opts.settle)
            return result
    raise AssertionError("unreachable")  # pragma: no cover


def _nodes_only(scenario: str, opts: BurstOptions, members: list[Member]) -> BurstResult:
    """A result with no burst: the nodes' idle cost is all there is to report."""
    empty = Summary(count=0, p50=math.nan, p90=math.nan, p99=math.nan, max=math.nan)
    return BurstResult(
        scenario=scenario,
        runtime=opts.runtime,
        nodes=opts.nodes,
        pods=0,
        running=0,
        seconds_to_all_running=math.nan,
        nodes_ready_seconds=math.nan,
        startup=empty,
        startup_started_at=empty,
        scheduling=empty,
        created_per_second=math.nan,
        bound_per_second=math.nan,
        running_per_second=math.nan,
        mutations=None,
        lists=None,
        api_errors={},
        leader_transitions={},
        watch_resumed=0,
        leaders=[m.name for m in members if m.leader],
    )


async def _run_burst(
    scenario: str,
    opts: BurstOptions,
    api: ApiClient,
    pids: dict[str, int],
    members: list[Member],
    sim_pid: int | None,
) -> BurstResult:
    namespace = "bench"
    await _create_once(api, namespace_object(namespace))
    timeline = PodTimeline(expected=opts.pods)
    probe = ApiProbe(namespace=namespace) if opts.probe else None
    meter = CostMeter(pids)
    profiler = None
    if opts.profile_dir is not None and Profiler.available():
        profiler = Profiler(_profiled(members, sim_pid), opts.profile_dir / scenario)
    transitions_before = await _lease_transitions(api)
    print(f"[{scenario}] Deployment of {opts.pods} pods ...", file=sys.stderr)
    burst_cost: list[Cost] = []
    profile: list[StackSummary] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(timeline.follow, api, namespace)
        if probe is not None:
            nursery.start_soon(probe.run, api)
        meter.start()
        if profiler is not None:
            profiler.start()
        t0 = time.time()
        try:
            await _create_once(api, deployment_object("burst", namespace, opts.pods))
            with trio.move_on_after(opts.timeout):
                while not timeline.all_running.is_set():
                    with trio.move_on_after(1.0):
                        await timeline.all_running.wait()
                    meter.poll()
                    print(
                        f"[{scenario}] {time.time() - t0:5.0f} s  created {len(timeline.created)}"
                        f"  bound {len(timeline.bound)}  running {len(timeline.running)}",
                        file=sys.stderr,
                    )
        finally:
            burst_cost = meter.stop()
            if profiler is not None:
                profile = profiler.stop()
        nursery.cancel_scope.cancel()
    transitions_after = await _lease_transitions(api)
    last = max(timeline.running.values(), default=math.nan)
    return BurstResult(
        scenario=scenario,
        runtime=opts.runtime,
        nodes=opts.nodes,
        pods=opts.pods,
        running=len(timeline.running),
        seconds_to_all_running=last - t0,
        nodes_ready_seconds=math.nan,
        startup=timeline.startup(),
        startup_started_at=timeline.startup_by_started_at(),
        scheduling=timeline.scheduling(),
        created_per_second=timeline.created_per_second(),
        bound_per_second=timeline.bound_per_second(),
        running_per_second=timeline.running_per_second(),
        mutations=probe.mutation_summary() if probe else None,
        lists=probe.list_summary() if probe else None,
        api_errors=dict(probe.errors) if probe else {},
        leader_transitions={
            k: transitions_after[k] - transitions_before.get(k, 0) for k in transitions_after
        },
        watch_resumed=timeline.resumed,
        leaders=[m.name for m in members if m.leader],
        burst_cost=burst_cost,
        profile=profile,
    )
