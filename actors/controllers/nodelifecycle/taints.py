"""Taints the node lifecycle controller manages, and when a pod stops tolerating one.

Two families, as Kubernetes:

* **NoSchedule** taints that mirror node conditions (TaintNodesByCondition): Ready=False
  -> ``node.kubernetes.io/not-ready``, Ready=Unknown -> ``node.kubernetes.io/unreachable``,
  MemoryPressure / DiskPressure / PIDPressure / NetworkUnavailable=True -> the matching
  ``node.kubernetes.io/*-pressure`` / ``network-unavailable`` key, ``spec.unschedulable``
  -> ``node.kubernetes.io/unschedulable``. :func:`condition_taints` computes the set a
  node should carry; only taints with those keys and effect NoSchedule are touched.
* **NoExecute** taints ``not-ready`` / ``unreachable`` (mutually exclusive, like the
  Ready condition they stand for), which evict pods. They carry ``timeAdded``.

:func:`eviction_delay` is the taint manager's decision for one pod: evict now if some
NoExecute taint is not tolerated; otherwise the first moment a toleration's
``tolerationSeconds`` runs out, counted from that taint's ``timeAdded``; never if every
taint is tolerated without a time limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from proto.k8s import core_pb2

__all__ = [
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "NOT_READY",
    "UNREACHABLE",
    "condition_taints",
    "eviction_delay",
    "is_managed_no_schedule",
    "no_execute_taint",
    "tolerates",
]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"

CONDITION_TAINTS: dict[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
_MANAGED_NO_SCHEDULE_KEYS = frozenset({*CONDITION_TAINTS.values(), UNSCHEDULABLE})


def tolerates(toleration: Any, taint: Any) -> bool:
    """Kubernetes' ``Toleration.ToleratesTaint``: empty effect/key match any; operator
    ``Exists`` ignores the value, ``Equal`` (or empty) compares it."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator in ("", "Equal"):
        return bool(toleration.value == taint.value)
    return bool(toleration.operator == "Exists")


def eviction_delay(
    tolerations: Sequence[Any],
    taints: Iterable[Any],
    *,
    now: datetime,
    added: Callable[[Any], datetime],
) -> float | None:
    """Seconds until a pod with ``tolerations`` must be evicted by the NoExecute ``taints``
    of its node: ``0.0`` now, ``None`` never. ``added(taint)`` is when the taint appeared
    (its ``timeAdded``, or when the controller first saw it)."""
    deadline: datetime | None = None
    for taint in taints:
        if taint.effect != NO_EXECUTE:
            continue
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        if not match.HasField("toleration_seconds"):
            continue
        when = added(taint) + timedelta(seconds=max(0, match.toleration_seconds))
        deadline = when if deadline is None else min(deadline, when)
    if deadline is None:
        return None
    return max(0.0, (deadline - now).total_seconds())


def no_execute_taint(key: str, at: datetime) -> core_pb2.Taint:
    taint = core_pb2.Taint(key=key, effect=NO_EXECUTE)
    taint.time_added.FromDatetime(at)
    return taint


def condition_taints(node: Any) -> list[core_pb2.Taint]:
    """The NoSchedule taints ``node``'s conditions and ``spec.unschedulable`` call for."""
    out = []
    for condition in node.status.conditions:
        key = CONDITION_TAINTS.get((condition.type, condition.status))
        if key is not None:
            out.append(core_pb2.Taint(key=key, effect=NO_SCHEDULE))
    if node.spec.unschedulable:
        out.append(core_pb2.Taint(key=UNSCHEDULABLE, effect=NO_SCHEDULE))
    return out


def is_managed_no_schedule(taint: Any) -> bool:
    return taint.effect == NO_SCHEDULE and taint.key in _MANAGED_NO_SCHEDULE_KEYS
