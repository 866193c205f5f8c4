"""Markdown tables of the cluster benchmark's results (one function per table)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .procs import Cost
from .scenarios import BurstResult
from .stats import Summary
from .writes import WriteResult

SLO_STARTUP_P99 = 5.0
SLO_MUTATING_P99 = 1.0
SLO_LIST_P99 = 5.0

GROUPS = (
    ("store", "stores"),
    ("apiserver", "API servers"),
    ("scheduler", "schedulers"),
    ("controller-manager", "controller managers"),
    ("node", "node agents"),
    ("sim-nodes", "sim nodes process"),
    ("supervisor", "supervisor"),
    ("bench", "benchmark"),
)


def _s(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def _n(value: float, digits: int = 0) -> str:
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


def _slo(summary: Summary | None, limit: float) -> str:
    if summary is None or not summary.count:
        return "–"
    return "yes" if summary.p99 <= limit else "**no**"


def startup_table(results: Sequence[BurstResult]) -> str:
    lines = [
        "| scenario | nodes | pods Running | p50 | p90 | p99 | max | p99 by startedAt | "
        f"SLO p99 ≤ {SLO_STARTUP_P99:g} s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        s = r.startup
        lines.append(
            f"| {r.scenario} ({r.runtime}) | {r.nodes} | {r.running}/{r.pods} | {_s(s.p50)} | "
            f"{_s(s.p90)} | {_s(s.p99)} | {_s(s.max)} | {_s(r.startup_started_at.p99)} | "
            f"{_slo(s, SLO_STARTUP_P99)} |"
        )
    return "\n".join(lines)


def throughput_table(results: Sequence[BurstResult]) -> str:
    lines = [
        "| scenario | nodes | pods | all Running after | created/s | bound/s | Running/s | "
        f"mutating p99 (SLO ≤ {SLO_MUTATING_P99:g} s) | namespace LIST p99 "
        f"(SLO ≤ {SLO_LIST_P99:g} s) | failed probe calls | leader changes (sched / cm / store) | "
        "cluster CPU per pod |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        muts = r.mutations
        lists = r.lists
        mut = "–" if muts is None else f"{_s(muts.p99)} ({muts.count} calls, {_slo(muts, 1.0)})"
        lst = "–" if lists is None else f"{_s(lists.p99)} ({lists.count} calls, {_slo(lists, 5.0)})"
        errors = sum(r.api_errors.values())
        changes = " / ".join(
            [str(r.leader_transitions.get(k, "–")) for k in ("scheduler", "controller-manager")]
            + ["–" if r.store_elections is None else str(r.store_elections)]
        )
        lines.append(
            f"| {r.scenario} | {r.nodes} | {r.pods} | {_s(r.seconds_to_all_running)} | "
            f"{_n(r.created_per_second)} | {_n(r.bound_per_second)} | "
            f"{_n(r.running_per_second)} | {mut} | {lst} | {errors} | {changes} | "
            f"{_s(cluster_cpu_seconds(r.burst_cost) / r.pods)} |"
        )
    return "\n".join(lines)


def cluster_cpu_seconds(costs: Sequence[Cost]) -> float:
    """CPU seconds of every cluster process (the benchmark's own left out)."""
    return sum(c.cpu_seconds for c in costs if c.name != "bench" and not math.isnan(c.cpu_seconds))


def _by_name(costs: Sequence[Cost]) -> dict[str, Cost]:
    return {c.name: c for c in costs}


def cost_table(result: BurstResult, leaders: Sequence[str] = ()) -> str:
    """One row per process: CPU in the three windows, RSS settled and at its peak."""
    idle, burst, settled = (
        _by_name(result.idle_cost),
        _by_name(result.burst_cost),
        _by_name(result.settled_cost),
    )
    lines = [
        "| process | CPU % idle nodes | CPU % burst | CPU s burst | CPU % settled | RSS settled | "
        "RSS peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b in burst.items():
        label = f"{name} (leader)" if name in leaders else name
        i, s = idle.get(name), settled.get(name)
        peak = max(
            (
                c.peak_rss_mb
                for c in (idle.get(name), b, s)
                if c is not None and not math.isnan(c.peak_rss_mb)
            ),
            default=math.nan,
        )
        lines.append(
            f"| {label} | {_n(i.cpu_percent) if i else '–'} | {_n(b.cpu_percent)} | "
            f"{_n(b.cpu_seconds, 1)} | "
            f"{_n(s.cpu_percent) if s else '–'} | {_n(s.rss_mb) + ' MiB' if s else '–'} | "
            f"{_n(peak)} MiB |"
        )
    total = sum(c.cpu_percent for c in burst.values() if not math.isnan(c.cpu_percent))
    seconds = sum(c.cpu_seconds for c in burst.values() if not math.isnan(c.cpu_seconds))
    lines.append(f"| all | | {_n(total)} | {_n(seconds, 1)} | | | |")
    return "\n".join(lines)


def _group(name: str) -> str:
    for prefix, _ in GROUPS:
        if name == prefix or re.match(rf"{re.escape(prefix)}-\d+$", name):
            return prefix
    return name


def growth_table(points: Sequence[BurstResult]) -> str:
    """Per role group: CPU idle → settled with pods (summed over the group), RSS of its
    largest process at the end."""

    def costs(p: BurstResult) -> list[Cost]:
        return [*p.idle_cost, *p.settled_cost]

    present = [g for g in GROUPS if any(_group(c.name) == g[0] for p in points for c in costs(p))]
    present = [g for g in present if g[0] not in ("bench", "supervisor")]
    head = " | ".join(label for _, label in present)
    lines = [
        f"| nodes | nodes Ready after | pods (all Running after) | {head} |",
        "|---:|---:|---:|" + "---:|" * len(present),
    ]
    for p in points:
        cells = []
        for prefix, _ in present:
            idle = [c for c in p.idle_cost if _group(c.name) == prefix]
            settled = [c for c in p.settled_cost if _group(c.name) == prefix]
            last = settled or idle
            if not last:
                cells.append("–")
                continue
            cpu = f"{sum(c.cpu_percent for c in idle):.0f} %" if idle else "–"
            if settled:
                cpu += f" → {sum(c.cpu_percent for c in settled):.0f} %"
            rss = max(c.rss_mb for c in last)
            cells.append(f"{cpu}, {rss:.0f} MiB")
        pods = f"{p.pods:,} ({_s(p.seconds_to_all_running)})" if p.pods else "0"
        lines.append(
            f"| {p.nodes} | {_s(p.nodes_ready_seconds)} | {pods} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def profile_section(result: BurstResult, top: int = 6) -> str:
    if not result.profile:
        return ""
    lines = [f"py-spy during the burst of {result.scenario} (busy = % of one core sampled):", ""]
    for s in result.profile:
        funcs = "; ".join(f"{f} {share:.0f}%" for f, share in s.top_self[:top])
        lines.append(f"- **{s.name}** busy {s.busy_percent:.0f}%: {funcs}")
    return "\n".join(lines)


def writes_table(w: WriteResult) -> str:
    per = w.cpu_ms_per_write()
    total = sum(v for k, v in per.items() if k != "supervisor")
    names = [k for k in per if k != "supervisor"]
    lat = w.latency
    lines = [
        "| writes/s | latency p50 / p99 | failed | store elections | "
        + " | ".join(f"{n}{' (leader)' if n in w.leaders else ''} CPU ms/write" for n in names)
        + " | all CPU ms/write |",
        "|---:|---:|---:|---:|" + "---:|" * (len(names) + 1),
        f"| {w.writes_per_second:.0f} | {_s(lat.p50)} / {_s(lat.p99)} | {len(w.errors)} | "
        f"{'–' if w.store_elections is None else w.store_elections} | "
        + " | ".join(f"{per[n]:.2f}" for n in names)
        + f" | {total:.2f} |",
    ]
    return "\n".join(lines)
