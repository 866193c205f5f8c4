"""Deployment conditions: Available, Progressing, ReplicaFailure -- and the progress deadline.

The conditions and reasons are Kubernetes' (``kubectl rollout status`` reads them):

==============  ======  ==============================  =====================================
type            status  reason                          when
==============  ======  ==============================  =====================================
Available       True    MinimumReplicasAvailable        available >= replicas - maxUnavailable
Available       False   MinimumReplicasUnavailable      otherwise
Progressing     True    NewReplicaSetCreated            the controller created the new RS
Progressing     True    FoundNewReplicaSet              it found one (first sight of progress)
Progressing     True    ReplicaSetUpdated               pods moved since the last status
Progressing     True    NewReplicaSetAvailable          rollout complete
Progressing     False   ProgressDeadlineExceeded        no progress for progressDeadlineSeconds
Progressing     Unknown DeploymentPaused / Resumed      spec.paused set / cleared
==============  ======  ==============================  =====================================

:func:`set_condition` keeps Kubernetes' rule: a condition whose status and reason do not
change is left alone (``lastUpdateTime`` too); a status change moves
``lastTransitionTime``. Progress is timed from the Progressing condition's
``lastUpdateTime``: the deadline passes ``progressDeadlineSeconds`` after the last time
the rollout moved (:func:`timed_out`, :func:`seconds_to_deadline`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proto.k8s import kinds

__all__ = [
    "AVAILABLE",
    "FOUND_NEW_RS",
    "MIN_AVAILABLE",
    "MIN_UNAVAILABLE",
    "NEW_RS_AVAILABLE",
    "NEW_RS_CREATED",
    "PAUSED",
    "PROGRESSING",
    "REPLICA_FAILURE",
    "RESUMED",
    "RS_UPDATED",
    "TIMED_OUT",
    "get_condition",
    "has_progress_deadline",
    "new_condition",
    "remove_condition",
    "seconds_to_deadline",
    "set_condition",
    "timed_out",
]

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_CREATE = "FailedRSCreate"

_MAX_INT32 = 2**31 - 1
_STATUS = kinds.by_kind("Deployment").new().status


def new_condition(type_: str, status: str, reason: str, message: str, now: datetime) -> Any:
    """A condition stamped ``now`` (update and transition time)."""
    condition = type(_STATUS.conditions.add())()
    condition.type = type_
    condition.status = status
    condition.reason = reason
    condition.message = message
    condition.last_update_time.FromDatetime(now)
    condition.last_transition_time.FromDatetime(now)
    return condition


def get_condition(status: Any, type_: str) -> Any | None:
    for condition in status.conditions:
        if condition.type == type_:
            return condition
    return None


def remove_condition(status: Any, type_: str) -> None:
    kept = [c for c in status.conditions if c.type != type_]
    del status.conditions[:]
    status.conditions.extend(kept)


def set_condition(status: Any, condition: Any) -> None:
    """Set ``condition`` on ``status`` unless one of its type has the same status and
    reason; keep ``lastTransitionTime`` when only the reason changes."""
    current = get_condition(status, condition.type)
    if (
        current is not None
        and current.status == condition.status
        and current.reason == condition.reason
    ):
        return
    if current is not None and current.status == condition.status:
        condition.last_transition_time.CopyFrom(current.last_transition_time)
    remove_condition(status, condition.type)
    status.conditions.append(condition)


def has_progress_deadline(d: Any) -> bool:
    return bool(
        d.spec.HasField("progress_deadline_seconds")
        and d.spec.progress_deadline_seconds != _MAX_INT32
    )


def _last_update(condition: Any) -> datetime:
    moment: datetime = condition.last_update_time.ToDatetime(tzinfo=UTC)
    return moment


def timed_out(d: Any, status: Any, now: datetime) -> bool:
    """The Progressing condition of ``status`` has not moved for progressDeadlineSeconds."""
    if not has_progress_deadline(d):
        return False
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.reason == NEW_RS_AVAILABLE:
        return False
    if condition.reason == TIMED_OUT:
        return True
    return (now - _last_update(condition)).total_seconds() > d.spec.progress_deadline_seconds


def seconds_to_deadline(d: Any, status: Any, now: datetime) -> float | None:
    """Seconds until the progress deadline of an unfinished rollout passes, or None."""
    if not has_progress_deadline(d):
        return None
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.reason in (NEW_RS_AVAILABLE, TIMED_OUT, PAUSED):
        return None
    waited = (now - _last_update(condition)).total_seconds()
    return max(0.0, d.spec.progress_deadline_seconds - waited)
