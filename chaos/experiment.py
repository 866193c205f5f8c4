"""Experiments: a fault, where to inject it, how often, and what "recovered" means.

An experiment file (YAML) says it all; ``raftsman chaos run FILE`` runs it against a
cluster started by ``raftsman up``::

    name: store-leader-kill
    seed: 7                      # target picks are drawn from Random(seed): replayable
    target: {role: store, pick: leader}
    fault: kill                  # or {kind: pause, duration: 3}, see chaos.faults
    count: 3                     # injections (or `duration: 120` seconds of them)
    interval: 2                  # seconds of steady state before each injection
    recovery_timeout: 30         # the bound on recovering from each fault
    steady_state: [stores-ready, store-writable]   # see chaos.steady
    workload: {clients: 4, keys: 8}                # store workload; omit for none
    invariants: [linearizable, no-lost-writes, watch-continuity]

``targets: [...]`` (a list) or ``actions: [{target, fault}, ...]`` instead of one
``target``/``fault``: each injection then picks one of them at random. A target is a
mapping (``role``, and ``pick`` -- any, all, leader, follower, standby -- or ``name``;
``container`` for pods) or the short form ``ROLE:PICK`` / ``ROLE:NAME``
(``store:leader``, ``node-agent:node-1``, ``pod:default/web-*``; pod names may be
shell-style patterns).

The run (:func:`run_experiment`):

1. wait until the steady state holds (the *baseline*; an experiment on a cluster that
   is not healthy to begin with proves nothing and stops there);
2. start the workload and the pod-placement monitor, if asked for;
3. ``count`` times (or until ``duration`` has passed): wait ``interval`` seconds, pick
   an action and resolve its target *now* (retrying while, say, no leader is known),
   inject the fault, wait out its duration and heal it (healing is shielded from
   cancellation: a run interrupted with Ctrl-C still resumes a paused process and
   removes a partition), then poll the steady state until it holds again or
   ``recovery_timeout`` passes;
4. stop the workload and check the invariants.

Progress goes to the ``progress`` callback, one line per event, as it happens.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import yaml

from chaos.cluster import ChaosError, Cluster, Pick, Proc, Selector, TargetNotFound
from chaos.faults import Fault, parse_fault
from chaos.invariants import InvariantResult, PodPlacement, store_invariants
from chaos.report import ExperimentReport, Injection
from chaos.steady import SteadyCheck, parse_check, wait_steady
from chaos.workload import WorkloadConfig, WorkloadResult, run_workload

STORE_INVARIANTS = ("linearizable", "no-lost-writes", "watch-continuity")
INVARIANTS = (*STORE_INVARIANTS, "no-pod-on-two-nodes")
KEYS = frozenset(
    {
        "name",
        "description",
        "seed",
        "target",
        "targets",
        "fault",
        "actions",
        "count",
        "duration",
        "interval",
        "recovery_timeout",
        "steady_state",
        "workload",
        "invariants",
    }
)


class ExperimentError(ChaosError):
    """The experiment file is malformed; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Action:
    target: Selector
    fault: Fault


@dataclass(frozen=True, kw_only=True)
class Experiment:
    name: str
    actions: tuple[Action, ...]
    count: int = 1
    duration: float | None = None
    interval: float = 2.0
    seed: int = 0
    steady_state: tuple[SteadyCheck, ...] = ()
    recovery_timeout: float = 30.0
    workload: WorkloadConfig | None = None
    invariants: tuple[str, ...] = ()
    description: str = ""
    extra_invariants: tuple[Callable[[], InvariantResult], ...] = field(default=())


# --------------------------------------------------------------------------- parsing


def parse_target(spec: Any, *, where: str = "target") -> Selector:
    if isinstance(spec, str):
        role, _, rest = spec.partition(":")
        spec = {"role": role}
        if rest:
            spec["pick" if rest in {p.value for p in Pick} else "name"] = rest
    if not isinstance(spec, Mapping):
        raise ExperimentError(f"{where}: must be a mapping or ROLE:PICK, not {spec!r}")
    unknown = sorted(set(spec) - {"role", "pick", "name", "container"})
    if unknown:
        raise ExperimentError(
            f"{where}: unknown field(s) {', '.join(unknown)}; allowed: role, pick, name, container"
        )
    try:
        pick = Pick(str(spec.get("pick", "any")))
    except ValueError:
        raise ExperimentError(
            f"{where}: pick must be one of {', '.join(p.value for p in Pick)}, "
            f"not {spec.get('pick')!r}"
        ) from None
    try:
        return Selector(
            role=str(spec.get("role", "")),
            pick=pick,
            name=None if spec.get("name") is None else str(spec["name"]),
            container=None if spec.get("container") is None else str(spec["container"]),
        )
    except ValueError as exc:
        raise ExperimentError(f"{where}: {exc}") from None


def _number(raw: Mapping[str, Any], key: str, default: float, *, minimum: float = 0) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ExperimentError(f"{key} must be a number >= {minimum:g}, not {value!r}")
    return float(value)


def parse_experiment(raw: Any, *, source: str = "experiment") -> Experiment:
    """An :class:`Experiment` from the mapping of an experiment file."""
    if not isinstance(raw, Mapping):
        raise ExperimentError(f"{source}: must be a YAML mapping, not {type(raw).__name__}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ExperimentError(
            f"{source}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KEYS))}"
        )
    try:
        actions = _parse_actions(raw)
        checks = tuple(parse_check(c) for c in raw.get("steady_state", ["stores-ready"]))
    except ChaosError as exc:
        raise ExperimentError(f"{source}: {exc}") from None
    workload = raw.get("workload")
    config = None
    if workload:
        args = {} if workload is True else dict(workload)
        args.setdefault("seed", int(raw.get("seed", 0)))
        try:
            config = WorkloadConfig(**args)
        except (TypeError, ValueError) as exc:
            raise ExperimentError(f"{source}: workload: {exc}") from None
    invariants = tuple(raw.get("invariants", STORE_INVARIANTS if config else ()))
    for name in invariants:
        if name not in INVARIANTS:
            raise ExperimentError(
                f"{source}: invariants: unknown {name!r}; known: {', '.join(INVARIANTS)}"
            )
        if name in STORE_INVARIANTS and config is None:
            raise ExperimentError(f"{source}: invariant {name!r} needs a workload")
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ExperimentError(f"{source}: count must be a whole number >= 0, not {count!r}")
    duration = raw.get("duration")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ExperimentError(f"{source}: seed must be an integer, not {seed!r}")
    try:
        return Experiment(
            name=str(raw.get("name") or Path(source).stem),
            description=str(raw.get("description", "")),
            actions=actions,
            count=count,
            duration=None if duration is None else _number(raw, "duration", 0, minimum=1),
            interval=_number(raw, "interval", 2.0),
            seed=seed,
            steady_state=checks,
            recovery_timeout=_number(raw, "recovery_timeout", 30.0, minimum=1),
            workload=config,
            invariants=invariants,
        )
    except ExperimentError as exc:
        raise ExperimentError(f"{source}: {exc}") from None


def _parse_actions(raw: Mapping[str, Any]) -> tuple[Action, ...]:
    if "actions" in raw:
        if "target" in raw or "targets" in raw or "fault" in raw:
            raise ExperimentError("give either actions or target(s) + fault, not both")
        items = raw["actions"]
        if not isinstance(items, list) or not items:
            raise ExperimentError("actions must be a non-empty list of {target, fault}")
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or set(item) != {"target", "fault"}:
                raise ExperimentError(f"actions[{i}]: needs exactly target and fault")
            out.append(
                Action(
                    parse_target(item["target"], where=f"actions[{i}].target"),
                    parse_fault(item["fault"]),
                )
            )
        return tuple(out)
    if "fault" not in raw:
        raise ExperimentError("fault is required (e.g. fault: kill)")
    fault = parse_fault(raw["fault"])
    if "targets" in raw:
        targets = raw["targets"]
        if not isinstance(targets, list) or not targets:
            raise ExperimentError("targets must be a non-empty list")
        return tuple(
            Action(parse_target(t, where=f"targets[{i}]"), fault) for i, t in enumerate(targets)
        )
    if "target" not in raw:
        raise ExperimentError("target is required (e.g. target: {role: store, pick: leader})")
    return (Action(parse_target(raw["target"]), fault),)


def load_experiment(path: Path | str) -> Experiment:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ExperimentError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{path}: not valid YAML: {exc}") from None
    return parse_experiment(raw, source=str(path))


# --------------------------------------------------------------------------- running


async def select_eventually(
    cluster: Cluster, selector: Selector, rng: random.Random, *, timeout: float
) -> list[Proc]:
    """:meth:`Cluster.select`, retried while nothing matches (a leader being elected)."""
    last: TargetNotFound | None = None
    with trio.move_on_after(timeout):
        while True:
            try:
                return await cluster.select(selector, rng)
            except TargetNotFound as exc:
                last = exc
            await trio.sleep(0.1)
    raise TargetNotFound(f"{last} (for {timeout:g}s)")


def _node_dirs(cluster: Cluster) -> dict[str, str]:
    return {r.name: r.data for r in cluster.records("node-agent") if r.data is not None}


async def run_experiment(
    cluster: Cluster,
    experiment: Experiment,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> ExperimentReport:
    """Run ``experiment`` against ``cluster``; the report (see the module doc)."""
    started = time.monotonic()

    def say(line: str) -> None:
        progress(f"[{time.monotonic() - started:7.2f}s] {line}")

    def now() -> float:
        return time.monotonic() - started

    rng = random.Random(experiment.seed)
    checks = experiment.steady_state
    report = ExperimentReport(
        name=experiment.name,
        seed=experiment.seed,
        cluster=str(cluster.dir),
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        steady_state=[c.describe() for c in checks],
    )
    say(f"experiment {experiment.name!r}: waiting for the steady state")
    ok, failing = await wait_steady(cluster, checks, timeout=experiment.recovery_timeout)
    if not ok:
        report.baseline_ok, report.baseline_failing = False, failing
        say(f"steady state never held: {'; '.join(failing)}")
        report.duration = now()
        return report
    say("steady state holds")

    result: WorkloadResult | None = None
    placement = (
        PodPlacement(_node_dirs(cluster))
        if "no-pod-on-two-nodes" in experiment.invariants
        else None
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        if experiment.workload is not None:
            result = await nursery.start(
                run_workload, cluster.store_endpoints(), experiment.workload, stop
            )
            say(f"workload running ({experiment.workload.clients} clients)")
        monitor = trio.CancelScope()
        if placement is not None:

            async def watch_placement() -> None:
                with monitor:
                    await placement.run()

            nursery.start_soon(watch_placement)
        try:
            index = 0
            while _more(experiment, index, now()):
                await trio.sleep(experiment.interval)
                action = rng.choice(experiment.actions)
                report.injections.append(
                    await _inject(cluster, experiment, action, index, rng, say, now)
                )
                index += 1
        finally:
            stop.set()
            monitor.cancel()
    if result is not None:
        say(f"workload stopped: {result.summary()}")
        say("checking store invariants")
        wanted = [n for n in experiment.invariants if n in STORE_INVARIANTS]
        found = await store_invariants(cluster.store_endpoints(), result)
        report.invariants += [inv for inv in found if inv.name in wanted]
        report.workload = result.summary()
        report.workload_counts = {
            "ok": result.ok,
            "indeterminate": result.indeterminate,
            "failed": result.failed,
            "acked": len(result.acked),
            "watched": len(result.watched),
            "watch_reopens": result.watch_reopens,
        }
    if placement is not None:
        report.invariants.append(placement.result())
    for extra in experiment.extra_invariants:
        report.invariants.append(extra())
    for inv in report.invariants:
        say(inv.line())
    report.duration = now()
    say(f"experiment {experiment.name!r} {'PASSED' if report.ok else 'FAILED'}")
    return report


def _more(experiment: Experiment, index: int, elapsed: float) -> bool:
    if experiment.duration is not None:
        return elapsed < experiment.duration
    return index < experiment.count


async def _inject(
    cluster: Cluster,
    experiment: Experiment,
    action: Action,
    index: int,
    rng: random.Random,
    say: Callable[[str], None],
    now: Callable[[], float],
) -> Injection:
    fault = action.fault
    injection = Injection(index=index, fault=fault.describe(), target=action.target.describe())
    try:
        procs = await select_eventually(
            cluster, action.target, rng, timeout=experiment.recovery_timeout
        )
        injection.processes = [str(p) for p in procs]
        heal = await fault.start(cluster, procs)
        injection.injected_at = now()
        say(f"#{index} {fault.describe()} -> {', '.join(injection.processes)}")
        if heal is not None:
            try:
                await trio.sleep(fault.duration)
            finally:
                with trio.CancelScope(shield=True):
                    await heal()
                    injection.healed_at = now()
                    say(f"#{index} healed")
        ok, failing = await wait_steady(
            cluster, experiment.steady_state, timeout=experiment.recovery_timeout
        )
        if ok:
            injection.recovered_at = now()
            say(f"#{index} recovered in {injection.time_to_recover:.2f}s")
        else:
            injection.failing = failing
            say(
                f"#{index} NOT recovered after {experiment.recovery_timeout:g}s: {'; '.join(failing)}"
            )
    except ChaosError as exc:
        injection.error = str(exc)
        say(f"#{index} could not inject {fault.describe()}: {exc}")
    return injection


def soak_experiment(
    cluster: Cluster, *, minutes: float, seed: int, interval: float = 3.0
) -> Experiment:
    """A random mix of every fault this cluster can take, for ``minutes``, with the store
    workload and every invariant that applies."""
    from chaos.faults import Kill, Partition, Pause
    from chaos.steady import ApiserversServing, Leader, NodesReady, StoresReady, StoreWritable
    from cli.launcher.links import enabled

    state = cluster.state()
    roles = {p.role for p in state.processes}
    actions = [
        Action(Selector(role="store", pick=Pick.LEADER), Kill()),
        Action(Selector(role="store", pick=Pick.FOLLOWER), Kill()),
        Action(Selector(role="store", pick=Pick.FOLLOWER), Pause(duration=3.0)),
    ]
    checks: list[SteadyCheck] = [StoresReady(), StoreWritable()]
    if enabled(cluster.dir):
        actions.append(Action(Selector(role="store", pick=Pick.ANY), Partition(duration=3.0)))
    if len(state.by_role("apiserver")) > 1:
        actions.append(Action(Selector(role="apiserver"), Kill()))
    if "apiserver" in roles:
        checks.append(ApiserversServing())
    for role in ("scheduler", "controller-manager"):
        if len(state.by_role(role)) > 1:
            actions.append(Action(Selector(role=role, pick=Pick.LEADER), Kill()))
            checks.append(Leader(role=role))
    if "node-agent" in roles:
        actions.append(Action(Selector(role="node-agent"), Pause(duration=3.0)))
        actions.append(Action(Selector(role="node-agent"), Kill()))
        checks.append(NodesReady())
    invariants: Sequence[str] = STORE_INVARIANTS
    if "node-agent" in roles and state.runtime == "process":
        invariants = INVARIANTS
    return Experiment(
        name=f"soak-{minutes:g}m",
        description="a random mix of faults",
        actions=tuple(actions),
        duration=minutes * 60,
        interval=interval,
        seed=seed,
        steady_state=tuple(checks),
        recovery_timeout=60.0,
        workload=WorkloadConfig(seed=seed),
        invariants=tuple(invariants),
    )
