"""The garbage collector loop: ownerReferences graph from informers, decisions applied.

The graph
    One informer per kind that can own or be owned (every kind but Event), each with two
    indexes: by the object's own uid and by the uids it references as owners. "The
    dependents of X" is then one index lookup per kind, "does uid U exist" another; the
    informer caches *are* the graph, so it can never disagree with them.

Keys
    ``Kind:namespace/name`` (``Kind:name`` when cluster-scoped). An object is enqueued when
    it appears with ownerReferences, when its references, finalizers or deletion state
    change, when one of its owners is deleted, and -- for an owner waiting on its
    dependents -- whenever one of them changes or goes. Updates that change none of
    these (a pod's status) enqueue nothing.

Never delete what is still owned
    The caches lag the store. An owner the cache does not know may exist already (its
    watch is behind the dependent's), so before a reference is judged dangling the owner
    is read from the API server (a linearizable GET) and its uid compared; only then is
    the dependent deleted, with its uid as precondition. A uid once seen gone -- by that
    GET or by a delete event -- is remembered (uids are never reused), which saves the
    GET for the siblings of a deleted owner. A reference to a kind this server does not
    serve is never judged dangling.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from actors.client import ApiError, Conflict, Invalid, NotFound
from actors.controller import (
    WARNING,
    Controller,
    Handlers,
    Informer,
    TransientError,
    object_key,
)
from actors.controllers.context import ControllerContext
from actors.controllers.podcontrol import owner_reference_patch
from proto.k8s import kinds

from . import decisions
from .decisions import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Delete,
    OwnerState,
    RemoveReferences,
    is_deleting,
)

__all__ = ["GC_KINDS", "GarbageCollector", "item_key", "parse_item_key"]

logger = logging.getLogger(__name__)

GC_KINDS: tuple[str, ...] = tuple(k.kind for k in kinds.KINDS if k.kind != "Event")
"""The kinds the collector watches: every kind that may own or be owned."""
UID_INDEX = "gc/uid"
OWNER_INDEX = "gc/owner-uid"
ABSENT_CACHE_SIZE = 10_000
FINALIZER_ATTEMPTS = 5


def item_key(kind: str, obj: Any) -> str:
    return f"{kind}:{object_key(obj)}"


def parse_item_key(key: str) -> tuple[str, str]:
    kind, _, rest = key.partition(":")
    return kind, rest


def _uid(obj: Any) -> list[str]:
    return [obj.metadata.uid]


def _owner_uids(obj: Any) -> list[str]:
    return [ref.uid for ref in obj.metadata.owner_references]


def _add_index(informer: Informer, name: str, func: Any) -> None:
    try:
        informer.add_indexer(name, func)
    except ValueError:
        pass  # a shared informer another collector instance indexed already


def _shape(obj: Any) -> tuple[Any, ...]:
    """What of an object the collector reacts to."""
    m = obj.metadata
    return (
        tuple(
            (r.uid, r.kind, r.name, r.HasField("block_owner_deletion") and r.block_owner_deletion)
            for r in m.owner_references
        ),
        tuple(m.finalizers),
        m.HasField("deletion_timestamp"),
    )


class GarbageCollector(Controller):
    """The ``garbagecollector`` loop (see the module doc)."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.api = ctx.api
        self.events = ctx.recorder
        self.informers: dict[str, Informer] = {}
        self._absent: OrderedDict[str, None] = OrderedDict()
        super().__init__("garbagecollector", self.reconcile_key, workers=ctx.options.workers)
        for kind in GC_KINDS:
            informer = ctx.informers.informer(kind)
            _add_index(informer, UID_INDEX, _uid)
            _add_index(informer, OWNER_INDEX, _owner_uids)
            self.informers[kind] = informer
            informer.add_handler(self._handlers(kind))
        self.depends_on(list(self.informers.values()))

    # ------------------------------------------------------------------ graph queries

    def find(self, uid: str) -> tuple[str, Any] | None:
        """(kind, object) of the cached object with ``uid``."""
        for kind, informer in self.informers.items():
            found = informer.cache.by_index(UID_INDEX, uid)
            if found:
                return kind, found[0]
        return None

    def dependents(self, uid: str) -> list[tuple[str, Any]]:
        """(kind, object) of every cached object that names ``uid`` as an owner."""
        return [
            (kind, obj)
            for kind, informer in self.informers.items()
            for obj in informer.cache.by_index(OWNER_INDEX, uid)
        ]

    def _mark_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    # ------------------------------------------------------------------ handlers

    def _handlers(self, kind: str) -> Handlers:
        def added(obj: Any) -> None:
            if obj.metadata.owner_references or _owner_work(obj):
                self.enqueue(item_key(kind, obj))

        def updated(old: Any, new: Any) -> None:
            if _shape(old) == _shape(new):
                return
            self.enqueue(item_key(kind, new))
            self._wake_waiting_owners(old)

        def deleted(obj: Any) -> None:
            self._mark_absent(obj.metadata.uid)
            for dep_kind, dep in self.dependents(obj.metadata.uid):
                self.enqueue(item_key(dep_kind, dep))
            self._wake_waiting_owners(obj)

        return Handlers(on_add=added, on_update=updated, on_delete=deleted)

    def _wake_waiting_owners(self, dependent: Any) -> None:
        """A dependent changed or went: owners waiting on it look again."""
        for ref in dependent.metadata.owner_references:
            found = self.find(ref.uid)
            if found is not None and _owner_work(found[1]):
                self.enqueue(item_key(found[0], found[1]))

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> None:
        kind, okey = parse_item_key(key)
        informer = self.informers.get(kind)
        obj = informer.cache.get(okey) if informer is not None else None
        if obj is None:
            return
        if is_deleting(obj):
            if ORPHAN_FINALIZER in obj.metadata.finalizers:
                await self._orphan_dependents(kind, obj)
            elif FOREGROUND_FINALIZER in obj.metadata.finalizers:
                await self._delete_dependents(kind, obj)
            return
        if not obj.metadata.owner_references:
            return
        states = {
            ref.uid: await self._owner_state(obj, ref) for ref in obj.metadata.owner_references
        }
        action = decisions.decide_dependent(
            obj, states, has_dependents=bool(self.dependents(obj.metadata.uid))
        )
        if isinstance(action, Delete):
            await self._delete(kind, obj, action.policy)
        elif isinstance(action, RemoveReferences):
            await self._remove_references(kind, obj, set(action.uids))

    async def _owner_state(self, dependent: Any, ref: Any) -> OwnerState:
        if ref.uid in self._absent:
            return OwnerState.DANGLING
        found = self.find(ref.uid)
        if found is not None:
            return decisions.owner_state(found[1], ref.uid)
        try:
            info = kinds.by_kind(ref.kind)
        except kinds.UnknownKind:
            logger.warning(
                "%s: owner kind %r is not served; keeping it", object_key(dependent), ref.kind
            )
            return OwnerState.SOLID
        if info.namespaced and not dependent.metadata.namespace:
            self.events.event(
                dependent,
                WARNING,
                "OwnerRefInvalidNamespace",
                f"ownerRef [{info.api_version}/{info.kind}, namespace: , name: {ref.name}, "
                f'uid: {ref.uid}] does not exist in namespace ""',
            )
            return OwnerState.DANGLING
        namespace = dependent.metadata.namespace if info.namespaced else ""
        try:
            live = await self.api.get(info, ref.name, namespace=namespace)
        except NotFound:
            live = None
        except ApiError as exc:
            raise TransientError(f"reading owner {ref.kind} {ref.name}: {exc}") from exc
        state = decisions.owner_state(live, ref.uid)
        if state is OwnerState.DANGLING:
            self._mark_absent(ref.uid)
        return state

    # ------------------------------------------------------------------ actions

    async def _delete(self, kind: str, obj: Any, policy: str) -> None:
        logger.info("garbagecollector: deleting %s %s (%s)", kind, object_key(obj), policy)
        try:
            await self.api.delete(
                kind,
                obj.metadata.name,
                namespace=obj.metadata.namespace,
                uid=obj.metadata.uid,
                propagation_policy=policy,
            )
        except (NotFound, Conflict):
            pass  # gone, or another incarnation now has the name
        except ApiError as exc:
            raise TransientError(f"deleting {kind} {object_key(obj)}: {exc}") from exc

    async def _remove_references(self, kind: str, obj: Any, uids: set[str]) -> None:
        keep = [r for r in obj.metadata.owner_references if r.uid not in uids]
        try:
            await self.api.patch_merge(
                kind,
                obj.metadata.name,
                owner_reference_patch(obj, keep),
                namespace=obj.metadata.namespace,
            )
        except NotFound:
            pass
        except (Conflict, Invalid, ApiError) as exc:
            raise TransientError(
                f"removing owner references from {kind} {object_key(obj)}: {exc}"
            ) from exc

    async def _orphan_dependents(self, kind: str, owner: Any) -> None:
        uid = owner.metadata.uid
        for dep_kind, dep in self.dependents(uid):
            await self._remove_references(dep_kind, dep, {uid})
        await self._remove_finalizer(kind, owner, ORPHAN_FINALIZER)

    async def _delete_dependents(self, kind: str, owner: Any) -> None:
        uid = owner.metadata.uid
        dependents = self.dependents(uid)
        for dep_kind, dep in dependents:
            if not is_deleting(dep):
                self.enqueue(item_key(dep_kind, dep))
        if decisions.blocking_dependents(uid, (dep for _, dep in dependents)):
            return  # their deletion events bring the owner back here
        await self._remove_finalizer(kind, owner, FOREGROUND_FINALIZER)

    async def _remove_finalizer(self, kind: str, obj: Any, finalizer: str) -> None:
        current = obj
        for _ in range(FINALIZER_ATTEMPTS):
            if finalizer not in current.metadata.finalizers:
                return
            if current.metadata.uid != obj.metadata.uid:
                return
            remaining = [f for f in current.metadata.finalizers if f != finalizer]
            patch = {
                "metadata": {
                    "finalizers": remaining,
                    "resourceVersion": current.metadata.resource_version,
                }
            }
            try:
                await self.api.patch_merge(
                    kind, current.metadata.name, patch, namespace=current.metadata.namespace
                )
                return
            except NotFound:
                return
            except Conflict:
                try:
                    current = await self.api.get(
                        kind, obj.metadata.name, namespace=obj.metadata.namespace
                    )
                except NotFound:
                    return
            except ApiError as exc:
                raise TransientError(
                    f"removing finalizer {finalizer} from {kind} {object_key(obj)}: {exc}"
                ) from exc
        raise TransientError(f"{kind} {object_key(obj)} kept changing; will retry")


def _owner_work(obj: Any) -> bool:
    """An owner being deleted whose dependents the collector must handle first."""
    return is_deleting(obj) and bool(
        {ORPHAN_FINALIZER, FOREGROUND_FINALIZER} & set(obj.metadata.finalizers)
    )
