"""Recovery times per fault type, measured on a real local cluster: min/median/max.

Run from the repository root::

    python -m bench.recovery                      # 5 repeats of every fault, ~4 minutes
    python -m bench.recovery --repeats 3 --faults store-leader-kill,apiserver-kill
    python -m bench.recovery --markdown bench/recovery_results.md --json bench/recovery_results.json

What it does. ``raftsman up`` starts one whole cluster in a temporary directory (3 stores,
2 API servers, 2 schedulers, 2 controller managers, 3 nodes, the supervisor restarting
whatever exits) and applies a Deployment of three pods. Then, for each fault type in
turn and each repeat, it waits until the cluster is fully healthy, injects the fault
through the chaos harness (:mod:`chaos.faults`, targets resolved by :mod:`chaos.cluster`),
and polls every 50 ms for two moments, both measured from the fault:

* **available** -- what a client of that component needs works again: a write through
  the store client (store faults), a Pod list through an API client holding every API
  server's address (API server), a leader Lease renewed *after* the kill by a running
  process (scheduler, controller manager), the Deployment back at three Running and
  Ready pods, none on the lost node (node agent loss);
* **recovered** -- available, and everything is back as before: every store member
  answering and agreeing on the leader, every API server SERVING, every planned process
  running, every node Ready (and, after a node loss, no container of a replaced pod left
  running on the node).

Resolution: each poll runs its checks one after another (a full check asks every store
member, API server and the Node list: tens of milliseconds on an idle machine, more
under load), so times carry that much granularity.

The node agent is "lost" by SIGSTOP (to the control plane a frozen agent and a dead one
look the same) and resumed once its pods were replaced, so the next repeat has three
nodes again; its *recovered* time includes the wait until its pods moved (it is
measured from the fault like the others), plus the agent's catching up after SIGCONT.

The timings are those of a local cluster (``raftsman up``'s LOCAL_TIMINGS, read from
cli/launcher/roles.py at run time), not Kubernetes' defaults; see docs/launcher.md. Nothing here asserts a number; the machine is shared, so
read the median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.client import ApiClient, open_api_client
from chaos.cluster import Cluster, Pick, Selector
from chaos.faults import Kill, Pause
from chaos.invariants import deployment_pods, orphans
from chaos.steady import (
    ApiserversServing,
    NodesReady,
    ProcessesUp,
    SteadyCheck,
    StoresReady,
    StoreWritable,
    probe_all,
    wait_steady,
)
from proto import rpc

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.05
TIMEOUT = 90.0
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bench
spec:
  replicas: 3
  selector:
    matchLabels: {app: bench}
  template:
    metadata:
      labels: {app: bench}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: python:3-slim
        command: ["python3", "-c", "import time\\nwhile True: time.sleep(1)"]
"""
FULL: tuple[SteadyCheck, ...] = (
    StoresReady(),
    StoreWritable(),
    ApiserversServing(),
    ProcessesUp(),
    NodesReady(),
)
LEASES = {
    "scheduler": ("kube-system", "raftsman-scheduler"),
    "controller-manager": ("kube-system", "raftsman-controller-manager"),
}


@dataclass
class Sample:
    available: float | None
    recovered: float | None


@dataclass
class FaultType:
    name: str
    label: str
    run: Callable[[Cluster, ApiClient], Awaitable[Sample]]
    samples: list[Sample] = field(default_factory=list)


async def _until(
    checks: dict[str, Callable[[], Awaitable[bool]]], *, started: float, timeout: float = TIMEOUT
) -> dict[str, float | None]:
    """Poll each named condition until it holds; seconds from ``started`` to the first
    time each held (None: not within ``timeout``)."""
    found: dict[str, float | None] = dict.fromkeys(checks)
    with trio.move_on_after(timeout):
        while any(v is None for v in found.values()):
            for name, check in checks.items():
                if found[name] is None:
                    try:
                        if await check():
                            found[name] = time.monotonic() - started
                    except (rpc.RpcError, OSError):
                        pass
            await trio.sleep(POLL)
    return found


async def _full(cluster: Cluster) -> bool:
    ok, _ = await probe_all(cluster, FULL)
    return ok


async def _writable(cluster: Cluster) -> bool:
    ok, _ = await StoreWritable().probe(cluster)
    return ok


def _store_fault(pick: Pick) -> Callable[[Cluster, ApiClient], Awaitable[Sample]]:
    async def run(cluster: Cluster, api: ApiClient) -> Sample:
        targets = await cluster.select(Selector(role="store", pick=pick))
        await Kill().start(cluster, targets)
        started = time.monotonic()
        found = await _until(
            {"available": lambda: _writable(cluster), "recovered": lambda: _full(cluster)},
            started=started,
        )  # _full includes a write
        return Sample(found["available"], found["recovered"])

    return run


async def _apiserver_kill(cluster: Cluster, api: ApiClient) -> Sample:
    targets = await cluster.select(Selector(role="apiserver"))
    await Kill().start(cluster, targets)
    started = time.monotonic()

    async def listable() -> bool:
        async with open_api_client(cluster.api_endpoints(), timeout=2.0) as fresh:
            await fresh.list("Pod", namespace="default")
        return True

    async def recovered() -> bool:
        return await _full(cluster) and await listable()

    found = await _until({"available": listable, "recovered": recovered}, started=started)
    return Sample(found["available"], found["recovered"])


def _leader_kill(role: str) -> Callable[[Cluster, ApiClient], Awaitable[Sample]]:
    namespace, lease_name = LEASES[role]

    async def run(cluster: Cluster, api: ApiClient) -> Sample:
        targets = await cluster.select(Selector(role=role, pick=Pick.LEADER))
        killed_at = dt.datetime.now(dt.UTC)
        await Kill().start(cluster, targets)
        started = time.monotonic()

        async def renewed() -> bool:
            lease: Any = await api.get("Lease", lease_name, namespace=namespace)
            holder = lease.spec.holder_identity
            running = {p.name: p for p in cluster.processes(role)}
            if holder not in running or running[holder].pid == targets[0].pid:
                return False
            return bool(lease.spec.renew_time.ToDatetime(dt.UTC) > killed_at)

        async def recovered() -> bool:
            return await _full(cluster) and await renewed()

        found = await _until({"available": renewed, "recovered": recovered}, started=started)
        return Sample(found["available"], found["recovered"])

    return run


async def _node_loss(cluster: Cluster, api: ApiClient) -> Sample:
    pods = (await deployment_pods(api, "default", "bench"))[1]
    used = sorted({p.spec.node_name for p in pods})
    [victim] = await cluster.select(Selector(role="node-agent", name=used[0]))
    heal = await Pause(duration=0).start(cluster, [victim])
    assert heal is not None
    started = time.monotonic()

    async def moved() -> bool:
        desired, running = await deployment_pods(api, "default", "bench")
        return len(running) == desired and all(p.spec.node_name != victim.name for p in running)

    try:
        found = await _until({"available": moved}, started=started)
    finally:
        await heal()
    nodes = {r.name: r.data for r in cluster.records("node-agent") if r.data}

    async def clean() -> bool:
        return await _full(cluster) and not await orphans(api, nodes)

    after = await _until({"recovered": clean}, started=started)
    return Sample(found["available"], after["recovered"])


FAULTS: dict[str, tuple[str, Callable[[Cluster, ApiClient], Awaitable[Sample]]]] = {
    "store-leader-kill": ("store leader SIGKILL", _store_fault(Pick.LEADER)),
    "store-follower-kill": ("store follower SIGKILL", _store_fault(Pick.FOLLOWER)),
    "store-all-kill": ("whole store SIGKILL (all members at once)", _store_fault(Pick.ALL)),
    "apiserver-kill": ("API server SIGKILL (1 of 2)", _apiserver_kill),
    "scheduler-leader-kill": ("scheduler leader SIGKILL", _leader_kill("scheduler")),
    "controller-manager-leader-kill": (
        "controller-manager leader SIGKILL",
        _leader_kill("controller-manager"),
    ),
    "node-agent-loss": ("node agent lost (SIGSTOP) with pods on it", _node_loss),
}


def _cli(*args: str, timeout: float = 180.0) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(f"raftsman {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


async def measure(directory: Path, faults: list[FaultType], repeats: int) -> None:
    cluster = Cluster(directory)
    async with open_api_client(cluster.api_endpoints(), timeout=3.0) as api:
        for fault in faults:
            for i in range(repeats):
                ok, failing = await wait_steady(cluster, FULL, timeout=TIMEOUT)
                if not ok:
                    raise RuntimeError(f"cluster not healthy before {fault.name}: {failing}")
                await _wait_deployment(api)
                sample = await fault.run(cluster, api)
                if sample.available is not None and sample.recovered is not None:
                    # "recovered" implies "available" for every fault; a poll that checked
                    # available just before it turned true must not report it later.
                    sample.available = min(sample.available, sample.recovered)
                fault.samples.append(sample)
                print(
                    f"{fault.name:<32} #{i + 1}: available {_fmt(sample.available)} s, "
                    f"recovered {_fmt(sample.recovered)} s",
                    flush=True,
                )


async def _wait_deployment(api: ApiClient) -> None:
    with trio.fail_after(TIMEOUT):
        while True:
            desired, running = await deployment_pods(api, "default", "bench")
            if len(running) == desired:
                return
            await trio.sleep(0.2)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _stats(values: list[float | None]) -> dict[str, float | int | None]:
    got = [v for v in values if v is not None]
    if not got:
        return {"n": 0, "min": None, "median": None, "max": None, "missed": len(values)}
    return {
        "n": len(got),
        "min": min(got),
        "median": statistics.median(got),
        "max": max(got),
        "missed": len(values) - len(got),
    }


def table(faults: list[FaultType], repeats: int) -> str:
    lines = [
        f"Recovery times in seconds, from the fault, over {repeats} repeats (min / median / max):",
        "",
        "| fault | available again | fully recovered |",
        "|---|---|---|",
    ]
    for fault in faults:
        cells = []
        for key in ("available", "recovered"):
            s = _stats([getattr(x, key) for x in fault.samples])
            if s["n"]:
                cell = f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}"
                if s["missed"]:
                    cell += f" ({s['missed']} not within {TIMEOUT:g} s)"
            else:
                cell = "-"
            cells.append(cell)
        lines.append(f"| {fault.label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "recovery_results.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "bench" / "recovery_results.md")
    args = parser.parse_args()
    names = [n.strip() for n in args.faults.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    faults = [FaultType(n, FAULTS[n][0], FAULTS[n][1]) for n in names]
    with tempfile.TemporaryDirectory(prefix="raftsman-recovery-") as tmp:
        directory = (args.work_dir or Path(tmp)) / "cluster"
        manifest = directory.parent / "bench-deployment.yaml"
        directory.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(DEPLOYMENT)
        started = time.monotonic()
        try:
            _cli(
                "up",
                f"--dir={directory}",
                "--stores=3",
                "--apiservers=2",
                "--schedulers=2",
                "--controller-managers=2",
                "--nodes=3",
                "--timeout=120",
            )
            _cli("apply", "-f", str(manifest), f"--dir={directory}")
            rpc.run(measure, directory, faults, args.repeats)
        finally:
            subprocess.run(
                [sys.executable, "-m", "cli.main", "down", f"--dir={directory}"],
                cwd=ROOT,
                capture_output=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
    text = table(faults, args.repeats)
    print()
    print(text)
    machine = f"{platform.machine()}, {platform.python_version()}, shared 2-core box"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    args.markdown.write_text(
        f"{text}\n\nMeasured {when} with `python -m bench.recovery --repeats {args.repeats}` "
        f"({machine}; {time.monotonic() - started:.0f} s in all).\n"
    )
    args.json.write_text(
        json.dumps(
            {
                "date": when,
                "repeats": args.repeats,
                "machine": machine,
                "faults": {
                    f.name: {
                        "label": f.label,
                        "available": _stats([s.available for s in f.samples]),
                        "recovered": _stats([s.recovered for s in f.samples]),
                        "samples": [[s.available, s.recovered] for s in f.samples],
                    }
                    for f in faults
                },
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
