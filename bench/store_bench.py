"""raftstore against etcd: one client, one workload, a table side by side.

Run from the repository root::

    python -m bench.store_bench                 # ~2.5 minutes on 2 cores
    python -m bench.store_bench --quick         # ~45 seconds, noisier
    python -m bench.store_bench --json out.json --markdown out.md

What it does. For each target -- a 3-member raftstore (``raftsman store``) with its journal
flushed per write (the default) and with ``--unsafe-no-fsync``, and a 3-member etcd with its
WAL fsynced (the default) and with ``--unsafe-no-fsync`` -- it starts the cluster on free
loopback ports in a temporary directory, points the project's trio client
(:mod:`raftstore.client`) at the leader, runs the same phases, and stops the cluster by
process group before the next target starts, so targets never share the two cores. The
phases:

* sequential put latency: one task, one put at a time, 256-byte values;
* put throughput with 1, 16 and 64 concurrent clients, each for a fixed time;
* linearizable and serializable get throughput with 16 concurrent clients;
* watch delivery: a writer puts one key at a time, a watcher on a second connection
  timestamps each event; latency is from just before the put is sent until the event is
  received (so it contains the put's own commit latency).

Concurrency mirrors etcd's own ``benchmark`` tool with ``--conns=1 --clients=N``: N trio
tasks share one client (one HTTP/2 connection per endpoint), each issuing its next request
as soon as the last one answers. We chose it over N separate clients because ``--conns``
defaults to 1 in etcd's tool, so etcd's published numbers use this shape too. N clients were
not measured here. All requests go to the leader, for both stores: follower forwarding is a
separate question, and raftstore and etcd forward differently.

Reading the numbers. The client is Python (grpc.aio inside trio through trio-asyncio), and
it shares the two cores with the three members. Against etcd it is usually the bottleneck,
so etcd's figures here are a floor, not etcd's capacity, and ratios flatter raftstore. The
CPU table (client process and all members, in % of one core) tells which side is saturated.

Processes are started and stopped with the helpers in :mod:`tests.support`; every member
runs in its own process group and is stopped (SIGTERM, then SIGKILL) when its target ends,
on success, on error and on Ctrl-C or SIGTERM. The program runs under
:func:`cli.process.run_until_signalled` (``proto.rpc.run`` plus a signal receiver that
cancels the run).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from cli.process import run_until_signalled
from proto import rpc
from raftstore.client import Client, open_client
from tests.support.etcd import etcd_cluster
from tests.support.raftstore import raftstore_cluster

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SIZE = 3
VALUE_SIZE = 256
PUT_KEYSPACE = 10_000
CLIENT_TIMEOUT = 10.0
MAX_ERRORS = 1000  # a phase with more failed requests than this aborts the run


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, kw_only=True)
class Target:
    """One store configuration to measure."""

    name: str
    store: str  # "raftstore" or "etcd"
    unsafe_no_fsync: bool
    durability: str


TARGETS: tuple[Target, ...] = (
    Target(
        name="etcd",
        store="etcd",
        unsafe_no_fsync=False,
        durability="etcd 3.4 defaults: WAL fsynced before a write is acknowledged",
    ),
    Target(
        name="raftstore",
        store="raftstore",
        unsafe_no_fsync=False,
        durability=(
            "`raftsman store` default: journal msync'd per batch of appended entries "
            "before they are acknowledged (group commit), meta and snapshots fsynced "
            "(RaftConfig.fsync=True)"
        ),
    ),
    Target(
        name="etcd-nofsync",
        store="etcd",
        unsafe_no_fsync=True,
        durability="etcd --unsafe-no-fsync: WAL written, never fsynced",
    ),
    Target(
        name="raftstore-nofsync",
        store="raftstore",
        unsafe_no_fsync=True,
        durability="raftsman store --unsafe-no-fsync: journal written through mmap, never flushed",
    ),
)
TARGETS_BY_NAME = {t.name: t for t in TARGETS}

# Column pairs of the table: (raftstore target, etcd target), compared like with like.
PAIRS: tuple[tuple[str, str], ...] = (("raftstore", "etcd"), ("raftstore-nofsync", "etcd-nofsync"))


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


@contextmanager
def start_cluster(target: Target, base_dir: Path) -> Iterator[tuple[tuple[str, ...], list[int]]]:
    """The target's cluster, ready: ``(endpoints, member pids)``; stopped on exit.

    ``tests.support.etcd.etcd_cluster`` takes no extra flags, so etcd's
    ``--unsafe-no-fsync`` goes in through etcd's environment spelling of every flag
    (``ETCD_UNSAFE_NO_FSYNC``), set only while the members are spawned; etcd logs
    "recognized and used environment variable" for it.
    """
    if target.store == "raftstore":
        extra = ("--unsafe-no-fsync",) if target.unsafe_no_fsync else ()
        with raftstore_cluster(base_dir, size=CLUSTER_SIZE, extra_args=extra) as rs:
            pids = [m.process.pid for m in rs.members if m.process is not None]
            yield rs.endpoints, pids
        return
    with ExitStack() as stack:
        flag = _env("ETCD_UNSAFE_NO_FSYNC", "true") if target.unsafe_no_fsync else nullcontext()
        with flag:
            etcd = stack.enter_context(etcd_cluster(base_dir, size=CLUSTER_SIZE))
        yield etcd.endpoints, [m.process.pid for m in etcd.members]


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Latencies of one phase, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = sorted(s * 1000.0 for s in seconds)
        mean = sum(ms) / len(ms) if ms else math.nan
        return cls(
            count=len(ms),
            p50=percentile(ms, 0.50),
            p90=percentile(ms, 0.90),
            p99=percentile(ms, 0.99),
            mean=mean,
            max=ms[-1] if ms else math.nan,
        )


@dataclass(frozen=True)
class Cpu:
    """CPU used during a phase, in % of one core."""

    client: float
    members: float


@dataclass(frozen=True)
class Phase:
    """The outcome of one phase."""

    latency: Latency
    ops_per_s: float
    seconds: float
    errors: int
    cpu: Cpu


class CpuMeter:
    """CPU time of this process (all its threads) and of the member processes."""

    _TICK = float(os.sysconf("SC_CLK_TCK"))

    def __init__(self, pids: Sequence[int]) -> None:
        self._pids = tuple(pids)

    def _members(self) -> float:
        total = 0.0
        for pid in self._pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / self._TICK  # utime + stime
        return total

    def sample(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), self._members()

    @staticmethod
    def since(start: tuple[float, float, float], end: tuple[float, float, float]) -> Cpu:
        wall = max(end[0] - start[0], 1e-9)
        return Cpu(
            client=100.0 * (end[1] - start[1]) / wall,
            members=100.0 * (end[2] - start[2]) / wall,
        )


# --------------------------------------------------------------------------- phases


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How much work each phase does."""

    sequential_puts: int
    phase_seconds: float
    put_clients: tuple[int, ...]
    get_clients: int
    watch_events: int
    warmup_ops: int


FULL = Plan(
    sequential_puts=500,
    phase_seconds=6.0,
    put_clients=(1, 16, 64),
    get_clients=16,
    watch_events=300,
    warmup_ops=100,
)
QUICK = Plan(
    sequential_puts=250,
    phase_seconds=1.5,
    put_clients=(1, 16, 64),
    get_clients=16,
    watch_events=150,
    warmup_ops=30,
)


class PhaseFailed(RuntimeError):
    """Too many requests of a phase failed for its numbers to mean anything."""


Op = Callable[[int], Awaitable[object]]


async def run_sequential(op: Op, *, count: int, meter: CpuMeter) -> Phase:
    """``count`` requests one after another; every one must succeed."""
    latencies: list[float] = []
    start = meter.sample()
    for i in range(count):
        t0 = time.perf_counter()
        await op(i)
        latencies.append(time.perf_counter() - t0)
    end = meter.sample()
    elapsed = end[0] - start[0]
    return Phase(
        latency=Latency.of(latencies),
        ops_per_s=count / elapsed,
        seconds=elapsed,
        errors=0,
        cpu=CpuMeter.since(start, end),
    )


async def run_concurrent(op: Op, *, clients: int, seconds: float, meter: CpuMeter) -> Phase:
    """``clients`` tasks, each sending its next request when the last one answers, until
    ``seconds`` have passed; throughput counts the requests that succeeded."""
    latencies: list[float] = []
    errors: list[rpc.RpcError] = []
    numbers = itertools.count()
    start = meter.sample()
    deadline = start[0] + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await op(next(numbers))
            except rpc.RpcError as exc:  # StoreError and transport errors alike
                errors.append(exc)
                if len(errors) > MAX_ERRORS:
                    raise PhaseFailed(f"{len(errors)} requests failed, last: {exc!r}") from exc
                continue
            latencies.append(time.perf_counter() - t0)

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(worker)
    end = meter.sample()
    elapsed = end[0] - start[0]
    return Phase(
        latency=Latency.of(latencies),
        ops_per_s=len(latencies) / elapsed,
        seconds=elapsed,
        errors=len(errors),
        cpu=CpuMeter.since(start, end),
    )


async def run_watch(
    writer: Client, watcher: Client, *, count: int, value: bytes, meter: CpuMeter
) -> Phase:
    """Put ``count`` keys one at a time; latency from sending each put to its event."""
    prefix = "/bench/watch/"
    send, receive = trio.open_memory_channel[tuple[bytes, float]](count)
    latencies: list[float] = []
    async with watcher.watch(prefix, prefix=True) as watch:

        async def read_events() -> None:
            async for batch in watch:
                now = time.perf_counter()
                for event in batch.events:
                    await send.send((event.kv.key, now))

        start = meter.sample()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_events)
            for i in range(count):
                key = f"{prefix}{i:08d}".encode()
                t0 = time.perf_counter()
                await writer.put(key, value)
                with trio.fail_after(CLIENT_TIMEOUT):
                    while True:
                        got, received = await receive.receive()
                        if got == key:
                            break
                latencies.append(received - t0)
            nursery.cancel_scope.cancel()
        end = meter.sample()
    elapsed = end[0] - start[0]
    return Phase(
        latency=Latency.of(latencies),
        ops_per_s=count / elapsed,
        seconds=elapsed,
        errors=0,
        cpu=CpuMeter.since(start, end),
    )


async def leader_first(endpoints: Sequence[str]) -> list[str]:
    """``endpoints`` with the current leader's first (the client sends there)."""
    with trio.fail_after(30):
        while True:
            for endpoint in endpoints:
                try:
                    async with open_client([endpoint], timeout=2.0) as probe:
                        status = await probe.status()
                except rpc.RpcError:
                    continue
                if status.leader and status.leader == status.header.member_id:
                    return [endpoint, *(e for e in endpoints if e != endpoint)]
            await trio.sleep(0.1)


async def measure(endpoints: Sequence[str], pids: Sequence[int], plan: Plan) -> dict[str, Phase]:
    """Every phase against one running cluster, in a fixed order."""
    rng = random.Random(7)
    value = rng.randbytes(VALUE_SIZE)
    meter = CpuMeter(pids)
    ordered = await leader_first(endpoints)
    phases: dict[str, Phase] = {}
    async with (
        open_client(ordered, timeout=CLIENT_TIMEOUT) as client,
        open_client(ordered, timeout=CLIENT_TIMEOUT) as watcher,
    ):

        async def put_seq(i: int) -> None:
            await client.put(f"/bench/seq/{i:08d}", value)

        async def put_any(i: int) -> None:
            await client.put(f"/bench/put/{i % PUT_KEYSPACE:08d}", value)

        read_keys = [f"/bench/seq/{i:08d}" for i in range(plan.sequential_puts)]

        async def get_linearizable(i: int) -> None:
            await client.get(read_keys[i % len(read_keys)])

        async def get_serializable(i: int) -> None:
            await client.get(read_keys[i % len(read_keys)], serializable=True)

        for i in range(plan.warmup_ops):  # connections up, code paths warm
            await put_any(i)
            await client.get(f"/bench/put/{i:08d}")
        phases["put_sequential"] = await run_sequential(
            put_seq, count=plan.sequential_puts, meter=meter
        )
        for clients in plan.put_clients:
            phases[f"put_{clients}"] = await run_concurrent(
                put_any, clients=clients, seconds=plan.phase_seconds, meter=meter
            )
        phases["get_linearizable"] = await run_concurrent(
            get_linearizable, clients=plan.get_clients, seconds=plan.phase_seconds, meter=meter
        )
        phases["get_serializable"] = await run_concurrent(
            get_serializable, clients=plan.get_clients, seconds=plan.phase_seconds, meter=meter
        )
        phases["watch"] = await run_watch(
            client, watcher, count=plan.watch_events, value=value, meter=meter
        )
    return phases


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    label: str
    phase: str
    stat: str  # "p50", "p99" or "ops_per_s"
    unit: str


def table_rows(plan: Plan) -> list[Row]:
    rows = [
        Row(f"put latency p50, sequential ({VALUE_SIZE} B)", "put_sequential", "p50", "ms"),
        Row(f"put latency p99, sequential ({VALUE_SIZE} B)", "put_sequential", "p99", "ms"),
    ]
    rows += [
        Row(f"put throughput, {n} client{'s' if n > 1 else ''}", f"put_{n}", "ops_per_s", "ops/s")
        for n in plan.put_clients
    ]
    n = plan.get_clients
    rows += [
        Row(f"linearizable get, {n} clients", "get_linearizable", "ops_per_s", "ops/s"),
        Row(f"serializable get, {n} clients", "get_serializable", "ops_per_s", "ops/s"),
        Row("watch put→event latency p50", "watch", "p50", "ms"),
        Row("watch put→event latency p99", "watch", "p99", "ms"),
    ]
    return rows


def stat_of(phase: Phase, stat: str) -> float:
    if stat == "ops_per_s":
        return phase.ops_per_s
    value: float = getattr(phase.latency, stat)
    return value


def fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value:,.0f}"


def fmt_ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or not theirs or math.isnan(ours) or math.isnan(theirs):
        return "—"
    return f"{ours / theirs:.2f}×"


@dataclass
class Report:
    machine: dict[str, str]
    plan: Plan
    mode: str
    targets: list[Target] = field(default_factory=list)
    results: dict[str, dict[str, Phase]] = field(default_factory=dict)

    def value(self, target: str, row: Row) -> float | None:
        phases = self.results.get(target)
        if phases is None or row.phase not in phases:
            return None
        return stat_of(phases[row.phase], row.stat)

    def grid(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the main table."""
        pairs = [p for p in PAIRS if any(t in self.results for t in p)]
        header = ["metric"]
        for ours, theirs in pairs:
            header += [ours, theirs, "ratio"]
        body = []
        for row in table_rows(self.plan):
            cells = [f"{row.label} ({row.unit})" if row.unit == "ops/s" else row.label]
            for ours, theirs in pairs:
                a, b = self.value(ours, row), self.value(theirs, row)
                cells += [fmt(a, row.unit), fmt(b, row.unit), fmt_ratio(a, b)]
            body.append(cells)
        return header, body

    def cpu_grid(self) -> tuple[list[str], list[list[str]]]:
        names = [t.name for t in self.targets if t.name in self.results]
        header = ["phase (CPU % of one core: client / members)", *names]
        body = []
        for phase in next(iter(self.results.values()), {}):
            cells = [phase]
            for name in names:
                p = self.results[name].get(phase)
                cells.append("—" if p is None else f"{p.cpu.client:.0f} / {p.cpu.members:.0f}")
            body.append(cells)
        return header, body

    def errors(self) -> list[str]:
        return [
            f"{name} {phase}: {p.errors} failed requests"
            for name, phases in self.results.items()
            for phase, p in phases.items()
            if p.errors
        ]

    def machine_line(self) -> str:
        m = self.machine
        return (
            f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['etcd']}, "
            f"raftsman {m['commit']}, {m['date']}; load average {m['loadavg_1min_at_start']} "
            f"at start; disk fdatasync of 256 B p50 {m.get('fdatasync', '?')}"
        )

    def markdown(self) -> str:
        lines = [
            f"Machine: {self.machine_line()}",
            "",
            f"3 members each, all on loopback; {self.mode} run. One Python client "
            f"(`raftstore.client`) for both stores, every request to the leader; N clients "
            f"= N trio tasks sharing one client (etcd benchmark `--conns=1 --clients=N`). "
            f"Ratio = raftstore / etcd: above 1 is slower for latency, faster for throughput.",
            "",
        ]
        lines += _markdown_table(*self.grid())
        lines += ["", "Durability:", ""]
        lines += [f"- **{t.name}**: {t.durability}" for t in self.targets]
        lines += ["", "CPU during each phase (% of one core; 2 cores = 200):", ""]
        lines += _markdown_table(*self.cpu_grid())
        errors = self.errors()
        if errors:
            lines += ["", "Failed requests (excluded from throughput):", ""]
            lines += [f"- {e}" for e in errors]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        lines = [f"Machine: {self.machine_line()}", ""]
        lines += _text_table(*self.grid())
        lines += ["", "Ratio = raftstore / etcd (latency: lower is better; ops/s: higher)."]
        lines += ["", "Durability:"]
        lines += [f"  {t.name:18} {t.durability}" for t in self.targets]
        lines += [""]
        lines += _text_table(*self.cpu_grid())
        lines += [f"! {e}" for e in self.errors()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "mode": self.mode,
            "plan": asdict(self.plan),
            "value_size": VALUE_SIZE,
            "cluster_size": CLUSTER_SIZE,
            "targets": [asdict(t) for t in self.targets],
            "results": {
                name: {phase: asdict(p) for phase, p in phases.items()}
                for name, phases in self.results.items()
            },
        }


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def _text_table(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def output(argv: list[str]) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, check=True, cwd=ROOT, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    etcd = output(["etcd", "--version"]).splitlines()
    commit = output(["git", "rev-parse", "--short", "HEAD"]).strip() or "unknown"
    if output(["git", "status", "--porcelain", "--untracked-files=no"]).strip():
        commit += " (modified tree)"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "etcd": etcd[0].replace("Version: ", "") if etcd else "etcd unknown",
        "commit": commit,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "loadavg_1min_at_start": load,
    }


def disk_sync_latency(directory: Path, *, count: int = 200) -> Latency:
    """Latency of appending 256 bytes and ``fdatasync`` in ``directory``: what a flushed
    write costs this disk before any store adds its own work."""
    path = directory / "fdatasync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        latencies = []
        for _ in range(count):
            os.write(fd, b"\0" * VALUE_SIZE)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return Latency.of(latencies)


# --------------------------------------------------------------------------- main


async def run_targets(report: Report, work_dir: Path) -> None:
    for target in report.targets:
        base = work_dir / target.name
        print(f"[{target.name}] starting 3 members under {base}", file=sys.stderr, flush=True)
        began = time.perf_counter()
        # The helpers block while members start and stop; nothing else runs meanwhile.
        with start_cluster(target, base) as (endpoints, pids):
            print(f"[{target.name}] running phases", file=sys.stderr, flush=True)
            report.results[target.name] = await measure(endpoints, pids, report.plan)
        took = time.perf_counter() - began
        print(f"[{target.name}] done in {took:.0f}s", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="~45 seconds instead of ~2.5 minutes")
    parser.add_argument(
        "--targets",
        default=",".join(t.name for t in TARGETS),
        help="comma-separated subset of: %(default)s",
    )
    parser.add_argument("--seconds", type=float, help="duration of each throughput phase")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="also write the tables as Markdown"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="keep data and logs here (default: a temp dir, removed)"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.targets.split(",") if n not in TARGETS_BY_NAME]
    if unknown:
        parser.error(f"unknown targets {unknown}; choose from {sorted(TARGETS_BY_NAME)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.seconds is not None:
        plan = Plan(**{**asdict(plan), "phase_seconds": args.seconds})
    chosen = set(args.targets.split(","))
    report = Report(
        machine=machine(),
        plan=plan,
        mode="quick" if args.quick else "full",
        targets=[t for t in TARGETS if t.name in chosen],
    )
    began = time.perf_counter()
    with ExitStack() as stack:
        if args.work_dir is not None:
            work_dir = args.work_dir.resolve()
            work_dir.mkdir(parents=True, exist_ok=True)
        else:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="store-bench-")))
        sync = disk_sync_latency(work_dir)
        report.machine["fdatasync"] = f"{sync.p50:.2f} ms, p99 {sync.p99:.2f} ms"
        # SIGINT and SIGTERM cancel the run (trio's signal receiver, not KeyboardInterrupt,
        # which could land inside a grpc callback and be swallowed there), so the clusters'
        # finally blocks stop every member. A signal during a cluster's start-up takes
        # effect once the start-up returns: the helpers block.
        run_until_signalled(run_targets, report, work_dir)
        if len(report.results) < len(report.targets):
            print("interrupted; every member was stopped", file=sys.stderr)
            return 130
    print(f"total {time.perf_counter() - began:.0f}s\n", file=sys.stderr)
    print(report.text())
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
