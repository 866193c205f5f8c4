"""Objects in the store: encoding, compare-and-swap writes, consistent paged reads.

An object is stored as its protobuf bytes under :func:`objects.key`, with
``metadata.resourceVersion`` left empty: the resourceVersion is the key's ``mod_revision``
(as a decimal string), filled in on every read. So a resourceVersion can never disagree
with the store, and a write needs no second round trip to learn it.

Every write is one Txn guarded by a compare, so two writers never lose each other's
updates: a create compares ``create_revision == 0`` (the key is absent), an update or a
delete compares ``mod_revision`` with the revision the writer read. A failed compare
returns the current value in the same Txn, and :meth:`Storage.guaranteed_update` retries
its mutation against it (Kubernetes' GuaranteedUpdate). Conflicts surface as
:class:`Conflict` (an ``ABORTED`` status) naming the object.

Allocation keys (:mod:`.allocation`: a Service's clusterIP and nodePorts) are written in
the object's own transactions: a create also creates every key the object holds
(``create_revision == 0`` each), a replace creates the keys it gains and deletes those it
drops, a remove deletes them all. A key someone else holds fails the write with
:class:`~actors.apiserver.allocation.ClaimTaken`.

Kinds with a TTL (Events: Kubernetes keeps them an hour) are written with a store lease,
on every write, so an object expires its TTL after its last write. As Kubernetes' lease
manager does, one lease serves every such write for a twentieth of the TTL, and is granted
that much longer than the TTL, so the store holds a handful of leases, not one per event.

Reads here go to the store and are linearizable; the watch cache serves the cheap reads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actors.apiserver import objects
from actors.apiserver.allocation import ClaimTaken, claims
from proto import rpc
from proto.k8s.kinds import KindInfo
from raftstore.client import (
    Client,
    Compare,
    KeyValue,
    LeaseNotFound,
    Op,
    RangeResult,
    TxnResult,
    compare_create,
    op_delete,
    op_get,
    op_put,
    unchanged_since,
)

# A lease serves writes for this fraction of the TTL (Kubernetes' LeaseManager: 5 %).
LEASE_REUSE_FRACTION = 0.05

# How often guaranteed_update re-reads and retries before giving up (each retry means
# another writer won the race; Kubernetes retries without bound, we stop at a hundred).
MAX_RETRIES = 100

CONFLICT_ADVICE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


class Conflict(rpc.Aborted):
    """An optimistic-concurrency conflict: the object changed since the caller read it."""


def conflict(info: KindInfo, namespace: str, name: str, reason: str = CONFLICT_ADVICE) -> Conflict:
    return Conflict(
        f"Conflict: operation cannot be fulfilled on "
        f"{objects.name_of(info, namespace, name)}: {reason}"
    )


def not_found(info: KindInfo, namespace: str, name: str) -> rpc.NotFound:
    return rpc.NotFound(f"{objects.name_of(info, namespace, name)} not found")


def encode(obj: Any) -> bytes:
    stored = objects.copy(obj)
    stored.metadata.resource_version = ""
    data: bytes = stored.SerializeToString(deterministic=True)
    return data


def decode(info: KindInfo, value: bytes, revision: int) -> Any:
    obj = info.message()
    obj.ParseFromString(value)
    obj.api_version = info.api_version
    obj.kind = info.kind
    obj.metadata.resource_version = str(revision)
    return obj


def parse_revision(resource_version: str) -> int:
    """A resourceVersion as a revision; ``InvalidArgument`` unless a decimal number."""
    if not resource_version.isdigit():
        raise rpc.InvalidArgument(f"invalid resourceVersion {resource_version!r}")
    return int(resource_version)


def revision_of(obj: Any) -> int:
    return int(obj.metadata.resource_version)


@dataclass(frozen=True)
class Page:
    """One page of a list read from the store at ``revision``."""

    kvs: tuple[KeyValue, ...]
    revision: int
    more: bool


class Storage:
    """Object reads and guarded writes for every kind, through one store client.

    ``ttls`` maps a kind name to the seconds its objects live after their last write.
    """

    def __init__(
        self,
        client: Client,
        *,
        ttls: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttls = dict(ttls or {})
        self.clock = clock
        # ttl -> (lease id, when granted): the lease reused for writes with that TTL.
        self._leases: dict[int, tuple[int, float]] = {}

    async def _lease(self, info: KindInfo) -> int:
        ttl = self.ttls.get(info.kind, 0)
        if not ttl:
            return 0
        reuse = ttl * LEASE_REUSE_FRACTION
        now = self.clock()
        held = self._leases.get(ttl)
        if held is not None and now - held[1] < reuse:
            return held[0]
        granted = await self.client.grant(math.ceil(ttl + reuse))
        self._leases[ttl] = (granted.id, now)
        return granted.id

    async def _write(
        self,
        info: KindInfo,
        compare: Sequence[Compare],
        put: tuple[bytes, bytes],
        success: Sequence[Op],
        failure: Sequence[Op],
    ) -> TxnResult:
        """One guarded write of the object ``put`` (key, value), with its kind's lease."""
        for attempt in range(2):
            lease = await self._lease(info)
            ops = [op_put(put[0], put[1], lease=lease), *success]
            try:
                return await self.client.txn(compare=compare, success=ops, failure=failure)
            except LeaseNotFound:
                self._leases.pop(self.ttls.get(info.kind, 0), None)  # expired: grant anew
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, info: KindInfo, namespace: str, name: str) -> Any | None:
        """The object as it is now (linearizable), or None."""
        result = await self.client.get(objects.key(info, namespace, name))
        kv = result.kv
        return None if kv is None else decode(info, kv.value, kv.mod_revision)

    async def require(self, info: KindInfo, namespace: str, name: str) -> Any:
        obj = await self.get(info, namespace, name)
        if obj is None:
            raise not_found(info, namespace, name)
        return obj

    async def create(self, info: KindInfo, obj: Any) -> Any:
        """Store a new object and the allocation keys it holds; ``AlreadyExists`` when the
        name is taken, :class:`ClaimTaken` when an allocation key is."""
        m = objects.meta(obj)
        key = objects.key(info, m.namespace, m.name)
        held = sorted(claims(info, obj))
        result = await self._write(
            info,
            compare=[compare_create(k, "=", 0) for k in (key, *held)],
            put=(key, encode(obj)),
            success=[op_put(k, key) for k in held],
            failure=[op_get(k) for k in (key, *held)],
        )
        if not result.succeeded:
            if _found(result, 0):
                raise rpc.AlreadyExists(f"{objects.describe(info, obj)} already exists")
            _raise_taken(result, held, key, offset=1)
            raise conflict(info, m.namespace, m.name, "an allocation changed; try again")
        created = objects.copy(obj)
        created.metadata.resource_version = str(result.revision)
        return created

    async def replace(
        self, info: KindInfo, obj: Any, *, revision: int, previous: Any | None = None
    ) -> Any | None:
        """Write ``obj`` if the key was last written at ``revision``; None on a conflict.

        ``previous`` is the object as read at ``revision``: the allocation keys ``obj``
        holds and it did not are created (:class:`ClaimTaken` when another object holds
        one), those it held and ``obj`` does not are deleted.
        """
        written, _ = await self._replace(info, obj, revision=revision, previous=previous)
        return written

    async def _replace(
        self, info: KindInfo, obj: Any, *, revision: int, previous: Any | None
    ) -> tuple[Any | None, Any | None]:
        """:meth:`replace`, and on a conflict the object as it is now (None: gone), read
        by the same Txn."""
        m = objects.meta(obj)
        key = objects.key(info, m.namespace, m.name)
        had = claims(info, previous) if previous is not None else frozenset()
        wanted = claims(info, obj)
        gained = sorted(wanted - had)
        result = await self._write(
            info,
            compare=[unchanged_since(key, revision), *(compare_create(k, "=", 0) for k in gained)],
            put=(key, encode(obj)),
            success=[
                *(op_put(k, key) for k in gained),
                *(op_delete(k) for k in sorted(had - wanted)),
            ],
            failure=[op_get(key), *(op_get(k) for k in gained)],
        )
        if not result.succeeded:
            _raise_taken(result, gained, key, offset=1)
            kvs = getattr(result.responses[0], "kvs", ())
            return None, (decode(info, kvs[0].value, kvs[0].mod_revision) if kvs else None)
        written = objects.copy(obj)
        written.metadata.resource_version = str(result.revision)
        return written, None

    async def remove(self, info: KindInfo, obj: Any, *, revision: int) -> Any | None:
        """Delete the key if last written at ``revision``; the object as deleted (its
        resourceVersion the deletion's revision), or None on a conflict."""
        m = objects.meta(obj)
        key = objects.key(info, m.namespace, m.name)
        held = sorted(claims(info, obj))
        result = await self.client.txn(
            compare=[unchanged_since(key, revision)],
            success=[op_delete(key), *(op_delete(k) for k in held)],
        )
        if not result.succeeded:
            return None
        deleted = objects.copy(obj)
        deleted.metadata.resource_version = str(result.revision)
        return deleted

    async def guaranteed_update(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Any], Any],
        *,
        remove_if: Callable[[Any], bool] = lambda obj: False,
        cached: Any | None = None,
    ) -> Any:
        """Apply ``mutate`` to the current object and write the result, retrying against
        the newer object whenever another writer got there first.

        ``mutate`` receives a copy it may change and returns the object to write; an
        object equal to the current one writes nothing. It raises to refuse (a failed
        precondition is a :class:`Conflict`). When ``remove_if(result)`` holds, the object
        is deleted instead (and returned as deleted). ``NotFound`` when it does not exist.

        ``cached`` is the object as a cache last saw it (the watch cache's copy, perhaps
        stale). The first attempt starts from it instead of reading the store: one store
        round trip instead of two when it is current, as Kubernetes' GuaranteedUpdate
        does with its watch cache. A stale copy cannot cause a wrong write: the write
        compares the revision the copy was taken at, fails, and its failure branch reads
        the current object in the same Txn, which the next attempt starts from. Answers
        that the stale copy could make wrong -- ``mutate`` refusing it, or finding
        nothing to change -- are given only about an object read from the store.
        """
        if cached is None:
            current, fresh = await self.require(info, namespace, name), True
        else:
            current, fresh = cached, False
        for _ in range(MAX_RETRIES):
            revision = revision_of(current)
            try:
                wanted = mutate(objects.copy(current))
            except rpc.RpcError:
                if fresh:
                    raise
                current, fresh = await self.require(info, namespace, name), True
                continue
            latest = None
            if remove_if(wanted):
                done = await self.remove(info, current, revision=revision)
                if done is not None:
                    done = _as_deleted(wanted, done)
            elif objects.same(wanted, current):
                if fresh:
                    return current
                done = None
            else:
                done, latest = await self._replace(
                    info, wanted, revision=revision, previous=current
                )
            if done is not None:
                return done
            if latest is None:
                latest = await self.require(info, namespace, name)
            current, fresh = latest, True
        raise conflict(info, namespace, name, "too many concurrent writers; try again")

    async def page(
        self, info: KindInfo, start: bytes, end: bytes, *, revision: int, limit: int
    ) -> Page:
        """Keys in ``[start, end)`` at ``revision`` (0: now), at most ``limit`` (0: all).

        A compacted ``revision`` raises :class:`raftstore.client.Compacted`.
        """
        result: RangeResult = await self.client.get(
            start, range_end=end, revision=revision, limit=limit
        )
        return Page(kvs=result.kvs, revision=revision or result.revision, more=result.more)


def _found(result: TxnResult, index: int) -> bool:
    response = result.responses[index]
    return bool(getattr(response, "kvs", ()))


def _raise_taken(result: TxnResult, keys: Sequence[bytes], owner: bytes, *, offset: int) -> None:
    """Raise :class:`ClaimTaken` for the first of ``keys`` that another object holds,
    from a failed write's reads (``offset``: reads before the keys')."""
    for i, k in enumerate(keys):
        response = result.responses[offset + i]
        kvs = getattr(response, "kvs", ())
        if kvs and kvs[0].value != owner:
            raise ClaimTaken(k, kvs[0].value)


def _as_deleted(obj: Any, deleted: Any) -> Any:
    out = objects.copy(obj)
    out.metadata.resource_version = deleted.metadata.resource_version
    return out
