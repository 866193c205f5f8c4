"""Store leader elections on a starved machine, per Raft timing: the cost of each setting.

Run from the repository root::

    python -m bench.elections                                # 50/300 ms against 100/1000 ms
    python -m bench.elections --timings 50:300,100:1000 --repeats 3 --seconds 30 --hogs 4

The question. A follower that hears no heartbeat for its election timeout starts an
election; a new term deposes the leader, and the writes in flight fail or wait. On a
two-core machine shared with test suites the store members are descheduled for hundreds
of milliseconds at a time, so a short timeout elects leaders that nothing was wrong with
(the cluster benchmark saw the store reach term 41 within minutes). A longer one costs
failover time when a leader really dies (``bench.recovery``, store leader SIGKILL).

What it does. For each repeat and each timing (``HEARTBEAT:ELECTION`` in milliseconds,
etcd's ``--heartbeat-interval`` and ``--election-timeout``; taken in turn, so the machine's
load is shared between them), it starts a 3-member ``raftsman store`` cluster with those
flags, starts ``--hogs`` processes that spin on the CPU (in their own process groups) to
starve the machine as a busy test suite does, and runs ``--clients`` concurrent writers
of 256-byte values for ``--seconds``. Counted: the store's Raft term before and after
(every election adds one, failed ones too), the leader changes the members saw, writes
per second, write latency, and writes that failed. Everything it started is stopped by
process group when the run ends, however it ends.

Writes ``bench/results/elections_results.json`` and ``.md`` (``--json``, ``--markdown``).
Nothing here asserts a number; the machine's load is printed with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from bench.cluster.machine import ROOT, this_machine
from bench.cluster.stats import Summary, summarize
from proto import rpc
from raftstore.client import open_client
from tests.support import processes
from tests.support.raftstore import StoreCluster, raftstore_cluster

RESULTS = ROOT / "bench" / "results"
VALUE = b"v" * 256
KEYS = 1000
HOG = "while True: pass"


@dataclass(frozen=True)
class Timing:
    heartbeat_ms: int
    election_ms: int

    @property
    def label(self) -> str:
        return f"heartbeat {self.heartbeat_ms} ms, election {self.election_ms} ms"

    def flags(self) -> tuple[str, ...]:
        return (
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_ms}",
        )


@dataclass
class Run:
    timing: Timing
    repeat: int
    load_average: float
    elections: int
    leader_changes: int | None
    """Leader changes seen in the members' logs (the most any member saw), if logged."""
    writes_per_second: float
    latency: Summary
    failed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_timings(text: str) -> list[Timing]:
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        heartbeat, sep, election = item.partition(":")
        if not sep or not heartbeat.isdigit() or not election.isdigit():
            raise ValueError(f"--timings: {item!r} is not HEARTBEAT_MS:ELECTION_MS, e.g. 100:1000")
        timing = Timing(int(heartbeat), int(election))
        if timing.heartbeat_ms < 1 or timing.election_ms < 5 * timing.heartbeat_ms:
            raise ValueError(
                f"--timings: {item!r}: the election timeout must be at least 5 heartbeats"
            )
        out.append(timing)
    if not out:
        raise ValueError("--timings: give at least one HEARTBEAT_MS:ELECTION_MS")
    return out


@contextmanager
def hogs(count: int, work_dir: Path) -> Iterator[None]:
    """``count`` processes spinning on the CPU, stopped by process group on exit."""
    with ExitStack() as stack:
        for i in range(count):
            stack.enter_context(
                processes.running(
                    [sys.executable, "-c", HOG], log_path=work_dir / f"hog-{i}.log", grace=1
                )
            )
        yield


def _term(cluster: StoreCluster) -> int:
    terms = [s.raftTerm for s in (m.status() for m in cluster.members) if s is not None]
    return max(terms, default=0)


def _leader_changes(cluster: StoreCluster) -> int | None:
    """Leader changes the members logged (raftstore.replication.observe), the most seen."""
    seen = []
    for member in cluster.members:
        try:
            text = member.log_path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        seen.append(text.count(": leader at term "))
    return max(seen) if any(seen) else None


async def _write_load(
    endpoints: Sequence[str], *, clients: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds

    async def writer(client: Any) -> None:
        nonlocal failed
        while time.monotonic() < deadline:
            key = f"/bench/elections/{random.randrange(KEYS)}"
            began = time.monotonic()
            try:
                with trio.fail_after(10):
                    await client.put(key, VALUE)
            except (rpc.RpcError, trio.TooSlowError):
                failed += 1
                continue
            latencies.append(time.monotonic() - began)

    async with open_client(list(endpoints), timeout=10) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(writer, client)
    return latencies, failed


def run_one(timing: Timing, repeat: int, args: argparse.Namespace, work_dir: Path) -> Run:
    directory = work_dir / f"{timing.heartbeat_ms}-{timing.election_ms}-{repeat}"
    load = os.getloadavg()[0]
    print(f"[{timing.label} #{repeat}] load average {load:.1f}", file=sys.stderr, flush=True)
    with raftstore_cluster(directory, size=3, extra_args=timing.flags()) as cluster:
        with hogs(args.hogs, directory):
            before = _term(cluster)
            latencies, failed = rpc.run(
                lambda: _write_load(cluster.endpoints, clients=args.clients, seconds=args.seconds)
            )
            after = _term(cluster)
        changes = _leader_changes(cluster)
    run = Run(
        timing=timing,
        repeat=repeat,
        load_average=load,
        elections=after - before,
        leader_changes=None if changes is None else changes - 1,  # the first leader
        writes_per_second=len(latencies) / args.seconds,
        latency=summarize(latencies),
        failed=failed,
    )
    print(
        f"[{timing.label} #{repeat}] elections {run.elections}, "
        f"{run.writes_per_second:.0f} writes/s, p99 {run.latency.p99 * 1000:.0f} ms, "
        f"failed {run.failed}",
        file=sys.stderr,
        flush=True,
    )
    return run


def markdown(runs: list[Run], args: argparse.Namespace, machine_line: str) -> str:
    lines = [
        "## Store elections under CPU starvation (`python -m bench.elections`)",
        "",
        f"Machine: {machine_line}. 3 `raftsman store` members, {args.hogs} CPU-spinning "
        f"processes beside them, {args.clients} concurrent writers of 256 B for "
        f"{args.seconds:g} s per run; timings taken in turn, {args.repeats} repeats.",
        "",
        "| heartbeat / election timeout | load at start (per run) | elections (per run) "
        "| writes/s (median) | write p50 / p99 (median) | failed writes (per run) |",
        "|---|---|---|---:|---:|---|",
    ]
    for timing in dict.fromkeys(r.timing for r in runs):
        mine = [r for r in runs if r.timing == timing]
        lines.append(
            f"| {timing.heartbeat_ms} / {timing.election_ms} ms "
            f"| {', '.join(f'{r.load_average:.1f}' for r in mine)} "
            f"| {', '.join(str(r.elections) for r in mine)} "
            f"| {statistics.median(r.writes_per_second for r in mine):.0f} "
            f"| {statistics.median(r.latency.p50 for r in mine) * 1000:.0f} / "
            f"{statistics.median(r.latency.p99 for r in mine) * 1000:.0f} ms "
            f"| {', '.join(str(r.failed) for r in mine)} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.elections", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--timings", default="50:300,100:1000", help="HEARTBEAT_MS:ELECTION_MS,...")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hogs", type=int, default=4, help="CPU-spinning processes")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=RESULTS / "elections_results.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "elections_results.md")
    args = parser.parse_args(argv)
    try:
        args.timings = parse_timings(args.timings)
    except ValueError as exc:
        parser.error(str(exc))
    for name in ("repeats", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.hogs < 0 or args.seconds <= 0:
        parser.error("--hogs must be 0 or more and --seconds positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = this_machine()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="elections-") as tmp:
        work_dir = args.work_dir or Path(tmp)
        try:
            for repeat in range(1, args.repeats + 1):
                for timing in args.timings:
                    runs.append(run_one(timing, repeat, args, work_dir))
        except KeyboardInterrupt:
            print("interrupted; reporting the runs that finished", file=sys.stderr)
    if not runs:
        return 1
    text = markdown(runs, args, machine.line())
    print(text)
    for path in (args.json, args.markdown):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text + "\n")
    payload = {"machine": machine.as_dict(), "runs": [r.as_dict() for r in runs]}
    args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
