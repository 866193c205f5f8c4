"""Completion indexes of Indexed Jobs: which pod does which index, which are done.

An Indexed Job (``completionMode: Indexed``) has ``completions`` indexes, 0 to N-1; each
is done when one pod carrying it succeeds. A pod's index is its annotation (and label)
``batch.kubernetes.io/job-completion-index``; ``status.completedIndexes`` lists the done
ones in Kubernetes' compressed form, ``"1,3-5,7"``. Indexes are sets, so a succeeded pod
seen twice is still one completion: nothing here can double count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

__all__ = [
    "COMPLETION_INDEX_KEY",
    "completion_index",
    "first_pending",
    "format_indexes",
    "parse_indexes",
]

COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
"""The annotation and label naming a pod's index."""


def completion_index(pod: Any, completions: int | None = None) -> int | None:
    """The pod's index, or None when absent, malformed or not below ``completions``."""
    text = pod.metadata.annotations.get(COMPLETION_INDEX_KEY, "")
    if not text.isdigit():
        return None
    index = int(text)
    if completions is not None and index >= completions:
        return None
    return index


def parse_indexes(text: str, completions: int | None = None) -> set[int]:
    """The indexes in ``"1,3-5"``; malformed parts and indexes >= ``completions`` are
    left out (the field is written only by the controller)."""
    out: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            continue
        first, last = int(low), int(high) if dash else int(low)
        if completions is not None:
            last = min(last, completions - 1)
        out.update(range(first, last + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """``{1, 3, 4, 5}`` -> ``"1,3-5"``."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def first_pending(
    completions: int, succeeded: Collection[int], active: Collection[int], count: int
) -> list[int]:
    """The ``count`` lowest indexes that are neither done nor being worked on."""
    out: list[int] = []
    for index in range(completions):
        if len(out) >= count:
            break
        if index not in succeeded and index not in active:
            out.append(index)
    return out
