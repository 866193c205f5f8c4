"""LabelSelector messages (matchLabels + matchExpressions) against an object's labels.

Controllers and the scheduler hold selectors as ``LabelSelector`` messages (a
ReplicaSet's ``spec.selector``, a pod affinity term's ``labelSelector``) and test them
against cached objects. The rules are Kubernetes':

* every ``matchLabels`` pair and every expression must hold;
* ``In``: the label is set to one of the values; ``NotIn``: not set to any (absent
  matches); ``Exists`` / ``DoesNotExist``: presence of the key;
* an empty selector matches everything (callers that must treat an *unset* selector as
  "nothing", as Kubernetes does, check presence before calling).

An operator outside those four raises :class:`ValueError` naming it; the API server's
validation rejects such objects, so this only fires on objects it never saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["selector_matches", "selector_to_string"]

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        op = req.operator
        if op == "In":
            if labels.get(req.key) not in req.values:
                return False
        elif op == "NotIn":
            if req.key in labels and labels[req.key] in req.values:
                return False
        elif op == "Exists":
            if req.key not in labels:
                return False
        elif op == "DoesNotExist":
            if req.key in labels:
                return False
        else:
            raise ValueError(
                f"unknown label selector operator {op!r} (allowed: {', '.join(_OPERATORS)})"
            )
    return True


def selector_to_string(selector: Any) -> str:
    """The selector in the string syntax List and Watch take (``app=web,tier in (a,b)``)."""
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        values = ",".join(req.values)
        if req.operator == "In":
            parts.append(f"{req.key} in ({values})")
        elif req.operator == "NotIn":
            parts.append(f"{req.key} notin ({values})")
        elif req.operator == "Exists":
            parts.append(req.key)
        elif req.operator == "DoesNotExist":
            parts.append(f"!{req.key}")
        else:
            raise ValueError(
                f"unknown label selector operator {req.operator!r} (allowed: {', '.join(_OPERATORS)})"
            )
    return ",".join(parts)
