"""Taints and tolerations: which taints of a node a pod's tolerations cover.

Kubernetes' rules (``Toleration.ToleratesTaint``):

* a toleration with an ``effect`` covers only taints with that effect; an empty effect
  covers every effect;
* a toleration with a ``key`` covers only taints with that key; an empty key (only
  allowed with ``operator: Exists``) covers every key -- ``{operator: Exists}`` alone
  tolerates everything;
* ``operator: Exists`` covers any value; ``Equal`` (or empty) needs the same value;
  any other operator covers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "PREFER_NO_SCHEDULE",
    "find_untolerated",
    "tolerated",
    "tolerates",
]

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"


def tolerates(toleration: Any, taint: Any) -> bool:
    """Whether ``toleration`` covers ``taint`` (rules in the module doc)."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator
    if operator in ("", "Equal"):
        return bool(toleration.value == taint.value)
    return operator == "Exists"


def tolerated(taint: Any, tolerations: Iterable[Any]) -> bool:
    """Whether any of ``tolerations`` covers ``taint``."""
    return any(tolerates(t, taint) for t in tolerations)


def find_untolerated(
    taints: Sequence[Any], tolerations: Sequence[Any], include: Callable[[Any], bool]
) -> Any | None:
    """The first taint for which ``include`` holds and no toleration covers it, or None."""
    for taint in taints:
        if include(taint) and not tolerated(taint, tolerations):
            return taint
    return None
