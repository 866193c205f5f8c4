"""The elector's view of its Lease: :class:`LeaseRecord`, the :class:`LeaseLock` seam, and
:class:`ApiLeaseLock`, the real lock on the API server.

The elector needs three operations on one object -- read it, create it, and replace it
only if nobody wrote it since a given ``resourceVersion`` -- and nothing else of the API.
Putting those behind a small Protocol lets the election logic run against an in-memory
fake on trio's fake clock, where failures and delays can be injected at will, while
production goes through :class:`ApiLeaseLock` and the API server's optimistic
concurrency (the store compares ``mod_revision`` in one transaction).

Contract of a :class:`LeaseLock` (the elector relies on every line of it):

* ``get()`` is a linearizable read: it returns the record as last written, or ``None``
  when the Lease does not exist.
* ``create(record)`` creates the Lease or raises :class:`~actors.client.errors.AlreadyExists`.
* ``update(record, resource_version)`` replaces the Lease's spec only if its current
  ``resourceVersion`` is ``resource_version``; otherwise it raises
  :class:`~actors.client.errors.Conflict` (or :class:`~actors.client.errors.NotFound`
  when the Lease was deleted). Every successful write changes ``resource_version``.
* Create and update return the record as stored, with its new ``resource_version``.
* Transport failures raise :class:`~actors.client.errors.ServiceUnavailable` /
  :class:`~actors.client.errors.Timeout`; the outcome of such a write is unknown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import timestamp_pb2

from actors.client import ApiClient, errors
from proto.k8s import coordination_pb2

__all__ = ["ApiLeaseLock", "LeaseLock", "LeaseRecord", "lease_from_record", "record_from_lease"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseRecord:
    """A Lease's ``spec`` as the elector reads and writes it, plus its ``resourceVersion``.

    ``holder_identity`` ``""`` means nobody holds the Lease (it was released). Times are
    wall-clock (UTC) and only informative: no decision compares them across machines.
    """

    holder_identity: str = ""
    lease_duration_seconds: int | None = None
    acquire_time: dt.datetime | None = None
    renew_time: dt.datetime | None = None
    lease_transitions: int = 0
    resource_version: str = ""
    """The version this record was read at (``""`` for a record not yet written)."""


class LeaseLock(Protocol):
    """Read, create and compare-and-swap one Lease; see the module doc for the contract."""

    async def get(self) -> LeaseRecord | None: ...

    async def create(self, record: LeaseRecord) -> LeaseRecord: ...

    async def update(self, record: LeaseRecord, resource_version: str) -> LeaseRecord: ...


def _timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(dt.UTC))
    return stamp


def lease_from_record(
    record: LeaseRecord,
    *,
    namespace: str,
    name: str,
    base: coordination_pb2.Lease | None = None,
) -> coordination_pb2.Lease:
    """A Lease whose spec is ``record`` (metadata copied from ``base`` when given)."""
    lease = coordination_pb2.Lease()
    if base is not None:
        lease.CopyFrom(base)
    lease.api_version = "coordination.k8s.io/v1"
    lease.kind = "Lease"
    lease.metadata.namespace = namespace
    lease.metadata.name = name
    lease.ClearField("spec")
    spec = lease.spec
    spec.holder_identity = record.holder_identity
    if record.lease_duration_seconds is not None:
        spec.lease_duration_seconds = record.lease_duration_seconds
    if record.acquire_time is not None:
        spec.acquire_time.CopyFrom(_timestamp(record.acquire_time))
    if record.renew_time is not None:
        spec.renew_time.CopyFrom(_timestamp(record.renew_time))
    spec.lease_transitions = record.lease_transitions
    return lease


def record_from_lease(lease: coordination_pb2.Lease) -> LeaseRecord:
    """The :class:`LeaseRecord` of a Lease read from the API (absent fields: defaults)."""
    spec = lease.spec
    return LeaseRecord(
        holder_identity=spec.holder_identity,
        lease_duration_seconds=(
            spec.lease_duration_seconds if spec.HasField("lease_duration_seconds") else None
        ),
        acquire_time=(
            spec.acquire_time.ToDatetime(tzinfo=dt.UTC) if spec.HasField("acquire_time") else None
        ),
        renew_time=(
            spec.renew_time.ToDatetime(tzinfo=dt.UTC) if spec.HasField("renew_time") else None
        ),
        lease_transitions=spec.lease_transitions,
        resource_version=str(lease.metadata.resource_version),
    )


class ApiLeaseLock:
    """A :class:`LeaseLock` on the Lease ``namespace/name`` through an :class:`ApiClient`.

    Updates replace the spec of the Lease last read, keeping its metadata (labels,
    annotations, owner references that someone else set), as client-go's LeaseLock does.
    """

    def __init__(self, api: ApiClient, *, namespace: str, name: str) -> None:
        self._api = api
        self.namespace = namespace
        self.name = name
        self._last: coordination_pb2.Lease | None = None

    def __repr__(self) -> str:
        return f"ApiLeaseLock({self.namespace}/{self.name})"

    def _remember(self, lease: coordination_pb2.Lease) -> LeaseRecord:
        self._last = lease
        return record_from_lease(lease)

    async def get(self) -> LeaseRecord | None:
        try:
            lease = await self._api.get(coordination_pb2.Lease, self.name, namespace=self.namespace)
        except errors.NotFound:
            self._last = None
            return None
        return self._remember(lease)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        lease = lease_from_record(record, namespace=self.namespace, name=self.name)
        return self._remember(await self._api.create(lease))

    async def update(self, record: LeaseRecord, resource_version: str) -> LeaseRecord:
        base = self._last
        if base is not None and base.metadata.resource_version != resource_version:
            base = None
        lease = lease_from_record(record, namespace=self.namespace, name=self.name, base=base)
        lease.metadata.resource_version = resource_version
        return self._remember(await self._api.update(lease))
