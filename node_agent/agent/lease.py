"""The node's heartbeat: a Lease in ``kube-node-lease`` named after the node, renewed.

Kubernetes separated "the node is alive" from "the node's status changed": a Node's
status is big and written rarely, while a Lease is tiny and renewed often. The node
lifecycle controller reads ``spec.renewTime`` to decide whether a node is still there.

The lease: ``holderIdentity`` = the node name, ``leaseDurationSeconds`` = ``duration``
(40 s, Kubernetes' ``nodeLeaseDurationSeconds``), ``renewTime`` = now, and an owner
reference to the Node so that the Lease goes away with it. It is renewed every
``period`` seconds (10 s: a quarter of the duration, as the kubelet does). A failed
renewal is retried at once with backoff (0.2 s doubling, at most 7 s, the kubelet's
numbers), never waiting a whole period; a conflict (someone else wrote the lease)
re-reads it first. Renewals use the resourceVersion of the lease last written, so two
agents that think they are the same node show up as conflicts in the log.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import trio

from actors.client import AlreadyExists, ApiClient, ApiError, Conflict, NotFound
from proto.k8s import coordination_pb2

__all__ = ["LEASE_NAMESPACE", "NodeLease"]

logger = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
_RETRY_INITIAL = 0.2
_RETRY_MAX = 7.0


class NodeLease:
    """Renews the Lease of node ``node_name``; see the module docstring."""

    def __init__(
        self,
        api: ApiClient,
        node_name: str,
        *,
        period: float = 10.0,
        duration: int = 40,
        owner_uid: str = "",
    ) -> None:
        if not period > 0:
            raise ValueError(f"the lease period must be positive seconds, not {period!r}")
        if duration < 1:
            raise ValueError(f"the lease duration must be at least 1 second, not {duration!r}")
        self.api = api
        self.node_name = node_name
        self.period = period
        self.duration = duration
        self.owner_uid = owner_uid
        self.renewals = 0
        self._lease: coordination_pb2.Lease | None = None

    def _fill(self, lease: coordination_pb2.Lease, now: datetime) -> None:
        lease.spec.holder_identity = self.node_name
        lease.spec.lease_duration_seconds = self.duration
        lease.spec.renew_time.FromDatetime(now)
        if self.owner_uid and not any(
            o.uid == self.owner_uid for o in lease.metadata.owner_references
        ):
            del lease.metadata.owner_references[:]
            lease.metadata.owner_references.add(
                api_version="v1", kind="Node", name=self.node_name, uid=self.owner_uid
            )

    async def renew_once(self) -> None:
        """Create or renew the lease once; raises the API error when that fails."""
        now = datetime.now(UTC)
        if self._lease is None:
            try:
                self._lease = await self.api.get(
                    coordination_pb2.Lease, self.node_name, namespace=LEASE_NAMESPACE
                )
            except NotFound:
                lease = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
                lease.metadata.name = self.node_name
                lease.metadata.namespace = LEASE_NAMESPACE
                self._fill(lease, now)
                lease.spec.acquire_time.FromDatetime(now)
                try:
                    self._lease = await self.api.create(lease)
                except AlreadyExists:
                    return await self.renew_once()
                self.renewals += 1
                return
        lease = coordination_pb2.Lease()
        lease.CopyFrom(self._lease)
        self._fill(lease, now)
        try:
            self._lease = await self.api.update(lease)
        except (Conflict, NotFound):
            self._lease = None
            raise
        self.renewals += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew until cancelled; ``started()`` after the first attempt."""
        delay = _RETRY_INITIAL
        first = True
        while True:
            try:
                await self.renew_once()
            except ApiError as exc:
                logger.warning(
                    "renewing the lease of node %s failed (retrying in %.1fs): %s",
                    self.node_name,
                    delay,
                    exc,
                )
                wait = min(delay, self.period)
                delay = min(delay * 2, _RETRY_MAX)
            else:
                wait = self.period
                delay = _RETRY_INITIAL
            if first:
                task_status.started()
                first = False
            await trio.sleep(wait)
