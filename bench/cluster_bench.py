"""Whole-cluster benchmarks: pod startup latency, throughput, API latency and cost.

Run from the repository root::

    python -m bench.cluster_bench                       # every scenario, ~4 minutes
    python -m bench.cluster_bench --scenarios sim       # 1,000 pods on 100 simulated nodes
    python -m bench.cluster_bench --scenarios process --process-pods 30
    python -m bench.cluster_bench --profile /tmp/prof   # py-spy the busiest processes

Scenarios (each on its own ``raftsman up`` cluster, stopped with ``raftsman down`` when it
ends, however it ends; see :mod:`bench.cluster.scenarios`):

* ``process`` -- a Deployment of 30 pods on the 3 node agents of the process runtime:
  real processes started through the whole path.
* ``sim`` -- a Deployment of 1,000 pods on 100 simulated nodes (one ``raftsman
  node-agent --runtime sim --sim-nodes 100`` process): startup latency, pods bound per
  second, time until all run, API call latency during the burst, and the cost of every
  process (idle nodes, burst, settled).
* ``growth`` -- other node counts (10 and 300 by default; 100 is the ``sim``
  scenario's): the nodes' idle cost, and their cost with 10 pods per node up to
  ``--growth-max-pods`` pods in all (so 300 nodes are measured idle only), for a table of
  how cost grows.
* ``writes`` -- stores and API servers alone, 16 clients renewing 100 Leases for 20 s:
  writes per second and the CPU one write costs each process
  (:mod:`bench.cluster.writes`), the figure to compare between versions of the code.

Writes ``bench/results/cluster_results.json`` and ``cluster_results.md`` (``--json``,
``--markdown``). Nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cluster import report
from bench.cluster.machine import ROOT, Machine, this_machine
from bench.cluster.scenarios import BurstOptions, BurstResult, burst
from bench.cluster.writes import WriteResult, run_writes
from cli.launcher.roles import LOCAL_TIMINGS
from cli.process import run_until_signalled

RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("writes", "process", "sim", "growth")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster_bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--process-pods", type=int, default=30)
    parser.add_argument("--process-nodes", type=int, default=3)
    parser.add_argument("--sim-nodes", type=int, default=100)
    parser.add_argument("--sim-pods", type=int, default=1000)
    parser.add_argument(
        "--growth", default="10,300", help="node counts of the growth scenario (10 pods each)"
    )
    parser.add_argument("--pods-per-node", type=int, default=10, help="growth scenario")
    parser.add_argument(
        "--growth-max-pods",
        type=int,
        default=1000,
        help="growth sizes that would need more pods run with idle nodes only",
    )
    parser.add_argument("--write-seconds", type=float, default=20.0, help="writes scenario")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of each cost window")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per burst")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output directory")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep cluster directories (logs)")
    parser.add_argument("--json", type=Path, default=RESULTS / "cluster_results.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "cluster_results.md")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in args.scenarios:
        if s not in SCENARIOS:
            parser.error(
                f"--scenarios: unknown scenario {s!r} (choose from {', '.join(SCENARIOS)})"
            )
    try:
        args.growth = [int(n) for n in args.growth.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--growth: node counts separated by commas, not {args.growth!r}")
    for name in ("process_pods", "process_nodes", "sim_nodes", "sim_pods", "pods_per_node"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if any(n < 1 for n in args.growth):
        parser.error("--growth: node counts must be at least 1")
    return args


async def run(
    args: argparse.Namespace, work_dir: Path, out: dict[str, Any], writes: list[WriteResult]
) -> None:
    def opts(runtime: str, nodes: int, pods: int, **kw: Any) -> BurstOptions:
        return BurstOptions(
            runtime=runtime, nodes=nodes, pods=pods, work_dir=work_dir, timeout=args.timeout,
            settle=args.settle, keep=args.keep, profile_dir=args.profile, **kw,
        )  # fmt: skip

    if "writes" in args.scenarios:
        writes.append(await run_writes(work_dir, seconds=args.write_seconds, keep=args.keep))
    if "process" in args.scenarios:
        out["process"] = await burst(
            "process",
            opts("process", args.process_nodes, args.process_pods, probe=False, idle=False),
        )
    if "sim" in args.scenarios:
        out["sim"] = await burst("sim", opts("sim", args.sim_nodes, args.sim_pods))
    if "growth" in args.scenarios:
        for nodes in args.growth:
            name = f"growth-{nodes}"
            pods = nodes * args.pods_per_node
            out[name] = await burst(
                name,
                opts("sim", nodes, pods if pods <= args.growth_max_pods else 0, probe=False),
            )


def markdown(
    machine: Machine,
    results: dict[str, BurstResult],
    writes: list[WriteResult],
    args: argparse.Namespace,
) -> str:
    bursts = [r for k, r in results.items() if not k.startswith("growth-")]
    parts = [
        "## Cluster benchmark (`python -m bench.cluster_bench`)",
        "",
        f"Machine: {machine.line()}. Clusters from `raftsman up` (3 stores, 2 API servers, "
        "2 schedulers, 2 controller managers, the launcher's local timings); simulated nodes "
        "in one `raftsman node-agent --runtime sim --sim-nodes N` process renewing their "
        f"Lease every {LOCAL_TIMINGS['node-lease-period']:g} s, as the launcher's node agents do.",
        "",
    ]
    if bursts:
        parts += [
            "### Pod startup latency",
            "",
            "Created (`creationTimestamp`) → the watch shows phase Running with every "
            "container running. *p99 by startedAt* ends at the runtime's "
            "`containerStatuses[].state.running.startedAt` instead.",
            "",
            report.startup_table(bursts),
            "",
            "### Throughput and API latency during the burst",
            "",
            "A Deployment created at once. Rates are from the watch: created/s over the "
            "creation span, bound/s over first to last bind, Running/s from the first "
            "creation to the last Running. API latency from a client probing during the "
            "burst (create, patch, delete of a ConfigMap every 0.5 s; LIST of the pods' "
            "namespace every second).",
            "",
            report.throughput_table(bursts),
            "",
        ]
    sim = results.get("sim")
    if sim is not None and sim.burst_cost:
        parts += [
            f"### Cost at {sim.nodes} simulated nodes / {sim.pods} pods",
            "",
            f"CPU in % of one core (2 cores = 200 %), from /proc: *idle nodes* = "
            f"{args.settle:g} s with the nodes and no pods, *burst* = from the Deployment's "
            f"create until all pods run, *settled* = {args.settle:g} s after that.",
            "",
            report.cost_table(sim, sim.leaders),
            "",
        ]
    growth = [r for k, r in results.items() if k.startswith("growth-")]
    if sim is not None and sim.settled_cost and growth:
        growth.append(sim)
    if growth:
        growth.sort(key=lambda r: r.nodes)
        parts += [
            "### Growth with the number of nodes",
            "",
            "Per role: CPU in % of one core summed over the role's processes (leaders do "
            f"the work) with the nodes idle, then settled with {args.pods_per_node} pods per "
            "node where that size ran pods; RSS of the role's largest process at the end.",
            "",
            report.growth_table(growth),
            "",
        ]
    for w in writes:
        parts += [
            "### Cost of one API write (Lease renewals, stores and API servers alone)",
            "",
            f"{w.concurrency} clients renewing {w.leases} Leases (Update with the last "
            f"resourceVersion, as node agents do) for {w.seconds:.0f} s; CPU from /proc over "
            "the run, divided by the writes.",
            "",
            report.writes_table(w),
            "",
        ]
    for r in results.values():
        section = report.profile_section(r)
        if section:
            parts += [section, ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = this_machine()
    results: dict[str, BurstResult] = {}
    writes: list[WriteResult] = []

    async def go() -> None:
        with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
            work_dir = args.work_dir or Path(tmp)
            work_dir.mkdir(parents=True, exist_ok=True)
            await run(args, work_dir, results, writes)

    try:
        run_until_signalled(go)
    finally:
        if results or writes:
            text = markdown(machine, results, writes, args)
            print(text)
            for path in (args.markdown, args.json):
                path.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(text)
            payload = {
                "machine": machine.as_dict(),
                "results": {k: r.as_dict() for k, r in results.items()},
                "writes": [w.as_dict() for w in writes],
            }
            args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 0 if results or writes else 1


if __name__ == "__main__":
    sys.exit(main())
