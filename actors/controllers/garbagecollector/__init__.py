"""The garbage collector: dependents follow their owners, as ownerReferences say.

Kubernetes' garbage collector, on the ownerReferences graph kept by informers:

* **background** deletion -- the owner goes at once; every object whose owners are all
  gone (no object with the referenced uid exists) is then deleted;
* **foreground** -- an owner deleted with ``propagationPolicy: Foreground`` stays, with
  the ``foregroundDeletion`` finalizer, until its dependents with
  ``blockOwnerDeletion: true`` are gone; the collector deletes them, then removes the
  finalizer;
* **orphan** -- an owner deleted with ``propagationPolicy: Orphan`` (finalizer
  ``orphan``) goes only after the collector has removed the references to it from its
  dependents, which stay.

An owner is judged gone only after a live GET (the caches may lag) with a uid compare: an
object recreated under the same name is another owner. :mod:`.decisions` holds the rules,
:mod:`.controller` the loop.
"""

from __future__ import annotations

from actors.controller import Controller
from actors.controllers.context import ControllerContext

from .controller import GC_KINDS, GarbageCollector
from .decisions import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, OwnerState, decide_dependent

__all__ = [
    "FOREGROUND_FINALIZER",
    "GC_KINDS",
    "ORPHAN_FINALIZER",
    "GarbageCollector",
    "OwnerState",
    "decide_dependent",
    "new_controller",
]


def new_controller(ctx: ControllerContext) -> Controller:
    """The garbage collector on ``ctx``'s shared informers."""
    return GarbageCollector(ctx)
