"""One running store member as the gRPC services see it.

``Member`` joins the replicated log (Raft) to the state it drives (``StoreState``) and
gives the services four things: ``write`` (propose an MVCC command and wait for its
result), ``read`` (run a synchronous read under the state lock), ``barrier`` (make the next
read linearizable) and ``changed`` (a broadcast that fires after every apply, which
watchers wait on instead of polling).

Consistency: a read after ``await barrier()`` reflects every write acknowledged before the
barrier began, on any member, also across a leader change. On the leader the barrier is a
ReadIndex (its commit index, confirmed by a heartbeat round a majority acknowledged after
the barrier began, applied locally; no log entry); on a follower, or when the leader cannot
confirm, it is a no-op entry committed through Raft and applied locally before the read.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import trio

from proto import rpc
from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc import ApplyResult, MvccStore
from raftstore.replication import errors as repl
from raftstore.replication.node import RaftStatus
from raftstore.server import errors
from raftstore.server.config import StoreConfig, member_id
from raftstore.server.state import StoreState, mvcc_command

T = TypeVar("T")

WRITE_TIMEOUT = 7.0  # etcd answers "request timed out" after about 7 s as well


class ReplicatedLog(Protocol):
    """What ``Member`` needs from Raft (``raftstore.replication.RaftNode`` provides it)."""

    async def propose(self, command: bytes, *, timeout: float) -> object: ...

    async def read_barrier(self, *, timeout: float) -> None: ...

    def status(self) -> RaftStatus: ...

    async def add_member(self, address: str, *, timeout: float) -> None: ...

    async def remove_member(self, address: str, *, timeout: float) -> None: ...


class Member:
    def __init__(self, *, config: StoreConfig, state: StoreState, log: ReplicatedLog) -> None:
        self.config = config
        self.state = state
        self.log = log
        self.id = config.member_id
        self.cluster_id = config.cluster_id
        self._changed = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self._notify_pending = threading.Event()
        state.on_change(self._on_apply)

    # -- change broadcast ------------------------------------------------------------

    def _on_apply(self) -> None:
        """Raft thread: schedule one wake-up in trio; coalesces bursts of applies."""
        if not self._notify_pending.is_set():
            self._notify_pending.set()
            try:
                self._token.run_sync_soon(self._wake)
            except trio.RunFinishedError:
                pass

    def _wake(self) -> None:
        self._notify_pending.clear()
        self._changed.set()
        self._changed = trio.Event()

    def changed(self) -> trio.Event:
        """An event set after the next apply. Take it *before* reading, then wait on it."""
        return self._changed

    # -- reads and writes ------------------------------------------------------------

    def read(self, fn: Callable[[MvccStore], T]) -> T:
        with self.state.lock:
            return fn(self.state.mvcc)

    @property
    def revision(self) -> int:
        return self.read(lambda s: s.revision)

    def header(self, revision: int | None = None) -> rpc_pb2.ResponseHeader:
        return rpc_pb2.ResponseHeader(
            cluster_id=self.cluster_id,
            member_id=self.id,
            revision=self.revision if revision is None else revision,
            raft_term=self.log.status().term,
        )

    async def _until_applied_or_timeout(
        self, attempt: Callable[[float], Awaitable[T]], *, retry_indeterminate: bool
    ) -> T:
        """Run ``attempt(timeout)`` until it succeeds or the write timeout passes.

        Failures that guarantee nothing was applied (no leader, leader changed before the
        proposal was accepted) are retried with backoff through an election; so are
        indeterminate ones when ``retry_indeterminate`` (only safe for no-ops).
        """
        retryable: tuple[type[repl.ReplicationError], ...] = (repl.NotLeader, repl.ProposalDropped)
        if retry_indeterminate:
            retryable += (repl.ProposalIndeterminate,)
        deadline = trio.current_time() + WRITE_TIMEOUT
        delay = 0.02
        while True:
            remaining = deadline - trio.current_time()
            try:
                return await attempt(max(remaining, 0.001))
            except retryable as exc:
                if trio.current_time() + delay >= deadline:
                    raise errors.from_replication(exc) from None
            except repl.ReplicationError as exc:
                raise errors.from_replication(exc) from None
            await trio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def barrier(self) -> None:
        """Wait until a following read is linearizable (retried through elections)."""
        await self._until_applied_or_timeout(
            lambda timeout: self.log.read_barrier(timeout=timeout), retry_indeterminate=True
        )

    async def propose(self, command: bytes) -> object:
        """Replicate ``command`` and return its result once applied on this member.

        While no leader is known (an election) the proposal is retried until the write
        timeout: those failures guarantee it was not applied, so a retry cannot apply it
        twice. An indeterminate outcome is never retried.
        """
        return await self._until_applied_or_timeout(
            lambda timeout: self.log.propose(command, timeout=timeout), retry_indeterminate=False
        )

    async def write(self, command: bytes) -> ApplyResult:
        """Propose an MVCC command; its response, or the etcd error it was rejected with."""
        result = await self.propose(mvcc_command(command))
        if not isinstance(result, ApplyResult):
            raise rpc.Internal(f"etcdserver: unexpected apply result {type(result).__name__}")
        if result.error is not None:
            raise errors.from_mvcc(result.error)
        return result

    def leader_client_url(self) -> str | None:
        """The client URL of the current leader, from the member registry."""
        leader = self.log.status().leader_id
        if leader is None:
            return None
        with self.state.lock:
            member = self.state.members.get(member_id(leader))
        if member is None or not member.clientURLs:
            return None
        return str(member.clientURLs[0])
