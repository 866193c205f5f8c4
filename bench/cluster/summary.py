"""``bench/RESULTS.md``: one table with every headline figure, then each part's own tables.

Reads the JSON each part wrote (``bench/results/*_results.json``) and keeps to the figures
issue 10 asks for, each beside Kubernetes' target where it has one. A part that did not
run (or failed) leaves its rows out and says so; its own Markdown, when present, follows
the table unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .machine import Machine

PARTS = ("cluster", "scheduler", "recovery", "store")
TITLES = {
    "cluster": "Cluster: startup latency, throughput, API latency, cost",
    "scheduler": "Scheduler alone (`bench/scheduler_bench.py`)",
    "recovery": "Failover and recovery (`bench/recovery.py`)",
    "store": "Store against etcd (`bench/store_bench.py --quick`)",
}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _s(value: Any) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _triple(summary: Mapping[str, Any] | None) -> str:
    if not summary or not summary.get("count"):
        return "–"
    return " / ".join(_s(summary.get(k)) for k in ("p50", "p90", "p99"))


def _cluster_rows(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    results = data.get("results", {})
    for key, label in (("process", "process-runtime"), ("sim", "simulated")):
        r = results.get(key)
        if not r:
            continue
        rows.append(
            (
                f"Pod startup latency p50 / p90 / p99, {r['pods']:,} pods on {r['nodes']} "
                f"{label} nodes (created → Running seen by a watch; {r['running']:,} ran)",
                _triple(r.get("startup")),
                "p99 ≤ 5 s",
            )
        )
    sim = results.get("sim")
    if sim:
        rows += [
            (
                f"{sim['pods']:,}-replica Deployment on {sim['nodes']} simulated nodes: "
                "all Running after",
                _s(sim.get("seconds_to_all_running")),
                "–",
            ),
            (
                "Pods bound per second during that burst (created / bound / Running per s)",
                " / ".join(
                    f"{sim.get(k, math.nan):.0f}"
                    for k in ("created_per_second", "bound_per_second", "running_per_second")
                ),
                "–",
            ),
            (
                "API call latency p99 during the burst, single-object mutations",
                _s((sim.get("mutations") or {}).get("p99")),
                "≤ 1 s",
            ),
            (
                "API call latency p99 during the burst, LIST of a namespace's pods",
                _s((sim.get("lists") or {}).get("p99")),
                "≤ 5 s",
            ),
        ]
        settled = sim.get("settled_cost") or []
        cluster = [c for c in settled if c["name"] != "bench"]
        if cluster:
            cpu = sum(c["cpu_percent"] for c in cluster)
            biggest = max(cluster, key=lambda c: c["rss_mb"])
            total_rss = sum(c["rss_mb"] for c in cluster)
            rows.append(
                (
                    f"Cost at {sim['nodes']} nodes / {sim['pods']:,} pods, settled: CPU of all "
                    "processes (% of one core), RSS in all (largest)",
                    f"{cpu:.0f} %, {total_rss:,.0f} MiB ({biggest['name']} {biggest['rss_mb']:.0f} MiB)",
                    "–",
                )
            )
    return rows


def _scheduler_rows(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for r in data.get("results", []):
        rows.append(
            (
                f"Scheduler bench, {r['scenario']}: {r['pods']:,} pods on {r['nodes']} nodes, "
                "pods bound per second (bind latency p99)",
                f"{r['pods_per_second']:.0f} ({_s(r.get('latency_p99'))})",
                "–",
            )
        )
    return rows


def _recovery_rows(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for fault in (data.get("faults") or {}).values():
        available = fault.get("available") or {}
        recovered = fault.get("recovered") or {}
        if not available.get("n"):
            continue
        rows.append(
            (
                f"Failover: {fault.get('label', '?')} (median of {available['n']}: available "
                "again / fully recovered)",
                f"{_s(available.get('median'))} / {_s(recovered.get('median'))}",
                "–",
            )
        )
    return rows


def _store_rows(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    results = data.get("results") or {}
    rows = []
    for phase, label in (("put_sequential", "p50"), ("put_64", "ops/s")):
        cells = []
        for target in ("raftstore", "etcd"):
            r = (results.get(target) or {}).get(phase)
            if not r:
                continue
            value = r["latency"]["p50"] if label == "p50" else r["ops_per_s"]
            cells.append(f"{target} {value:.1f} ms" if label == "p50" else f"{target} {value:,.0f}")
        if cells:
            what = "sequential put latency p50" if label == "p50" else "put throughput, 64 clients"
            rows.append((f"Store: {what}", ", ".join(cells), "–"))
    return rows


ROWS = {
    "cluster": _cluster_rows,
    "scheduler": _scheduler_rows,
    "recovery": _recovery_rows,
    "store": _store_rows,
}


def write_results(
    out: Path,
    results_dir: Path,
    *,
    machine: Machine,
    ran: Sequence[str],
    failed: Sequence[str],
    seconds: float,
) -> str:
    """Write ``out`` (RESULTS.md) from the parts' files in ``results_dir``; its text."""
    table = ["| figure | measured | Kubernetes' target |", "|---|---|---|"]
    sections = []
    for part in PARTS:
        data = _load(results_dir / f"{part}_results.json")
        if data is not None:
            table += [f"| {a} | {b} | {c} |" for a, b, c in ROWS[part](data)]
        md = results_dir / f"{part}_results.md"
        if md.exists():
            body = md.read_text().strip()
            if body.startswith("## "):  # the part's own title: ours replaces it
                body = body.partition("\n")[2].strip()
            sections += [f"## {TITLES[part]}", "", body, ""]
    notes = []
    if failed:
        notes.append(
            f"Parts that failed this run (older results may be shown): {', '.join(failed)}."
        )
    skipped = [p for p in PARTS if p not in ran]
    if skipped:
        notes.append(
            f"Not run this time (figures from an earlier run, if any): {', '.join(skipped)}."
        )
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"`python -m bench` on {machine.line()}; {seconds / 60:.1f} minutes in all. "
            "Each part's own section below names the machine and load it ran under; the "
            "machine is shared, so figures move by tens of percent between runs.",
            "",
            *([" ".join(notes), ""] if notes else []),
            *table,
            "",
            *sections,
        ]
    )
    out.write_text(text.rstrip() + "\n")
    return text
