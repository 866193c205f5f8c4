"""Keeping a lease alive, and noticing when it is lost.

``async with client.keepalive(lease_id) as keeper:`` renews the lease from a background
task owned by the context manager (its own nursery), every third of the TTL the store
last reported, over a LeaseKeepAlive stream on the current endpoint. The first renewal
happens before the block starts, so a lease that does not exist raises
:class:`~raftstore.client.errors.LeaseNotFound` at once.

Failover: when the stream fails, renewal moves to the next endpoint (renewing is
idempotent, so it is always safe to repeat), backing off up to one second between
rounds.

Loss: the lease is lost when the store answers a renewal with TTL 0 (it expired or was
revoked), or when no renewal succeeded for a whole TTL (the store may have let it expire
while we could not reach it -- clientv3 makes the same call). Then ``keeper.lost`` is
set, the block is cancelled, and leaving it raises
:class:`~raftstore.client.errors.LeaseLost`: whoever held something by the lease (a
leader election, say) stops acting on it at once. Without loss, leaving the block stops
renewing; the lease itself lives on until it expires or is revoked (``client.lease(ttl)``
grants one and revokes it on exit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from proto import rpc
from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftstore.client.errors import (
    EndpointsUnavailable,
    LeaseLost,
    LeaseNotFound,
    translate,
)
from raftstore.client.transport import Transport

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0
_MIN_INTERVAL = 0.1


@dataclass
class KeepAlive:
    """The state of one kept-alive lease, as the renewing task last saw it."""

    id: int
    ttl: int = 0  # seconds the store granted at the last renewal
    renewals: int = 0
    expires_at: float = 0.0  # trio.current_time() by which the store may expire it
    lost: trio.Event = field(default_factory=trio.Event)
    error: LeaseLost | None = None

    def _renewed(self, ttl: int, at: float) -> None:
        self.ttl = ttl
        self.renewals += 1
        self.expires_at = at + ttl

    def _lose(self, reason: str) -> None:
        if self.error is None:
            self.error = LeaseLost(f"lease {self.id:x} lost: {reason}", lease_id=self.id)
            self.lost.set()


async def _renew_over_stream(
    transport: Transport, index: int, keeper: KeepAlive, started: Callable[[], None]
) -> None:
    """Renew over one stream until the lease is lost (returns) or the stream fails (raises)."""
    stub = transport.stub(index, rpc_pb2_grpc.LeaseStub)
    transport.cancelled_streams += 1  # every keep-alive stream ends by cancellation
    async with stub.LeaseKeepAlive() as stream:
        while True:
            sent_at = trio.current_time()
            await stream.send(rpc_pb2.LeaseKeepAliveRequest(ID=keeper.id))
            limit = sent_at + transport.timeout
            if keeper.renewals:
                limit = min(limit, keeper.expires_at)
            with trio.move_on_at(limit) as waited:
                response = await stream.receive()
            if waited.cancelled_caught:
                raise rpc.Unavailable(f"no keep-alive answer from {transport.endpoints[index]}")
            if response is None:
                raise rpc.Unavailable("the server ended the keep-alive stream")
            if response.TTL <= 0:
                if not keeper.renewals:
                    raise LeaseNotFound("etcdserver: requested lease not found")
                keeper._lose("expired or revoked")
                return
            keeper._renewed(response.TTL, sent_at)
            started()
            await trio.sleep(max(response.TTL / 3, _MIN_INTERVAL))


async def _keep_alive(
    transport: Transport,
    keeper: KeepAlive,
    body: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Renew until cancelled; report started after the first renewal; cancel ``body`` on
    loss. Before the first renewal, errors are raised (to :meth:`trio.Nursery.start`)."""
    reported = False

    def started() -> None:
        nonlocal reported
        if not reported:
            reported = True
            task_status.started()

    first_deadline = trio.current_time() + transport.timeout
    backoff = _BACKOFF_FIRST
    failures: list[str] = []
    while True:
        index = transport.current
        try:
            await _renew_over_stream(transport, index, keeper, started)
            break  # lost
        except rpc.RpcError as raw:
            error = translate(raw)
            if not isinstance(error, rpc.Unavailable):
                if not reported:
                    raise error from None
                keeper._lose(str(error))
                break
            transport.failed(index)
            failures.append(f"{transport.endpoints[index]}: {error}")
        deadline = keeper.expires_at if reported else first_deadline
        now = trio.current_time()
        if now >= deadline:
            if not reported:
                raise EndpointsUnavailable(
                    f"cannot renew lease {keeper.id:x}: no endpoint available "
                    f"({'; '.join(failures)})"
                )
            keeper._lose(f"not renewed within its TTL of {keeper.ttl}s")
            break
        await trio.sleep(min(backoff, deadline - now))
        backoff = min(2 * backoff, _BACKOFF_MAX)
    body.cancel()


def _only(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception in ``group`` (from the block or the task), or the group itself."""
    if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
        return group.exceptions[0]
    return group


@asynccontextmanager
async def keep_alive(transport: Transport, lease_id: int) -> AsyncIterator[KeepAlive]:
    """Keep ``lease_id`` alive while the block runs; see the module docstring."""
    keeper = KeepAlive(id=lease_id)
    with trio.CancelScope() as body:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(_keep_alive, transport, keeper, body)
                yield keeper
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The nursery is ours, not the caller's: give back the block's own exception.
            raise _only(group) from None
    if keeper.error is not None:
        raise keeper.error


async def revoke_quietly(transport: Transport, lease_id: int) -> None:
    """Revoke ``lease_id``, even from a cancelled scope; a lease already gone or a store out
    of reach is ignored (the lease then ends by its TTL)."""
    with trio.CancelScope(shield=True), trio.move_on_after(transport.timeout):
        try:
            await transport.unary(
                rpc_pb2_grpc.LeaseStub,
                "LeaseRevoke",
                rpc_pb2.LeaseRevokeRequest(ID=lease_id),
                idempotent=False,
            )
        except (LeaseNotFound, rpc.Unavailable, rpc.DeadlineExceeded):
            pass
