"""What one API write costs the control plane: Lease renewals as fast as they go.

Most of what an idle cluster of simulated nodes does is renew node Leases (one Update per
node per second with ``raftsman up``'s timings), and every pod's life is a handful of
single-object writes too, so the CPU a write costs across the API server and the store
members bounds the whole cluster on a 2-core machine. This scenario measures exactly
that: ``raftsman up`` with stores and API servers only (no scheduler, controller manager
or node), ``leases`` Lease objects in ``kube-node-lease``, and ``concurrency`` client
tasks renewing them round-robin for ``seconds`` -- each renewal an Update carrying the
resourceVersion the client got back from its previous write, as a node agent does.

Reported: renewals per second, their latency, and CPU milliseconds per renewal of each
process (from ``/proc``, over the run) -- the last figure moves little with the load of a
shared machine, so it is the one to compare between two versions of the code.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.client import ApiClient, ApiError, Conflict, open_api_client
from proto.k8s import coordination_pb2

from .launch import local_cluster
from .procs import Cost, CostMeter
from .stats import Summary, summarize

NAMESPACE = "kube-node-lease"


@dataclass
class WriteResult:
    leases: int
    concurrency: int
    seconds: float
    writes: int
    conflicts: int
    errors: list[str]
    """Writes that failed otherwise (timeouts under load): not in the latencies."""
    writes_per_second: float
    latency: Summary
    cost: list[Cost] = field(default_factory=list)
    leaders: list[str] = field(default_factory=list)
    store_elections: int | None = None
    """Raft terms the store went through during the run (leader elections)."""

    def cpu_ms_per_write(self) -> dict[str, float]:
        return {c.name: 1000 * c.cpu_seconds / self.writes for c in self.cost if self.writes}

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cpu_ms_per_write"] = self.cpu_ms_per_write()
        return out


def _lease(name: str) -> coordination_pb2.Lease:
    lease = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
    lease.metadata.name = name
    lease.metadata.namespace = NAMESPACE
    lease.spec.holder_identity = name
    lease.spec.lease_duration_seconds = 40
    lease.spec.renew_time.FromDatetime(dt.datetime.now(dt.UTC))
    return lease


async def _renew_all(
    api: ApiClient, leases: list[coordination_pb2.Lease], *, concurrency: int, seconds: float
) -> tuple[list[float], int, list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    conflicts = 0
    deadline = trio.current_time() + seconds

    async def worker(first: int) -> None:
        nonlocal conflicts
        i = first
        while trio.current_time() < deadline:
            lease = coordination_pb2.Lease()
            lease.CopyFrom(leases[i])
            lease.spec.renew_time.FromDatetime(dt.datetime.now(dt.UTC))
            started = time.perf_counter()
            try:
                leases[i] = await api.update(lease)
            except Conflict:
                conflicts += 1
                leases[i] = await api.get(
                    coordination_pb2.Lease, lease.metadata.name, namespace=NAMESPACE
                )
                continue
            except ApiError as exc:  # a timeout under load, say: counted, not fatal
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)
            i = (i + concurrency) % len(leases)

    async with trio.open_nursery() as nursery:
        for first in range(concurrency):
            nursery.start_soon(worker, first)
    return latencies, conflicts, errors


async def run_writes(
    work_dir: Path,
    *,
    leases: int = 100,
    concurrency: int = 16,
    seconds: float = 20.0,
    keep: bool = False,
) -> WriteResult:
    """Run the scenario on a fresh cluster in ``work_dir``; see the module doc."""
    print("[writes] raftsman up (stores and API servers only) ...", file=sys.stderr)
    with local_cluster(
        work_dir / "writes" / "cluster",
        runtime="sim",
        nodes=0,
        purge=not keep,
        extra=["--schedulers=0", "--controller-managers=0"],
    ) as cluster:
        async with open_api_client(cluster.api_servers(), timeout=60) as api:
            created = [await api.create(_lease(f"bench-{i:04}")) for i in range(leases)]
            members = cluster.status()
            pids = cluster.pids(members)
            meter = CostMeter(pids)
            print(
                f"[writes] {concurrency} clients renewing {leases} Leases for {seconds:g} s ...",
                file=sys.stderr,
            )
            term = await cluster.store_term(members)
            meter.start()
            started = time.monotonic()
            latencies, conflicts, errors = await _renew_all(
                api, created, concurrency=concurrency, seconds=seconds
            )
            wall = time.monotonic() - started
            cost = meter.stop()
            after = await cluster.store_term(members)
    return WriteResult(
        leases=leases,
        concurrency=concurrency,
        seconds=wall,
        writes=len(latencies),
        conflicts=conflicts,
        errors=errors,
        writes_per_second=len(latencies) / wall if wall > 0 else float("nan"),
        latency=summarize(latencies),
        cost=cost,
        leaders=[m.name for m in members if m.leader],
        store_elections=None if term is None or after is None else after - term,
    )
