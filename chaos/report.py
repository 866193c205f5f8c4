"""What an experiment reports: every fault with its timestamps and recovery, and the
invariants' verdicts; as text for people and JSON for scripts.

Times are seconds since the experiment started (``t``), plus the wall-clock time of the
start, so a report lines up with the components' logs. *Time to recover* is measured
from the moment the fault was injected (the signal sent, the link rule applied) to the
first moment every steady-state check held again; for faults that last (pause,
partition, ...) the time from healing to recovery is reported too. A fault the cluster
did not recover from within the experiment's ``recovery_timeout`` has no recovery time
and fails the experiment.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.invariants import InvariantResult


@dataclass
class Injection:
    index: int
    fault: str
    target: str
    processes: list[str] = field(default_factory=list)
    injected_at: float | None = None
    healed_at: float | None = None
    recovered_at: float | None = None
    error: str | None = None
    failing: list[str] = field(default_factory=list)
    """Steady-state checks still failing when recovery timed out."""

    @property
    def time_to_recover(self) -> float | None:
        if self.injected_at is None or self.recovered_at is None:
            return None
        return self.recovered_at - self.injected_at

    @property
    def recovered_after_heal(self) -> float | None:
        if self.healed_at is None or self.recovered_at is None:
            return None
        return self.recovered_at - self.healed_at

    @property
    def ok(self) -> bool:
        return self.error is None and self.recovered_at is not None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["time_to_recover"] = self.time_to_recover
        out["recovered_after_heal"] = self.recovered_after_heal
        out["ok"] = self.ok
        return out


@dataclass
class ExperimentReport:
    name: str
    seed: int
    cluster: str
    started: str
    """Wall-clock start, ISO 8601 (UTC)."""
    steady_state: list[str]
    baseline_ok: bool = True
    baseline_failing: list[str] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    workload: str | None = None
    workload_counts: dict[str, int] = field(default_factory=dict)
    """ok, indeterminate, failed operations; acked appends; watched events."""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.baseline_ok
            and all(i.ok for i in self.injections)
            and all(inv.ok for inv in self.invariants)
        )

    def recovery_stats(self) -> dict[str, dict[str, float]]:
        """min/median/max time to recover per fault description."""
        by_fault: dict[str, list[float]] = {}
        for inj in self.injections:
            if inj.time_to_recover is not None:
                by_fault.setdefault(f"{inj.fault} {inj.target}", []).append(inj.time_to_recover)
        return {
            fault: {
                "count": len(times),
                "min": min(times),
                "median": statistics.median(times),
                "max": max(times),
            }
            for fault, times in by_fault.items()
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "seed": self.seed,
            "cluster": self.cluster,
            "started": self.started,
            "duration": self.duration,
            "steady_state": self.steady_state,
            "baseline_ok": self.baseline_ok,
            "baseline_failing": self.baseline_failing,
            "injections": [i.to_json() for i in self.injections],
            "recovery": self.recovery_stats(),
            "invariants": [inv.to_json() for inv in self.invariants],
            "workload": self.workload,
            "workload_counts": self.workload_counts,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def to_text(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        lines = [
            f"Experiment {self.name!r} {verdict} in {self.duration:.1f}s "
            f"(seed {self.seed}, started {self.started}, cluster {self.cluster})",
            f"steady state: {', '.join(self.steady_state) or '(none)'}",
        ]
        if not self.baseline_ok:
            lines.append(f"baseline never held: {'; '.join(self.baseline_failing)}")
        if self.injections:
            lines += ["", "  #  t(s)    fault / target -> processes                 recovered"]
        for inj in self.injections:
            at = f"{inj.injected_at:7.2f}" if inj.injected_at is not None else "      -"
            if inj.error:
                outcome = f"ERROR {inj.error}"
            elif inj.time_to_recover is None:
                outcome = f"NOT RECOVERED ({'; '.join(inj.failing)})"
            else:
                outcome = f"in {inj.time_to_recover:.2f}s"
                if inj.recovered_after_heal is not None:
                    outcome += f" ({inj.recovered_after_heal:.2f}s after healing)"
            procs = ", ".join(inj.processes) or "-"
            lines.append(f"{inj.index:3d} {at}  {inj.fault} / {inj.target} -> {procs}  {outcome}")
        stats = self.recovery_stats()
        if stats:
            width = max(len(f) for f in stats) + 2
            lines += ["", f"{'time to recover (s)':<{width + 2}}count    min  median    max"]
            for fault, s in stats.items():
                lines.append(
                    f"  {fault:<{width}}{int(s['count']):5d} {s['min']:6.2f} {s['median']:7.2f} "
                    f"{s['max']:6.2f}"
                )
        if self.workload:
            lines += ["", f"workload: {self.workload}"]
        if self.invariants:
            lines += ["", "invariants:"]
            lines += [f"  {inv.line()}" for inv in self.invariants]
        return "\n".join(lines)
