"""How fast the scheduler binds a burst of pending pods: pods bound per second, and each
pod's latency from created to bound.

Run from the repository root::

    python -m bench.scheduler_bench                        # 100 nodes, 1000 pods
    python -m bench.scheduler_bench --nodes 20 --pods 200  # a quick look
    python -m bench.scheduler_bench --json r.json --markdown r.md

What it does. It starts a raftstore member (``raftsman store``) and an API server
(``raftsman apiserver``) as processes on free loopback ports (the helpers in
:mod:`tests.support`), creates ``--nodes`` Node objects through the API server -- Ready,
allocatable 32 cpu / 64Gi / 110 pods, like simulated nodes (nothing runs the pods) -- and
then measures two scenarios, each in its own namespace:

* **burst** -- the scheduler runs; the benchmark creates ``--pods`` pods (requests 100m /
  128Mi) as fast as ``--create-concurrency`` concurrent creates go. This is a
  ReplicaSet scaled up: creation and scheduling overlap.
* **backlog** -- ``--pods`` pods are created while no scheduler runs; then the scheduler
  starts and drains them. This is a scheduler that just took over a busy cluster.

A third scenario, **algorithm**, runs first and alone: the same pods placed on the same
nodes in this process by the scheduling framework only (filter, score, assume; no API
server, no writes), to show what the scheduler's own decisions cost. Its "latency" is
the time of one decision.

The scheduler is a ``raftsman scheduler --no-leader-elect`` process (``--in-process``
runs it inside the benchmark instead, e.g. to profile it with py-spy's ``--subprocesses``
off). A watch on the namespace timestamps every pod twice: when its ADDED event arrives
("created") and when an event shows it bound. Throughput is pods / (last bound - first
created) for the burst, pods / (last bound - first bound) for the backlog (its time to
start is reported apart). Latency percentiles are over bound - created per pod.

CPU: seconds of CPU each process used during the scenario (``/proc/<pid>/stat``), in %
of one core over the scenario's wall time; the machine has 2 cores shared by all of
them and by the benchmark itself (creates and the watch). "CPU per pod" adds up all of
them per pod bound: unlike the rates, it hardly depends on what else the machine runs, so
``2 cores / CPU per pod`` bounds the rate an otherwise idle machine could reach.

The pods of the first scenario stay bound while the second runs (each node holds 10 of
the 2,000 pods, far from full), so the second starts on a cluster that is not empty.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from actors.client import ApiClient, Conflict, EventType, open_api_client
from actors.scheduler import PodInfo, Scheduler, SchedulerCache, SchedulerConfig, schedule_pod
from actors.scheduler.plugins import DEFAULT_FILTERS, DEFAULT_SCORES
from cli.process import run_until_signalled
from proto.k8s import codec
from tests.support import processes
from tests.support.apiserver import apiserver_process
from tests.support.processes import async_wait_for
from tests.support.raftstore import raftstore_cluster

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of named processes (the benchmark itself as ``bench``)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {"bench": os.getpid(), **pids}

    def sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                out[name] = math.nan
        return out


@dataclass
class Result:
    scenario: str
    nodes: int
    pods: int
    bound: int
    pods_per_second: float
    create_per_second: float
    latency_p50: float
    latency_p90: float
    latency_p99: float
    latency_max: float
    seconds: float
    start_seconds: float
    cpu_percent: dict[str, float]
    cpu_ms_per_pod: float
    """CPU of every process (scheduler, API server, store, benchmark) per pod bound."""


# --------------------------------------------------------------------------- objects


def node_object(name: str) -> Any:
    alloc = {"cpu": "32", "memory": "64Gi", "pods": "110"}
    return codec.decode(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {
                "allocatable": alloc,
                "capacity": alloc,
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    ).obj


def pod_object(name: str, namespace: str) -> Any:
    return codec.decode(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    }
                ]
            },
        }
    ).obj


async def create_all(api: ApiClient, objects: Sequence[Any], concurrency: int) -> float:
    """Create ``objects`` with ``concurrency`` tasks; the seconds it took."""
    started = trio.current_time()
    pending = iter(objects)

    async def worker() -> None:
        for obj in pending:
            for attempt in range(10):
                try:
                    await api.create(obj)
                    break
                except Conflict:  # e.g. racing pod CIDR allocations of new Nodes
                    if attempt == 9:
                        raise
                    await trio.sleep(0.05 * (attempt + 1))

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return trio.current_time() - started


async def create_namespace(api: ApiClient, name: str) -> None:
    await api.create(
        codec.decode({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).obj
    )


# --------------------------------------------------------------------------- watching


class Stamps:
    """When the watch first showed each pod, and first showed it bound."""

    def __init__(self, *, expected: int) -> None:
        self.added: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.all_bound = trio.Event()
        self.expected = expected

    async def follow(self, api: ApiClient, namespace: str, *, task_status: Any) -> None:
        listed = await api.list("pods", namespace=namespace)
        async with api.watch(
            "pods", namespace=namespace, resource_version=listed.resource_version
        ) as events:
            task_status.started()
            async for event in events:
                if event.type not in (EventType.ADDED, EventType.MODIFIED):
                    continue
                now = trio.current_time()
                name = event.object.metadata.name
                self.added.setdefault(name, now)
                if event.object.spec.node_name and name not in self.bound:
                    self.bound[name] = now
                    if len(self.bound) >= self.expected:
                        self.all_bound.set()


def latency_result(
    scenario: str,
    stamps: Stamps,
    *,
    nodes: int,
    pods: int,
    created_in: float,
    start_seconds: float,
    window_start: float,
    cpu: dict[str, float],
    wall: float,
) -> Result:
    latencies = sorted(stamps.bound[n] - stamps.added[n] for n in stamps.bound if n in stamps.added)
    last = max(stamps.bound.values())
    span = last - window_start
    return Result(
        scenario=scenario,
        nodes=nodes,
        pods=pods,
        bound=len(stamps.bound),
        pods_per_second=len(stamps.bound) / span if span > 0 else math.nan,
        create_per_second=pods / created_in if created_in > 0 else math.nan,
        latency_p50=percentile(latencies, 50),
        latency_p90=percentile(latencies, 90),
        latency_p99=percentile(latencies, 99),
        latency_max=latencies[-1] if latencies else math.nan,
        seconds=span,
        start_seconds=start_seconds,
        cpu_percent={k: 100 * v / wall if wall > 0 else math.nan for k, v in cpu.items()},
        cpu_ms_per_pod=1000 * sum(v for v in cpu.values() if not math.isnan(v)) / max(1, pods),
    )


# --------------------------------------------------------------------------- the scheduler


class SchedulerRunner:
    """Starts the scheduler as a process (or in-process) and stops it."""

    def __init__(self, server: str, work_dir: Path, *, in_process: bool, bind_concurrency: int):
        self.server = server
        self.work_dir = work_dir
        self.in_process = in_process
        self.bind_concurrency = bind_concurrency
        self.pid: int | None = None

    @contextmanager
    def process(self) -> Iterator[processes.Process]:
        argv = [
            sys.executable, "-m", "cli.main", "scheduler", f"--server={self.server}",
            "--no-leader-elect", f"--bind-concurrency={self.bind_concurrency}",
        ]  # fmt: skip
        with processes.running(argv, log_path=self.work_dir / "scheduler.log", cwd=ROOT) as proc:
            self.pid = proc.pid
            yield proc

    async def run_in_process(self, api: ApiClient, *, task_status: Any) -> None:
        """Until cancelled (the scenario's nursery ends)."""
        config = SchedulerConfig(bind_concurrency=self.bind_concurrency)
        await Scheduler(api, config=config).run(task_status=task_status)

    def meter_pids(self, pids: dict[str, int]) -> dict[str, int]:
        """What to measure: in-process, the scheduler's CPU is the benchmark's."""
        if self.in_process or self.pid is None:
            return pids
        return {**pids, "scheduler": self.pid}


async def wait_ready(api: ApiClient, namespace: str) -> None:
    """Until a probe pod in ``namespace`` is bound: the scheduler has synced and works."""
    await create_namespace(api, namespace)
    await api.create(pod_object("probe", namespace))

    async def bound() -> bool:
        return bool((await api.get("pods", "probe", namespace=namespace)).spec.node_name)

    await async_wait_for(bound, timeout=60, message="the probe pod to be bound")


# --------------------------------------------------------------------------- scenarios


async def run_scenario(
    scenario: str,
    args: argparse.Namespace,
    api: ApiClient,
    runner: SchedulerRunner,
    pids: dict[str, int],
) -> Result:
    namespace = f"bench-{scenario}"
    await create_namespace(api, namespace)
    pods = [pod_object(f"pod-{i:05}", namespace) for i in range(args.pods)]
    print(f"{scenario}: {args.pods} pods ...", file=sys.stderr)
    stamps = Stamps(expected=args.pods)
    async with trio.open_nursery() as nursery:
        await nursery.start(stamps.follow, api, namespace)
        with ExitStack() as scheduler_running:

            async def start_scheduler() -> None:
                if runner.in_process:
                    await nursery.start(runner.run_in_process, api)
                else:
                    scheduler_running.enter_context(runner.process())

            if scenario == "burst":
                await start_scheduler()
                await wait_ready(api, f"{namespace}-probe")
                meter = CpuMeter(runner.meter_pids(pids))
                before, t0 = meter.sample(), trio.current_time()
                created_in = await create_all(api, pods, args.create_concurrency)
            else:
                created_in = await create_all(api, pods, args.create_concurrency)
                before, t0 = CpuMeter(pids).sample(), trio.current_time()
                await start_scheduler()
                meter = CpuMeter(runner.meter_pids(pids))
                before.setdefault("scheduler", 0.0)  # a process started after t0
            with trio.fail_after(TIMEOUT):
                await stamps.all_bound.wait()
            after = meter.sample()
            wall = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    # Backlog: from launching the scheduler to its first bind (start-up, list, first pod).
    start_seconds = min(stamps.bound.values()) - t0 if scenario == "backlog" else 0.0
    window_start = min(stamps.added.values() if scenario == "burst" else stamps.bound.values())
    return latency_result(
        scenario,
        stamps,
        nodes=args.nodes,
        pods=args.pods,
        created_in=created_in,
        start_seconds=start_seconds,
        window_start=window_start,
        cpu={k: after[k] - before.get(k, 0.0) for k in after},
        wall=wall,
    )


def algorithm_result(args: argparse.Namespace) -> Result:
    """Decisions only, in this process, no API server: what one scheduler core can do."""
    cache = SchedulerCache()
    for i in range(args.nodes):
        cache.add_node(node_object(f"node-{i:04}"))
    pods = [pod_object(f"pod-{i:05}", "bench-algorithm") for i in range(args.pods)]
    rng = random.Random(1)
    times = []
    cpu_before, started = time.process_time(), time.perf_counter()
    for pod in pods:
        t = time.perf_counter()
        info = PodInfo.of(pod)
        decision = schedule_pod(
            info, cache, filters=DEFAULT_FILTERS, scores=DEFAULT_SCORES, rng=rng
        )
        assert decision.node is not None, decision.message
        cache.assume(info, decision.node)
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    times.sort()
    return Result(
        scenario="algorithm",
        nodes=args.nodes,
        pods=args.pods,
        bound=len(times),
        pods_per_second=len(times) / wall,
        create_per_second=math.nan,
        latency_p50=percentile(times, 50),
        latency_p90=percentile(times, 90),
        latency_p99=percentile(times, 99),
        latency_max=times[-1],
        seconds=wall,
        start_seconds=0.0,
        cpu_percent={"bench": 100 * cpu / wall},
        cpu_ms_per_pod=1000 * cpu / len(times),
    )


async def run(args: argparse.Namespace, work_dir: Path) -> list[Result]:
    results: list[Result] = []
    if "algorithm" in args.scenarios:
        print(f"algorithm: {args.pods} decisions ...", file=sys.stderr)
        results.append(algorithm_result(args))
    served = [s for s in args.scenarios if s != "algorithm"]
    if not served:
        return results
    with ExitStack() as stack:
        store = stack.enter_context(raftstore_cluster(work_dir / "store", size=1))
        server = stack.enter_context(apiserver_process(store.endpoints, work_dir))
        member = store.members[0].process
        assert member is not None
        pids = {"store": member.pid, "apiserver": server.process.pid}
        runner = SchedulerRunner(
            server.address,
            work_dir,
            in_process=args.in_process,
            bind_concurrency=args.bind_concurrency,
        )
        async with open_api_client(server.address, timeout=60) as api:
            print(f"creating {args.nodes} nodes ...", file=sys.stderr)
            await create_all(api, [node_object(f"node-{i:04}") for i in range(args.nodes)], 4)
            for scenario in served:
                results.append(await run_scenario(scenario, args, api, runner, pids))
    return results


# --------------------------------------------------------------------------- reports


def machine_line(args: argparse.Namespace) -> str:
    cpu = "unknown CPU"
    for text in Path("/proc/cpuinfo").read_text().splitlines():
        if text.startswith("model name"):
            cpu = text.split(":", 1)[1].strip()
            break
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        rev = "?"
    load = os.getloadavg()[0]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = "in-process" if args.in_process else "a `raftsman scheduler` process"
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, raftsman {rev}, "
        f"{when}; load average {load:.1f} at start. One raftstore member and one API server "
        f"(processes), the scheduler {where}, bind concurrency {args.bind_concurrency}, "
        f"{args.create_concurrency} concurrent creates."
    )


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:,.0f} ms"


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.0f}"


def markdown(results: Sequence[Result], header: str) -> str:
    lines = [
        header,
        "",
        "| scenario | nodes | pods | pods bound/s | creates/s | latency p50 | p90 | p99 | max | "
        "time to bind all | CPU % (scheduler / apiserver / store / bench) | CPU per pod |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        cpu = " / ".join(
            _number(r.cpu_percent.get(k, math.nan))
            for k in ("scheduler", "apiserver", "store", "bench")
        )
        start = f" (+{r.start_seconds:.1f} s start)" if r.start_seconds else ""
        lines.append(
            f"| {r.scenario} | {r.nodes} | {r.pods} | {_number(r.pods_per_second)} | "
            f"{_number(r.create_per_second)} | {_ms(r.latency_p50)} | {_ms(r.latency_p90)} | "
            f"{_ms(r.latency_p99)} | {_ms(r.latency_max)} | {r.seconds:.2f} s{start} | {cpu} | "
            f"{r.cpu_ms_per_pod:.1f} ms |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scheduler_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument(
        "--scenarios",
        default="algorithm,burst,backlog",
        help="comma-separated: algorithm, burst, backlog",
    )
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--bind-concurrency", type=int, default=32)
    parser.add_argument(
        "--in-process", action="store_true", help="run the scheduler in this process"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "scheduler_results.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "bench" / "scheduler_results.md")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in args.scenarios:
        if s not in ("algorithm", "burst", "backlog"):
            parser.error(
                f"--scenarios: unknown scenario {s!r} (choose from algorithm, burst, backlog)"
            )
    if args.nodes < 1 or args.pods < 1:
        parser.error("--nodes and --pods must be at least 1")
    return args


def _no_nan(value: Any) -> Any:
    """NaN (a figure that does not apply) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    header = machine_line(args)
    results: list[Result] = []

    async def go() -> None:
        with tempfile.TemporaryDirectory(prefix="scheduler-bench-") as tmp:
            work_dir = args.work_dir or Path(tmp)
            work_dir.mkdir(parents=True, exist_ok=True)
            results.extend(await run(args, work_dir))

    run_until_signalled(go)
    if not results:
        return 1
    text = markdown(results, header)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        doc = {"machine": header, "results": [_no_nan(asdict(r)) for r in results]}
        args.json.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
