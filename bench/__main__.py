"""``python -m bench``: every benchmark in one command, and ``bench/RESULTS.md``.

Run from the repository root::

    python -m bench                       # scheduler, cluster, recovery (~8 minutes)
    python -m bench --store               # and the store against etcd (--quick, +1 minute)
    python -m bench --parts cluster       # one part (comma-separated: store, scheduler,
                                          #   cluster, recovery)
    python -m bench --quick               # smaller runs of each part (~4 minutes)

Each part runs as its own process, one after another (never two clusters at once on the
2 cores), and writes ``bench/results/<part>_results.json`` and ``.md``:

* ``store`` -- ``bench.store_bench --quick`` (raftstore against etcd; needs ``etcd``);
* ``scheduler`` -- ``bench.scheduler_bench`` (burst and backlog of pending pods);
* ``cluster`` -- ``bench.cluster_bench`` (startup latency, throughput, API latency, cost);
* ``recovery`` -- ``bench.recovery`` (failover times), when ``bench/recovery.py`` exists.

Then :mod:`bench.cluster.summary` writes ``bench/RESULTS.md``: one table of the headline
figures with Kubernetes' targets, then each part's tables. A part that fails does not
stop the others; the suite exits non-zero if any failed. Ctrl-C (or SIGTERM) is passed
to the running part as SIGINT, so it stops its cluster before exiting.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bench.cluster.machine import ROOT, this_machine
from bench.cluster.summary import PARTS, write_results

RESULTS = ROOT / "bench" / "results"
DEFAULT_PARTS = ("scheduler", "cluster", "recovery")


def _argv(part: str, args: argparse.Namespace, out: Path) -> list[str] | None:
    json_md = [
        "--json",
        str(out / f"{part}_results.json"),
        "--markdown",
        str(out / f"{part}_results.md"),
    ]
    if part == "store":
        return ["bench.store_bench", "--quick", *json_md]
    if part == "scheduler":
        sizes = ["--nodes", "100", "--pods", "300" if args.quick else "1000"]
        return ["bench.scheduler_bench", *sizes, *json_md]
    if part == "cluster":
        quick = ["--sim-pods", "300", "--sim-nodes", "30", "--growth", "10"] if args.quick else []
        return ["bench.cluster_bench", *quick, *json_md]
    if part == "recovery":
        if not (ROOT / "bench" / "recovery.py").exists():
            return None
        return ["bench.recovery", "--repeats", str(args.recovery_repeats), *json_md]
    raise ValueError(part)


def _run(argv: list[str]) -> int:
    """Run ``python -m ARGV``; SIGINT/SIGTERM to us become one SIGINT to it.

    The part runs in its own session, so a Ctrl-C at the terminal reaches it once, through
    us, and not a second time directly (which could cut its cluster's shutdown short).
    """
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, start_new_session=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--parts", default=None, help=f"comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--store", action="store_true", help="also run the store benchmark")
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--recovery-repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where parts write")
    parser.add_argument(
        "--summary", type=Path, default=ROOT / "bench" / "RESULTS.md", help="the combined table"
    )
    args = parser.parse_args(argv)
    parts = (
        [p.strip() for p in args.parts.split(",") if p.strip()]
        if args.parts
        else [*(["store"] if args.store else []), *DEFAULT_PARTS]
    )
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(
            f"--parts: unknown part(s) {', '.join(unknown)} (choose from {', '.join(PARTS)})"
        )
    if args.recovery_repeats < 1:
        parser.error("--recovery-repeats must be at least 1")
    args.parts = parts
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    machine = this_machine()
    started = time.monotonic()
    ran, failed = [], []
    for part in args.parts:
        argv_part = _argv(part, args, args.results)
        if argv_part is None:
            print(f"== {part}: bench/recovery.py is not there yet; skipped", file=sys.stderr)
            continue
        print(f"== {part}: python -m {' '.join(argv_part)}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        code = _run(argv_part)
        print(f"== {part}: exit {code} after {time.monotonic() - t0:.0f} s", file=sys.stderr)
        ran.append(part)
        if code != 0:
            failed.append(part)
            if code < 0 or code == 130:  # interrupted: stop here
                break
    text = write_results(
        args.summary,
        args.results,
        machine=machine,
        ran=ran,
        failed=failed,
        seconds=time.monotonic() - started,
    )
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
