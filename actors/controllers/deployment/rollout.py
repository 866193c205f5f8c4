"""The arithmetic of a rollout: how many pods each ReplicaSet of a Deployment should have.

Everything here is pure: functions of a Deployment and its ReplicaSets (protobuf
messages, never mutated) that return numbers or *plans* -- ``{replica set name: new
spec.replicas}`` -- which :mod:`.sync` then writes. They follow Kubernetes'
``deployment/util`` and ``rolling.go`` / ``sync.go`` step for step, so a rollout here
moves exactly as it would on Kubernetes.

Fenceposts (:func:`resolve_fenceposts`)
    ``maxSurge`` and ``maxUnavailable`` are integers or percentages of ``spec.replicas``;
    a percentage of surge rounds **up**, of unavailability rounds **down** (10 replicas,
    25 %: surge 3, unavailable 2). Should both come out 0 (1 replica, 25 % / 25 % gives
    surge 1 -- but 0 % / 25 % gives 0 / 0) ``maxUnavailable`` becomes 1, or the rollout
    could never move.

Rolling update, one step (:func:`plan_new_replica_set`, :func:`plan_old_scale_down`)
    Scale the new ReplicaSet up while the total of all ReplicaSets' ``spec.replicas``
    stays within ``replicas + maxSurge``; scale old ones down while the *available* pods
    stay at least ``replicas - maxUnavailable`` -- first old replicas that are not
    available anyway (they cost no availability), oldest ReplicaSet first, then available
    ones. The new ReplicaSet's pods that are not yet available are subtracted from what
    may go, so a new ReplicaSet that cannot start its pods never eats the old ones.

    Availability is read from each ReplicaSet's status, which lags. We count a
    ReplicaSet's available pods as ``min(status.availableReplicas, spec.replicas)``: its
    controller deletes unavailable pods first, so after a scale-down to ``n`` it will
    have at most ``n`` available. Without the ``min``, a second pass before the status
    caught up would count the pods just scaled away once more and scale down twice.

Proportional scaling (:func:`plan_proportional`)
    When ``spec.replicas`` changes in the middle of a rollout, the extra (or missing)
    replicas are spread over the active ReplicaSets in proportion to their size, using
    the ``max-replicas`` annotation each carries (the Deployment's ``replicas + maxSurge``
    when that ReplicaSet was last scaled); leftovers from rounding go to the largest
    (newest on a tie when adding, oldest when removing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

__all__ = [
    "DESIRED_REPLICAS_ANNOTATION",
    "MAX_REPLICAS_ANNOTATION",
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "active",
    "available_count",
    "by_creation",
    "deployment_complete",
    "deployment_progressing",
    "find_active_or_latest",
    "is_rolling_update",
    "is_saturated",
    "max_revision",
    "max_surge",
    "max_unavailable",
    "new_rs_new_replicas",
    "plan_cleanup_unhealthy",
    "plan_new_replica_set",
    "plan_old_scale_down",
    "plan_proportional",
    "plan_reconcile_old",
    "ready_count",
    "replica_count",
    "resolve_fenceposts",
    "revision",
    "scaled_value",
    "status_replica_count",
]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"

Plan = dict[str, int]


# ------------------------------------------------------------------------ fenceposts


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString: its int, or its percentage of ``total`` rounded as asked."""
    which = value.WhichOneof("value")
    if which is None:
        return 0
    if which == "int_val":
        return int(value.int_val)
    text = value.str_val
    if not text.endswith("%") or not text[:-1].isdigit():
        raise ValueError(f"invalid value {text!r}: must be an integer or a percentage like '25%'")
    scaled = int(text[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(surge: Any, unavailable: Any, desired: int) -> tuple[int, int]:
    """``(maxSurge, maxUnavailable)`` as pod counts for ``desired`` replicas."""
    s = scaled_value(surge, desired, round_up=True)
    u = scaled_value(unavailable, desired, round_up=False)
    if s == 0 and u == 0:
        u = 1
    return s, u


def is_rolling_update(d: Any) -> bool:
    return bool(d.spec.strategy.type in ("", "RollingUpdate"))


def max_surge(d: Any) -> int:
    """Pods above ``spec.replicas`` a rolling update may run (0 for Recreate)."""
    if not is_rolling_update(d):
        return 0
    ru = d.spec.strategy.rolling_update
    return resolve_fenceposts(ru.max_surge, ru.max_unavailable, d.spec.replicas)[0]


def max_unavailable(d: Any) -> int:
    """Pods below ``spec.replicas`` a rolling update may go (0 for Recreate)."""
    if not is_rolling_update(d) or d.spec.replicas == 0:
        return 0
    ru = d.spec.strategy.rolling_update
    unavailable = resolve_fenceposts(ru.max_surge, ru.max_unavailable, d.spec.replicas)[1]
    return min(unavailable, d.spec.replicas)


# ------------------------------------------------------------------------ counts


def replica_count(rss: Iterable[Any | None]) -> int:
    """Sum of ``spec.replicas``."""
    return sum(rs.spec.replicas for rs in rss if rs is not None)


def status_replica_count(rss: Iterable[Any | None]) -> int:
    """Sum of ``status.replicas`` (pods that exist)."""
    return sum(rs.status.replicas for rs in rss if rs is not None)


def ready_count(rss: Iterable[Any | None]) -> int:
    return sum(rs.status.ready_replicas for rs in rss if rs is not None)


def available_count(rss: Iterable[Any | None]) -> int:
    """Available pods, each ReplicaSet counted as ``min(available, spec.replicas)``."""
    return sum(min(rs.status.available_replicas, rs.spec.replicas) for rs in rss if rs is not None)


def active(rss: Iterable[Any | None]) -> list[Any]:
    """ReplicaSets with ``spec.replicas > 0``."""
    return [rs for rs in rss if rs is not None and rs.spec.replicas > 0]


def _created(rs: Any) -> float:
    if not rs.metadata.HasField("creation_timestamp"):
        return 0.0
    return float(rs.metadata.creation_timestamp.ToDatetime(tzinfo=UTC).timestamp())


def by_creation(rss: Iterable[Any], *, newest_first: bool = False) -> list[Any]:
    """Oldest first (ties by name), or newest first."""
    ordered = sorted(rss, key=lambda rs: (_created(rs), rs.metadata.name))
    return ordered[::-1] if newest_first else ordered


def revision(rs: Any) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation as an int (0 when absent/bad)."""
    text = rs.metadata.annotations.get(REVISION_ANNOTATION, "")
    try:
        return int(text)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Any]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def _annotation_int(rs: Any, name: str) -> int | None:
    try:
        return int(rs.metadata.annotations[name])
    except (KeyError, ValueError):
        return None


# ------------------------------------------------------------------------ rolling


def new_rs_new_replicas(d: Any, all_rss: Sequence[Any | None], new_rs: Any | None) -> int:
    """How many replicas the new ReplicaSet may have now (Kubernetes' NewRSNewReplicas)."""
    if not is_rolling_update(d):
        return int(d.spec.replicas)
    current = 0 if new_rs is None else new_rs.spec.replicas
    if current >= d.spec.replicas:
        return int(d.spec.replicas)
    total = replica_count(all_rss)
    ceiling = d.spec.replicas + max_surge(d)
    if total >= ceiling:
        return int(current)
    return int(current + min(ceiling - total, d.spec.replicas - current))


def plan_new_replica_set(d: Any, all_rss: Sequence[Any | None], new_rs: Any) -> int | None:
    """The new ReplicaSet's next ``spec.replicas``, or None when it stays."""
    if new_rs.spec.replicas == d.spec.replicas:
        return None
    if new_rs.spec.replicas > d.spec.replicas:
        return int(d.spec.replicas)
    target = new_rs_new_replicas(d, all_rss, new_rs)
    return None if target == new_rs.spec.replicas else target


def _copy(rs: Any) -> Any:
    out = type(rs)()
    out.CopyFrom(rs)
    return out


def plan_cleanup_unhealthy(old_rss: Sequence[Any], max_cleanup: int) -> Plan:
    """Scale down old replicas that are not available, oldest ReplicaSet first, at most
    ``max_cleanup`` in all."""
    plan: Plan = {}
    done = 0
    for rs in by_creation(old_rss):
        if done >= max_cleanup:
            break
        available = min(rs.status.available_replicas, rs.spec.replicas)
        if rs.spec.replicas == 0 or rs.spec.replicas == available:
            continue
        down = min(max_cleanup - done, rs.spec.replicas - available)
        plan[rs.metadata.name] = rs.spec.replicas - down
        done += down
    return plan


def plan_old_scale_down(d: Any, all_rss: Sequence[Any | None], old_rss: Sequence[Any]) -> Plan:
    """Scale old ReplicaSets down, oldest first, as far as availability allows."""
    min_available = d.spec.replicas - max_unavailable(d)
    available = available_count(all_rss)
    if available <= min_available:
        return {}
    budget = available - min_available
    plan: Plan = {}
    done = 0
    for rs in by_creation(old_rss):
        if done >= budget:
            break
        if rs.spec.replicas == 0:
            continue
        down = min(rs.spec.replicas, budget - done)
        plan[rs.metadata.name] = rs.spec.replicas - down
        done += down
    return plan


def plan_reconcile_old(d: Any, old_rss: Sequence[Any], new_rs: Any | None) -> Plan:
    """One rolling step down for the old ReplicaSets (Kubernetes' reconcileOldReplicaSets)."""
    all_rss = [*old_rss, new_rs]
    if replica_count(old_rss) == 0:
        return {}
    min_available = d.spec.replicas - max_unavailable(d)
    new_unavailable = (
        0
        if new_rs is None
        else new_rs.spec.replicas - min(new_rs.status.available_replicas, new_rs.spec.replicas)
    )
    max_scaled_down = replica_count(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    plan = plan_cleanup_unhealthy(active(old_rss), max_scaled_down)
    after = []
    for rs in old_rss:
        if rs.metadata.name in plan:
            rs = _copy(rs)
            rs.spec.replicas = plan[rs.metadata.name]
        after.append(rs)
    plan.update(plan_old_scale_down(d, [*after, new_rs], active(after)))
    return plan


# ------------------------------------------------------------------------ scaling


def find_active_or_latest(new_rs: Any | None, old_rss: Sequence[Any]) -> Any | None:
    """The one ReplicaSet with replicas, or the latest when none has; None when several do."""
    if new_rs is None and not old_rss:
        return None
    newest_first = by_creation(old_rss, newest_first=True)
    running = active([*newest_first, new_rs])
    if len(running) == 0:
        return new_rs if new_rs is not None else newest_first[0]
    if len(running) == 1:
        return running[0]
    return None


def is_saturated(d: Any, rs: Any | None) -> bool:
    """The ReplicaSet runs all of the Deployment's replicas, all available."""
    if rs is None:
        return False
    desired = _annotation_int(rs, DESIRED_REPLICAS_ANNOTATION)
    return bool(
        desired == d.spec.replicas
        and rs.spec.replicas == d.spec.replicas
        and rs.status.available_replicas == d.spec.replicas
    )


def _fraction(rs: Any, d: Any) -> int:
    if d.spec.replicas == 0:
        return -int(rs.spec.replicas)
    deployment_replicas = d.spec.replicas + max_surge(d)
    annotated = _annotation_int(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None or annotated <= 0:
        annotated = d.status.replicas
    if annotated <= 0:
        return 0
    size = rs.spec.replicas * deployment_replicas / annotated
    return _round_half_away(size) - int(rs.spec.replicas)


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _proportion(rs: Any, d: Any, to_add: int, added: int) -> int:
    if rs.spec.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def plan_proportional(d: Any, new_rs: Any | None, old_rss: Sequence[Any]) -> Plan:
    """Sizes after ``spec.replicas`` changed (Kubernetes' ``scale``); see module doc.

    Returns a plan that lists every ReplicaSet whose size changes; the caller also
    refreshes the replicas annotations of the others.
    """
    latest = find_active_or_latest(new_rs, old_rss)
    if latest is not None:
        if latest.spec.replicas == d.spec.replicas:
            return {}
        return {latest.metadata.name: int(d.spec.replicas)}
    if is_saturated(d, new_rs):
        return {rs.metadata.name: 0 for rs in active(old_rss)}
    if not is_rolling_update(d):
        return {}
    running = active([*old_rss, new_rs])
    allowed = d.spec.replicas + max_surge(d) if d.spec.replicas > 0 else 0
    to_add = allowed - replica_count(running)
    if to_add > 0:
        # Largest first, newer first on a tie.
        running.sort(key=lambda rs: (-rs.spec.replicas, -_created(rs), rs.metadata.name))
    elif to_add < 0:
        running.sort(key=lambda rs: (-rs.spec.replicas, _created(rs), rs.metadata.name))
    sizes: dict[str, int] = {}
    added = 0
    for rs in running:
        if to_add != 0:
            p = _proportion(rs, d, to_add, added)
            sizes[rs.metadata.name] = rs.spec.replicas + p
            added += p
        else:
            sizes[rs.metadata.name] = rs.spec.replicas
    if running and to_add != 0:
        first = running[0].metadata.name
        sizes[first] = max(0, sizes[first] + to_add - added)
    return {
        rs.metadata.name: sizes[rs.metadata.name]
        for rs in running
        if sizes[rs.metadata.name] != rs.spec.replicas
    }


# ------------------------------------------------------------------------ progress


def deployment_complete(d: Any, status: Any) -> bool:
    """Every replica updated and available, and the status is of the current generation."""
    return bool(
        status.updated_replicas == d.spec.replicas
        and status.replicas == d.spec.replicas
        and status.available_replicas == d.spec.replicas
        and status.observed_generation >= d.metadata.generation
    )


def deployment_progressing(d: Any, status: Any) -> bool:
    """Something moved since the last written status (more updated, fewer old, more
    ready or available pods)."""
    old = d.status
    return bool(
        status.updated_replicas > old.updated_replicas
        or (status.replicas - status.updated_replicas) < (old.replicas - old.updated_replicas)
        or status.ready_replicas > old.ready_replicas
        or status.available_replicas > old.available_replicas
    )
