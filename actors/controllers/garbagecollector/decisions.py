"""What the garbage collector does with one object, given what is known of its owners.

Pure functions: the controller (:mod:`.controller`) finds the facts -- which owners exist,
under which uid, and whether they wait for their dependents -- and these rules, which
are Kubernetes' ``attemptToDeleteItem`` and ``processDeletingDependentsItem``, turn them
into one :class:`Action`.

For a *dependent* (an object with ownerReferences, not being deleted) each owner
reference is one of:

``SOLID``
    an object of that kind, name and uid exists (deleted or not, unless it waits for
    its dependents);
``DANGLING``
    no such object, or one under another uid (the owner was deleted and recreated: the
    reference is to the old incarnation);
``WAITING``
    the owner exists, is being deleted, and holds the ``foregroundDeletion`` finalizer:
    it waits for its dependents to go first.

Then:

* a solid owner keeps the object; dangling and waiting references are removed from it
  (a waiting owner must not wait for an object that another owner keeps);
* no solid owner and at least one waiting one: delete the object -- in the foreground
  when it has dependents of its own, so the waiting owner waits for the whole subtree;
* otherwise (every owner gone): delete the object, propagating as its own finalizers ask
  (``orphan`` -> Orphan, ``foregroundDeletion`` -> Foreground, else Background).

For an *owner being deleted*:

* with the ``orphan`` finalizer: remove the references to it from every dependent, then
  the finalizer;
* with ``foregroundDeletion``: its dependents are processed (as above, they find it
  WAITING and go); once no dependent that blocks it (``blockOwnerDeletion: true``)
  remains, the finalizer is removed and the API server deletes the owner.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FOREGROUND_FINALIZER",
    "ORPHAN_FINALIZER",
    "Action",
    "Delete",
    "Keep",
    "OwnerState",
    "RemoveReferences",
    "blocking_dependents",
    "decide_dependent",
    "deletion_policy",
    "is_deleting",
    "owner_state",
]

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


class OwnerState(enum.Enum):
    SOLID = "solid"
    DANGLING = "dangling"
    WAITING = "waiting"


@dataclass(frozen=True)
class Keep:
    """Nothing to do."""


@dataclass(frozen=True)
class Delete:
    """Delete the object (uid precondition) with this propagation policy."""

    policy: str


@dataclass(frozen=True)
class RemoveReferences:
    """Remove the ownerReferences with these uids."""

    uids: tuple[str, ...]


Action = Keep | Delete | RemoveReferences


def is_deleting(obj: Any) -> bool:
    return bool(obj.metadata.HasField("deletion_timestamp"))


def owner_state(owner: Any | None, uid: str) -> OwnerState:
    """The state of a reference to ``uid`` given the object found under its name."""
    if owner is None or owner.metadata.uid != uid:
        return OwnerState.DANGLING
    if is_deleting(owner) and FOREGROUND_FINALIZER in owner.metadata.finalizers:
        return OwnerState.WAITING
    return OwnerState.SOLID


def deletion_policy(obj: Any) -> str:
    """How an object whose owners are all gone is deleted: as its finalizers ask."""
    finalizers = obj.metadata.finalizers
    if FOREGROUND_FINALIZER in finalizers:
        return "Foreground"
    if ORPHAN_FINALIZER in finalizers:
        return "Orphan"
    return "Background"


def decide_dependent(obj: Any, states: Mapping[str, OwnerState], *, has_dependents: bool) -> Action:
    """The action for ``obj`` (not being deleted) given each owner uid's state."""
    if is_deleting(obj) or not obj.metadata.owner_references:
        return Keep()
    uids = [ref.uid for ref in obj.metadata.owner_references]
    solid = [u for u in uids if states[u] is OwnerState.SOLID]
    others = tuple(u for u in uids if states[u] is not OwnerState.SOLID)
    if solid:
        return RemoveReferences(others) if others else Keep()
    if any(states[u] is OwnerState.WAITING for u in uids) and has_dependents:
        return Delete("Foreground")
    return Delete(deletion_policy(obj))


def _reference_to(obj: Any, uid: str) -> Any | None:
    for ref in obj.metadata.owner_references:
        if ref.uid == uid:
            return ref
    return None


def blocking_dependents(owner_uid: str, dependents: Iterable[Any]) -> list[Any]:
    """The dependents whose reference to ``owner_uid`` sets ``blockOwnerDeletion``."""
    out = []
    for dep in dependents:
        ref = _reference_to(dep, owner_uid)
        if ref is not None and ref.HasField("block_owner_deletion") and ref.block_owner_deletion:
            out.append(dep)
    return out
