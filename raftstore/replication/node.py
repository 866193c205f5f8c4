"""``RaftNode``: a trio-facing member of a raft group that replicates opaque byte commands.

The problem: pysyncobj is a threaded library with callbacks; the rest of raftstore is trio.
A raft member must apply committed commands in log order, hand each result back to the task
that proposed it, tell watchers about every apply, and never block the raft thread on trio.

How it is split:

* ``_pysyncobj.RaftCore`` (the only module that imports pysyncobj) runs the Raft in its own
  thread. The state machine, the apply hooks and the leadership hooks run there,
  synchronously, in log order.
* This module is the trio side. A proposal registers a ``_Waiter`` and queues the envelope;
  when the entry is applied locally the raft thread stores the result in the waiter and
  wakes the trio task with ``TrioToken.run_sync_soon(event.set)`` -- the only thing the raft
  thread ever does to trio. Timeouts are trio cancel scopes on the waiting side; a waiter
  that timed out is simply forgotten (the raft thread's later ``set`` is harmless).

Rejected alternatives: ``trio.from_thread.run_sync`` would block the raft thread until trio
runs the callback (a slow trio loop would stall the Raft); pysyncobj's ``sync=True`` calls
block a worker thread per proposal; pysyncobj's own auto-tick thread dies when the thread
that created it exits (a trio worker thread).

Guarantees:

* ``propose`` returns only after the command is committed **and** applied on this member,
  with the result of this member's ``apply``. On a follower the command is forwarded to the
  leader (pysyncobj's ``apply_command`` message) and the follower waits for its own apply of
  the log position the leader assigned.
* ``read_barrier`` returns only after this member applied every entry committed before the
  barrier call started, so every write acknowledged before then is applied here: on the
  leader by ReadIndex (commit index confirmed by a majority heartbeat round, no log entry),
  elsewhere (or as the fallback) by a no-op entry appended after the call started.
  Concurrent barriers share one round / one no-op.

Measured tuning and durability promise: module ``raftstore.replication`` and
docs/replication.md.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from raftstore.replication._pysyncobj import ApplyFailure, RaftCore
from raftstore.replication.config import RaftConfig
from raftstore.replication.errors import (
    ProposalTimeout,
    RaftNodeClosed,
    ReplicationError,
    UnknownEnvelope,
)
from raftstore.replication.protocol import (
    ApplyHook,
    Envelope,
    EnvelopeKind,
    LeadershipHook,
    RestoreHook,
    StateMachine,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RaftStatus:
    """A point-in-time view of this member. Indexes are raft log indexes (they count
    pysyncobj's own no-op and membership entries and our barriers too)."""

    self_id: str
    leader_id: str | None
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    members: tuple[str, ...]
    has_quorum: bool
    leader_changes: int = 0
    """Leaders this member has seen since it started, one per term that had one (etcd's
    ``leader_changes_seen_total``); each is also logged (:mod:`.observe`)."""


class _Waiter:
    """One pending request. ``on_result`` runs in the raft thread (or the caller's)."""

    __slots__ = ("_token", "event", "result", "error")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self.event = trio.Event()
        self.result: object = None
        self.error: ReplicationError | None = None

    def on_result(self, result: object, error: ReplicationError | None) -> None:
        self.result, self.error = result, error
        try:
            self._token.run_sync_soon(self.event.set)
        except trio.RunFinishedError:
            pass


class _BarrierRound:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: ReplicationError | None = None


class RaftNode:
    """One raft member. Create it with ``open_raft_node``; every method is trio-side and
    must be called from the trio run that opened the node."""

    def __init__(
        self,
        *,
        self_address: str,
        peers: Sequence[str],
        data_dir: str,
        state_machine: StateMachine,
        config: RaftConfig,
        token: trio.lowlevel.TrioToken,
        name: str = "",
    ) -> None:
        self._sm = state_machine
        self._token = token
        self._apply_hooks: list[ApplyHook] = []
        self._restore_hooks: list[RestoreHook] = []
        self._leadership_hooks: list[LeadershipHook] = []
        self._hooks_lock = threading.Lock()  # guards the three hook lists
        self._leadership_event = trio.Event()  # replaced (after set) on every role change
        self._pending: set[_Waiter] = set()
        self._barrier_lock = trio.Lock()
        self._open_round: _BarrierRound | None = None
        self._closed = False
        self._read_index = config.read_index
        self._core = RaftCore(
            self_address=self_address,
            peers=peers,
            data_dir=data_dir,
            config=config,
            apply_entry=self._apply_entry,
            take_snapshot=state_machine.snapshot,
            restore_snapshot=self._restore,
            on_leadership=self._leadership_changed,
            name=name,
        )

    # ------------------------------------------------------------------ raft-thread side

    def _apply_entry(self, index: int, data: bytes) -> object:
        envelope = Envelope.decode(data)  # UnknownEnvelope stops applying here, loudly
        if envelope.kind is EnvelopeKind.BARRIER:
            return None
        if envelope.kind is not EnvelopeKind.COMMAND:  # pragma: no cover
            raise UnknownEnvelope(f"unhandled envelope kind {envelope.kind!r}")
        result: object
        try:
            result = self._sm.apply(envelope.payload, index=index)
        except Exception as exc:
            logger.exception("state machine apply raised at index %d", index)
            result = ApplyFailure(exc)
        with self._hooks_lock:
            hooks = list(self._apply_hooks)
        for hook in hooks:
            try:
                hook(index, envelope.payload, result)
            except Exception:
                logger.exception("apply hook %r raised at index %d", hook, index)
        return result

    def _restore(self, index: int, state: bytes) -> None:
        self._sm.restore(state)
        with self._hooks_lock:
            hooks = list(self._restore_hooks)
        for hook in hooks:
            try:
                hook(index)
            except Exception:
                logger.exception("restore hook %r raised at index %d", hook, index)

    def _leadership_changed(self, is_leader: bool) -> None:
        term = self._core.status().term if self._core.running else 0
        with self._hooks_lock:
            hooks = list(self._leadership_hooks)
        for hook in hooks:
            try:
                hook(is_leader, term)
            except Exception:
                logger.exception("leadership hook %r raised", hook)
        try:
            self._token.run_sync_soon(self._wake_leadership_waiters)
        except trio.RunFinishedError:
            pass

    def _wake_leadership_waiters(self) -> None:
        self._leadership_event.set()
        self._leadership_event = trio.Event()

    # ------------------------------------------------------------------ hooks

    def add_apply_hook(self, hook: ApplyHook) -> None:
        """Call ``hook(index, command, result)`` after every apply from now on (raft thread,
        log order, must not block; see ``protocol.ApplyHook``)."""
        with self._hooks_lock:
            self._apply_hooks.append(hook)

    def remove_apply_hook(self, hook: ApplyHook) -> None:
        with self._hooks_lock:
            self._apply_hooks.remove(hook)

    def add_restore_hook(self, hook: RestoreHook) -> None:
        """Call ``hook(index)`` after the state machine was replaced by a snapshot."""
        with self._hooks_lock:
            self._restore_hooks.append(hook)

    def add_leadership_hook(self, hook: LeadershipHook) -> None:
        """Call ``hook(is_leader, term)`` (raft thread) whenever this member gains or loses
        leadership."""
        with self._hooks_lock:
            self._leadership_hooks.append(hook)

    # ------------------------------------------------------------------ lifecycle

    async def _start(self) -> None:
        await trio.to_thread.run_sync(self._core.start)

    async def aclose(self) -> None:
        """Stop the raft thread (closes sockets, flushes and closes the journal). Pending
        proposals fail with ``RaftNodeClosed`` (their outcome is unknown). Idempotent."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._core.stop)
        for waiter in list(self._pending):
            waiter.error = RaftNodeClosed("the node was closed while the request was pending")
            waiter.event.set()

    def _check_open(self) -> None:
        if self._closed:
            raise RaftNodeClosed("the node is closed")
        if self._core.fatal is not None:
            raise RaftNodeClosed(f"the raft thread stopped: {self._core.fatal!r}")

    # ------------------------------------------------------------------ requests

    async def _request(self, submit: str, arg: str | bytes, timeout: float) -> object:
        self._check_open()
        waiter = _Waiter(self._token)
        self._pending.add(waiter)
        try:
            if submit == "submit":
                assert isinstance(arg, bytes)
                self._core.submit(arg, waiter.on_result)
            elif submit == "read":
                self._core.read_index(waiter.on_result)
            elif submit == "add":
                assert isinstance(arg, str)
                self._core.add_member(arg, waiter.on_result)
            else:
                assert isinstance(arg, str)
                self._core.remove_member(arg, waiter.on_result)
            with trio.move_on_after(timeout):
                await waiter.event.wait()
        finally:
            self._pending.discard(waiter)
        if not waiter.event.is_set():
            raise ProposalTimeout(f"no outcome within {timeout} s; it may still be applied")
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def propose(self, command: bytes, *, timeout: float) -> object:
        """Replicate ``command``, wait until it is committed and applied on this member, and
        return this member's ``StateMachine.apply`` result.

        Raises ``NotLeader``/``NoLeader``, ``ProposalDropped``/``QueueFull`` (not applied),
        ``ProposalTimeout``/``ProposalIndeterminate`` (unknown), ``ApplyError`` (applied,
        apply raised), ``RaftNodeClosed``.
        """
        if not isinstance(command, bytes | bytearray | memoryview):
            raise TypeError(f"command must be bytes, not {type(command).__name__}")
        envelope = Envelope(EnvelopeKind.COMMAND, bytes(command)).encode()
        return await self._request("submit", envelope, timeout)

    async def read_barrier(self, *, timeout: float) -> None:
        """Return once every write acknowledged (on any member) before this call started is
        applied on this member, so that a following local read is linearizable.

        On the leader (``RaftConfig.read_index``): ReadIndex -- the leader's commit index
        at the call, confirmed by a heartbeat round acknowledged by a majority after the
        call, then waited for locally; no log entry, no disk write. Concurrent reads share
        a round. Elsewhere, or when the leader cannot serve it (it has not committed an
        entry of its term yet, or lost its majority): a no-op entry proposed through the
        leader and waited for locally; callers that arrive while no no-op is being
        proposed share the next one. Raises like ``propose``.
        """
        self._check_open()
        deadline = trio.current_time() + timeout
        if self._read_index:
            try:
                await self._request("read", "", timeout)
                return
            except ProposalTimeout:
                raise ProposalTimeout(f"read barrier not confirmed within {timeout} s") from None
            except ReplicationError:
                pass  # not (yet) a leader that can serve it: use a log entry
        await self._noop_barrier(deadline, timeout)

    async def _noop_barrier(self, deadline: float, timeout: float) -> None:
        if self._open_round is None:
            self._open_round = _BarrierRound()
        rnd = self._open_round
        with trio.move_on_at(deadline) as scope:
            async with self._barrier_lock:
                if not rnd.done:
                    if self._open_round is rnd:
                        self._open_round = None  # later arrivals need a later no-op
                    try:
                        remaining = max(deadline - trio.current_time(), 0.0)
                        await self._request("submit", _BARRIER, remaining)
                    except ProposalTimeout:
                        raise  # our deadline; let the next waiter try for itself
                    except ReplicationError as exc:
                        rnd.error = exc
                    rnd.done = True
        if scope.cancelled_caught:
            raise ProposalTimeout(f"read barrier not applied within {timeout} s")
        if rnd.error is not None:
            raise rnd.error

    async def add_member(self, address: str, *, timeout: float) -> None:
        """Add ``address`` ("host:port") to the cluster; returns once the change is applied
        here. Start the new member first, with ``peers`` = the current members. One change
        at a time: a second one while the first is uncommitted raises
        ``MembershipChangeRejected``."""
        await self._request("add", address, timeout)

    async def remove_member(self, address: str, *, timeout: float) -> None:
        """Remove ``address`` from the cluster (not this member itself: ask another one)."""
        await self._request("remove", address, timeout)

    def force_snapshot(self) -> None:
        """Take a snapshot (compact the log) on the next tick."""
        self._check_open()
        self._core.force_snapshot()

    # ------------------------------------------------------------------ status

    @property
    def self_id(self) -> str:
        return self._core.self_address

    @property
    def state_machine(self) -> StateMachine:
        return self._sm

    def status(self) -> RaftStatus:
        """A snapshot of this member's view. ``leader_id`` may be stale; only ``propose``
        and ``read_barrier`` are linearizable."""
        s = self._core.status()
        return RaftStatus(
            self_id=s.self_id,
            leader_id=s.leader_id,
            is_leader=s.is_leader,
            term=s.term,
            commit_index=s.commit_index,
            applied_index=s.applied_index,
            members=s.members,
            has_quorum=s.has_quorum,
            leader_changes=s.leader_changes,
        )

    async def wait_leadership(self, *, is_leader: bool) -> RaftStatus:
        """Return (level-triggered) as soon as this member's leader role equals
        ``is_leader``. After gaining leadership, call ``read_barrier`` before trusting the
        local state to hold every committed write."""
        while True:
            event = self._leadership_event
            self._check_open()
            status = self.status()
            if status.is_leader == is_leader:
                return status
            await event.wait()

    async def wait_applied(self, index: int, *, timeout: float = math.inf) -> None:
        """Wait until this member applied log ``index`` (polls every tick)."""
        with trio.fail_after(timeout):
            while self._core.status().applied_index < index:
                self._check_open()
                await trio.sleep(0.005)


_BARRIER = Envelope(EnvelopeKind.BARRIER, b"").encode()


@asynccontextmanager
async def open_raft_node(
    *,
    self_address: str,
    peers: Sequence[str],
    data_dir: str,
    state_machine: StateMachine,
    config: RaftConfig | None = None,
    apply_hook: ApplyHook | None = None,
    restore_hook: RestoreHook | None = None,
    leadership_hook: LeadershipHook | None = None,
    name: str = "",
) -> AsyncIterator[RaftNode]:
    """Run a raft member for the duration of the ``async with`` block.

    ``self_address`` is "host:port" this member listens on (and its id); ``peers`` are the
    other members' addresses (this member's own address is ignored if present). A member
    added later with ``add_member`` is started with ``peers`` = the current members. After a
    restart pass the same ``data_dir`` and the original ``peers``: the journal and snapshot
    replay the membership changes since. The hooks given here are registered before the
    journal is replayed, so they see every apply. ``name`` (default: ``self_address``)
    names the member in its log lines: leader changes, terms, slow applies and flushes.
    """
    node = RaftNode(
        self_address=self_address,
        peers=peers,
        data_dir=data_dir,
        state_machine=state_machine,
        config=config or RaftConfig(),
        token=trio.lowlevel.current_trio_token(),
        name=name,
    )
    if apply_hook is not None:
        node.add_apply_hook(apply_hook)
    if restore_hook is not None:
        node.add_restore_hook(restore_hook)
    if leadership_hook is not None:
        node.add_leadership_hook(leadership_hook)
    await node._start()
    try:
        yield node
    finally:
        await node.aclose()
