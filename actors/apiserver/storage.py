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

Reads here go to the store and are linearizable; the watch cache serves the cheap reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.apiserver import objects
from proto import rpc
from proto.k8s.kinds import KindInfo
from raftstore.client import (
    Client,
    KeyValue,
    RangeResult,
    compare_create,
    op_delete,
    op_put,
    unchanged_since,
)

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
    """Object reads and guarded writes for every kind, through one store client."""

    def __init__(self, client: Client) -> None:
        self.client = client

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
        """Store a new object; ``AlreadyExists`` when the name is taken."""
        m = objects.meta(obj)
        key = objects.key(info, m.namespace, m.name)
        result = await self.client.txn(
            compare=[compare_create(key, "=", 0)],
            success=[op_put(key, encode(obj))],
        )
        if not result.succeeded:
            raise rpc.AlreadyExists(f"{objects.describe(info, obj)} already exists")
        created = objects.copy(obj)
        created.metadata.resource_version = str(result.revision)
        return created

    async def replace(self, info: KindInfo, obj: Any, *, revision: int) -> Any | None:
        """Write ``obj`` if the key was last written at ``revision``; None on a conflict."""
        m = objects.meta(obj)
        key = objects.key(info, m.namespace, m.name)
        result = await self.client.txn(
            compare=[unchanged_since(key, revision)], success=[op_put(key, encode(obj))]
        )
        if not result.succeeded:
            return None
        written = objects.copy(obj)
        written.metadata.resource_version = str(result.revision)
        return written

    async def remove(self, info: KindInfo, obj: Any, *, revision: int) -> Any | None:
        """Delete the key if last written at ``revision``; the object as deleted (its
        resourceVersion the deletion's revision), or None on a conflict."""
        m = objects.meta(obj)
        key = objects.key(info, m.namespace, m.name)
        result = await self.client.txn(
            compare=[unchanged_since(key, revision)], success=[op_delete(key)]
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
    ) -> Any:
        """Apply ``mutate`` to the current object and write the result, retrying against
        the newer object whenever another writer got there first.

        ``mutate`` receives a copy it may change and returns the object to write; an
        object equal to the current one writes nothing. It raises to refuse (a failed
        precondition is a :class:`Conflict`). When ``remove_if(result)`` holds, the object
        is deleted instead (and returned as deleted). ``NotFound`` when it does not exist.
        """
        current = await self.require(info, namespace, name)
        for _ in range(MAX_RETRIES):
            revision = revision_of(current)
            wanted = mutate(objects.copy(current))
            if remove_if(wanted):
                done = await self.remove(info, wanted, revision=revision)
            elif objects.same(wanted, current):
                return current
            else:
                done = await self.replace(info, wanted, revision=revision)
            if done is not None:
                return done
            current = await self.require(info, namespace, name)
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
