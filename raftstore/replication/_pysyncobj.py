"""The one module that imports pysyncobj. Everything it does to pysyncobj is here.

pysyncobj (0.3.17) is a Raft library built around one ``SyncObj`` class whose replicated
methods are pickled ``(method_id, args)`` calls, ids taken from the position of the method name
in ``sorted(dir(self))``. We use its Raft (elections, replication, membership, compaction,
snapshot transfer) and replace three of its habits:

* **Entries.** We do not use ``@replicated`` at all. A proposal is queued with
  ``SyncObj._applyCommand(b"\\x00" + envelope)``; the journal entry is pysyncobj's
  ``REGULAR`` type byte followed by our versioned envelope (``protocol.Envelope``), raw, with
  no pickle and no method id. ``_SyncObj__doApplyCommand`` is overridden to hand ``REGULAR``
  entries to our state machine with their log index; pysyncobj's own entries (no-op,
  membership, code version) still go to pysyncobj.
* **Snapshots.** ``SyncObjConf.serializer``/``deserializer`` write and read our own file
  format (``snapshot_file``): the state machine's bytes plus the raft metadata pysyncobj
  needs (two log entries and the member list). No pickle in the file.
* **The thread.** ``autoTick=False`` and our own thread calls ``doTick``. pysyncobj's
  auto-tick thread stops as soon as the thread that *created* the ``SyncObj`` exits, which
  would be a trio worker thread; ours lives until ``stop()``.

Durability fixes (see docs/replication.md for the evidence):

* ``_Journal`` wraps pysyncobj's mmap ``FileJournal``. Log compaction there rewrites the
  journal *in place* (clear, then re-append every kept entry): a crash in the middle leaves a
  journal holding only a prefix of the kept entries. We rewrite into a temporary file and
  rename it over the journal. With ``fsync`` it also flushes appended entries before this
  member relies on them or acknowledges them -- group-committed, one range msync per batch
  (see ``_Journal`` and the invariant above ``_SyncObj._checkCommandsToApply``) -- and
  fsyncs the meta file after every term/vote change.
* ``read_barrier`` on the leader is a ReadIndex round of our own messages
  (``rs_read_probe``/``rs_read_ack``), no log entry; see ``_SyncObj._rs_serve_reads``.
* After a snapshot file is renamed into place, pysyncobj compacts the journal only on a later
  tick; a crash in between leaves a journal that does not start with the snapshot's entries,
  and on restart ``__loadDumpFile`` then **clears the whole journal**, losing every entry
  after the snapshot. ``_SyncObj__loadDumpFile`` is overridden to first cut the journal at
  the snapshot's entries when the journal contains them.
* A commit index read from the meta file that lies past the journal's end (possible after a
  power loss without ``fsync``; pysyncobj PR 197's hang) is clamped at start.

What pysyncobj still pickles: its own network messages and its membership-change entries
(``['add', address, TCPNode]``). Peers are trusted; set no untrusted member.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj import journal as _journal
from pysyncobj.syncobj import SyncObjException

from raftstore.replication import snapshot_file
from raftstore.replication.config import RaftConfig
from raftstore.replication.errors import (
    ApplyError,
    BindFailed,
    CorruptSnapshot,
    MembershipChangeRejected,
    NoLeader,
    NotLeader,
    ProposalDropped,
    ProposalIndeterminate,
    QueueFull,
    ReplicationError,
)
from raftstore.replication.observe import LeaderLog, SlowLog

logger = logging.getLogger(__name__)

_REGULAR = b"\x00"  # pysyncobj's _COMMAND_TYPE.REGULAR
_STATE_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER

for _name in (
    "_SyncObj__doApplyCommand",
    "_SyncObj__loadDumpFile",
    "_applyCommand",
    "doTick",
    "_onTick",
):
    if not hasattr(SyncObj, _name):  # pragma: no cover - guards a pysyncobj upgrade
        raise ImportError(f"pysyncobj.SyncObj has no {_name}; the adapter needs updating")

ResultCallback = Callable[[object, ReplicationError | None], None]
"""``callback(result, error)``; exactly one of them is meaningful. Called from the raft thread
(or, for ``QueueFull``, from the submitting thread)."""


_FAILURES: dict[int, tuple[type[ReplicationError], str]] = {
    FAIL_REASON.QUEUE_FULL: (QueueFull, "the raft thread's command queue is full"),
    FAIL_REASON.MISSING_LEADER: (NoLeader, "no leader is known"),
    FAIL_REASON.DISCARDED: (
        ProposalDropped,
        "a new leader replaced the uncommitted entry with another one",
    ),
    FAIL_REASON.NOT_LEADER: (NotLeader, "the member the proposal was sent to is not the leader"),
    FAIL_REASON.LEADER_CHANGED: (
        ProposalIndeterminate,
        "the leader changed before it confirmed the proposal",
    ),
    FAIL_REASON.REQUEST_DENIED: (MembershipChangeRejected, "the leader denied the request"),
    FAIL_REASON.UNKNOWN_OUTCOME: (
        ProposalIndeterminate,
        "the entry was applied (via a snapshot) before its position was confirmed",
    ),
}


def error_for(reason: int) -> ReplicationError:
    """Map a pysyncobj ``FAIL_REASON`` code to our error taxonomy."""
    cls, message = _FAILURES.get(reason, (ProposalIndeterminate, f"pysyncobj failure {reason}"))
    return cls(message)


@dataclass(frozen=True, slots=True)
class ApplyFailure:
    """The result of an entry whose ``apply`` raised."""

    exc: BaseException


@dataclass(frozen=True, slots=True)
class CoreStatus:
    self_id: str
    leader_id: str | None
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    members: tuple[str, ...]
    has_quorum: bool
    leader_changes: int
    """Leaders this member has seen, one per term that had one (etcd's counter)."""


# ---------------------------------------------------------------------------------- journal


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_journal_file(
    path: str, entries: Sequence[tuple[bytes, int, int]], *, fsync: bool
) -> None:
    """Write a complete journal in pysyncobj's ``FileJournal`` format (format version 1)."""
    records = []
    for command, idx, term in entries:
        data = struct.pack("<QQ", idx, term) + bytes(command)
        size = struct.pack("<I", len(data))
        records.append(size + data + size)
    body = b"".join(records)
    name = _journal.APP_NAME.ljust(_journal.NAME_SIZE, b"\0")
    version = _journal.APP_VERSION.ljust(_journal.VERSION_SIZE, b"\0")
    end = _journal.FIRST_RECORD_OFFSET + len(body)
    header = name + version + struct.pack("<II", _journal.JOURNAL_FORMAT_VERSION, end)
    assert len(header) == _journal.FIRST_RECORD_OFFSET
    with open(path, "wb") as f:
        f.write(header + body)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


class _Journal:
    """pysyncobj's ``FileJournal`` with crash-safe compaction and optional flushing.

    **Group commit.** With ``fsync`` every ``add`` outside a ``deferred()`` block is flushed
    at once (as before). Inside ``deferred()`` appends only mark the journal dirty; the block
    ends with ``sync()``, one flush for all of them, and ``sync()`` may be called earlier
    (before anything that promises durability leaves this member). A flush msyncs only the
    byte range written since the last flush (page-aligned) and then the header page, not
    the whole mapping: records first, so a header that points past unflushed records
    never reaches the disk before them.
    """

    def __init__(self, inner: Any, path: str, *, fsync: bool, slow: SlowLog | None = None) -> None:
        self._inner = inner
        self._path = path
        self._fsync = fsync
        self._slow = slow
        self._deferred = 0
        self._dirty_from: int | None = None  # journal offset of the first unflushed byte
        self.flushes = 0  # journal flushes issued (tests count them)

    def _offset(self) -> int | None:
        offset = getattr(self._inner, "_FileJournal__currentOffset", None)
        return offset if isinstance(offset, int) else None

    def _mark_dirty(self, start: int | None) -> None:
        if start is None:
            start = _journal.FIRST_RECORD_OFFSET  # unknown layout: flush everything
        if self._dirty_from is None or start < self._dirty_from:
            self._dirty_from = start

    def sync(self) -> None:
        """Flush every append since the last flush (no-op when nothing is dirty or when
        ``fsync`` is off)."""
        if self._dirty_from is None:
            return
        start, self._dirty_from = self._dirty_from, None
        if not self._fsync:
            return
        self.flushes += 1
        rfile = getattr(self._inner, "_FileJournal__journalFile", None)
        mm = getattr(rfile, "_ResizableFile__mm", None)
        end = self._offset()
        if not isinstance(mm, mmap.mmap) or end is None:  # pragma: no cover - upgrade guard
            self._inner.flush()
            return
        began = time.monotonic()
        if end > start:
            aligned = start - start % mmap.ALLOCATIONGRANULARITY
            mm.flush(aligned, end - aligned)
        mm.flush(0, _journal.FIRST_RECORD_OFFSET)  # the header: offset of the last record
        if self._slow is not None:
            self._slow.record("flush", time.monotonic() - began, f"of {end - start} journal bytes")

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Appends inside the block are flushed once, when it ends (or by ``sync``)."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        if not self._deferred:
            self.sync()

    def add(self, command: bytes, idx: int, term: int) -> None:
        self._mark_dirty(self._offset())
        self._inner.add(command, idx, term)
        if not self._deferred:
            self.sync()

    def clear(self) -> None:
        self._inner.clear()
        self._mark_dirty(self._offset())
        self.sync()

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 - pysyncobj's name
        self._inner.deleteEntriesFrom(entryFrom)
        self._mark_dirty(self._offset())
        self.sync()

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802 - pysyncobj's name
        kept = [self._inner[i] for i in range(entryTo, len(self._inner))]
        self._inner.onOneSecondTimer()  # persist a pending commit index before reopening
        tmp = self._path + ".compact.tmp"
        _write_journal_file(tmp, kept, fsync=self._fsync)
        self._inner._destroy()  # flushes the whole mapping
        self._dirty_from = None
        os.replace(tmp, self._path)
        if self._fsync:
            _fsync_path(os.path.dirname(self._path) or ".")
        self._inner = _journal.FileJournal(self._path)

    def __getitem__(self, item: Any) -> Any:
        return self._inner[item]

    def __len__(self) -> int:
        return len(self._inner)

    def _destroy(self) -> None:
        self._inner._destroy()

    def flush(self) -> None:
        self._inner.flush()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802, N803
        self._inner.setRaftCommitIndex(raftCommitIndex)

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._inner.getRaftCommitIndex())

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:  # noqa: N802, N803
        self._inner.setCurrentTerm(term, votedForNodeId)
        if self._fsync:
            began = time.monotonic()
            _fsync_path(self._path + ".meta")
            if self._slow is not None:
                self._slow.record("flush", time.monotonic() - began, f"of term {term}'s vote")

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._inner.getCurrentTerm())

    def getVotedForNodeId(self) -> Any:  # noqa: N802
        return self._inner.getVotedForNodeId()

    def onOneSecondTimer(self) -> None:  # noqa: N802
        self._inner.onOneSecondTimer()


# ---------------------------------------------------------------------------------- SyncObj

_READ_PROBE = "rs_read_probe"
_READ_ACK = "rs_read_ack"


@dataclass(slots=True, kw_only=True)
class _ReadRound:
    term: int
    index: int
    callbacks: list[ResultCallback]
    started: float
    acks: set[Any] = field(default_factory=set)


class _SyncObj(SyncObj):
    """``SyncObj`` with our entry dispatch, the snapshot/journal alignment fix and the
    append_entries trimming fix."""

    # pysyncobj's private fields we read or replace (name-mangled ``__raftLog`` etc.)
    _SyncObj__raftLog: Any
    _SyncObj__raftCommitIndex: int
    _SyncObj__raftElectionDeadline: float

    def __init__(
        self,
        self_address: str,
        peers: Sequence[str],
        conf: Any,
        on_apply: Callable[[int, bytes], object],
        dump_path: str,
        read_timeout: float,
        slow: SlowLog,
    ) -> None:
        self._rs_on_apply = on_apply
        self._rs_dump_path = dump_path
        self._rs_slow = slow
        self._rs_init_reads(read_timeout)
        super().__init__(self_address, list(peers), conf)

    def _SyncObj__doApplyCommand(self, command: bytes) -> object:  # noqa: N802
        if command[:1] == _REGULAR:
            # pysyncobj increments raftLastApplied right after this call returns.
            index = self.raftLastApplied + 1
            began = time.monotonic()
            result = self._rs_on_apply(index, bytes(command[1:]))
            self._rs_slow.record("apply", time.monotonic() - began, f"of entry {index}")
            return result
        return SyncObj._SyncObj__doApplyCommand(self, command)

    # -- timeouts judged on fresh input ------------------------------------------------
    #
    # pysyncobj's tick first judges its timeouts -- a follower whose election deadline has
    # passed starts an election, a leader that heard from no majority within
    # ``leaderFallbackTimeout`` steps down -- and reads its sockets only at the end of the
    # tick. A raft thread that was not running for a while (the process descheduled on a
    # starved machine, or the GIL held by the serving thread) therefore judges by the
    # state from before the pause, although the leader's heartbeats or the followers'
    # answers are waiting in its socket buffers: it starts an election (a new term, which
    # deposes a healthy leader) or steps down for nothing. We read whatever is already
    # there, without waiting, before every tick. Only silence that really lasted the
    # timeout is acted on; the cost is one extra poll system call per tick.

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - pysyncobj's name
        self._poller.poll(0)
        SyncObj._onTick(self, timeToWait)

    # -- group commit ------------------------------------------------------------------
    #
    # INVARIANT (with ``fsync=True``): an entry is durable on a majority before it is
    # committed, so before any proposer is told it succeeded.
    #
    # * Leader: ``_checkCommandsToApply`` appends every queued command inside
    #   ``_Journal.deferred()`` -- one flush for the whole batch when it ends -- and only then
    #   sends one append_entries carrying all of them (``__sendAppendEntries`` calls made by
    #   pysyncobj inside the batch are held back). The leader counts itself towards a
    #   majority only in ``_onTick``'s commit computation, which runs in this same thread
    #   after the batch was flushed. The leader's own no-op (``__onBecomeLeader``) and
    #   anything else appended outside a batch is flushed at once, as before.
    # * Follower: an append_entries message is handled inside ``deferred()``; its success
    #   reply (``__sendNextNodeIdx``, the only thing that makes the leader count this member)
    #   first calls ``sync()``, so the entries are flushed before the acknowledgement leaves.
    #   One flush per received batch instead of one per entry.
    # * Truncations (``deleteEntriesFrom``/``clear``) are flushed at once, deferred or not.

    _rs_batching = False
    _rs_send_held = False

    def _checkCommandsToApply(self) -> None:  # noqa: N802 - pysyncobj's name
        log = self._SyncObj__raftLog
        self._rs_batching, self._rs_send_held = True, False
        try:
            with log.deferred():
                SyncObj._checkCommandsToApply(self)
        finally:
            self._rs_batching = False
        # reached only when the flush succeeded
        if self._rs_send_held:
            self._rs_send_held = False
            self._SyncObj__sendAppendEntries()
        self._rs_serve_reads()

    # -- ReadIndex -----------------------------------------------------------------------
    #
    # A linearizable read without a log entry (Raft thesis 6.4, etcd's ReadIndex):
    #
    # 1. The leader takes ``index = commitIndex`` when the request reaches the raft thread,
    #    but only if the entry at ``commitIndex`` is of its current term (it has committed
    #    its election no-op, so ``commitIndex`` covers every entry committed by earlier
    #    leaders). Otherwise the request fails and the caller falls back to a no-op entry.
    # 2. It sends ``rs_read_probe(term, seq)`` to every member, *after* taking ``index``. A
    #    member answers ``rs_read_ack`` only while its own term is <= the probe's term. An ack
    #    for ``seq`` also confirms every earlier round (their probes were sent before).
    # 3. With acks from a majority (itself included), still leader in the same term, the
    #    read is confirmed; the caller is answered once ``lastApplied >= index``.
    #    One round is in flight at a time; requests that arrive meanwhile share the next.
    #
    # Why a deposed leader cannot answer from stale state: a write acknowledged before the
    # read began was committed either by this leader (then ``index`` covers it) or by a newer
    # leader of term t' > t, elected before the read began by a majority whose terms were
    # already >= t' (persisted before voting). The acking majority answered after the probe
    # was sent, with terms <= t; the two majorities share a member, whose term cannot go
    # down. So such a write cannot exist while this leader collects its majority. Unacked
    # rounds fail after ``leader_fallback_timeout`` or on any loss of leadership/term change.

    _rs_read_seq = 0

    def _rs_init_reads(self, read_timeout: float) -> None:
        self._rs_read_timeout = read_timeout
        self._rs_read_requests: deque[ResultCallback] = deque()
        self._rs_read_rounds: dict[int, _ReadRound] = {}
        self._rs_read_confirmed: list[tuple[int, ResultCallback]] = []

    def rs_request_read_index(self, callback: ResultCallback) -> None:
        """Thread-safe: ask for a confirmed read index; ``callback(index, None)`` once it is
        applied here, ``callback(None, error)`` when this member cannot serve it."""
        if not self._isLeader():
            callback(None, NotLeader("read index is served by the leader only"))
            return
        self._rs_read_requests.append(callback)
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        if notifier is not None:
            notifier.notify()

    def _rs_serve_reads(self) -> None:
        """Raft thread, every tick: answer, expire and start read rounds."""
        if self._rs_read_confirmed:
            self._rs_serve_confirmed_now()
        leader, term, now = self._isLeader(), self.raftCurrentTerm, time.monotonic()
        for seq, rnd in list(self._rs_read_rounds.items()):
            if not leader or rnd.term != term or now - rnd.started > self._rs_read_timeout:
                del self._rs_read_rounds[seq]
                for callback in rnd.callbacks:
                    callback(None, NotLeader("leadership not confirmed for the read"))
        if self._rs_read_requests and not self._rs_read_rounds:
            self._rs_start_round()

    def _rs_start_round(self) -> None:
        """One round in flight at a time: requests that arrive meanwhile wait for the next
        round, started as soon as this one is confirmed (bounds probe traffic under load)."""
        leader, term, now = self._isLeader(), self.raftCurrentTerm, time.monotonic()
        callbacks = []
        while self._rs_read_requests:
            callbacks.append(self._rs_read_requests.popleft())
        commit = self.raftCommitIndex
        if not leader or self._rs_term_at(commit) != term:
            for callback in callbacks:
                callback(None, NotLeader("not a leader with a commit of its own term"))
            return
        self._rs_read_seq += 1
        rnd = _ReadRound(term=term, index=commit, callbacks=callbacks, started=now)
        self._rs_read_rounds[self._rs_read_seq] = rnd
        probe = {"type": _READ_PROBE, "term": term, "seq": self._rs_read_seq}
        transport = self._SyncObj__transport
        for node in self.otherNodes:
            transport.send(node, probe)
        self._rs_check_round(self._rs_read_seq, rnd)  # a one-member cluster

    def _rs_on_read_probe(self, node: Any, message: dict[str, Any]) -> None:
        if message["term"] >= self.raftCurrentTerm:
            self._SyncObj__transport.send(
                node, {"type": _READ_ACK, "term": message["term"], "seq": message["seq"]}
            )

    def _rs_on_read_ack(self, node: Any, message: dict[str, Any]) -> None:
        if not self._isLeader() or message["term"] != self.raftCurrentTerm:
            return
        for seq, rnd in list(self._rs_read_rounds.items()):
            if seq <= message["seq"] and rnd.term == message["term"]:
                rnd.acks.add(node)
                self._rs_check_round(seq, rnd)

    def _rs_check_round(self, seq: int, rnd: _ReadRound) -> None:
        others = self.otherNodes
        votes = 1 + sum(1 for node in rnd.acks if node in others)
        if votes <= (len(others) + 1) / 2:
            return
        del self._rs_read_rounds[seq]
        for callback in rnd.callbacks:
            self._rs_read_confirmed.append((rnd.index, callback))
        self._rs_serve_confirmed_now()
        if self._rs_read_requests and not self._rs_read_rounds:
            self._rs_start_round()

    def _rs_serve_confirmed_now(self) -> None:
        applied = self.raftLastApplied
        waiting = []
        for index, callback in self._rs_read_confirmed:
            if applied >= index:
                callback(index, None)
            else:
                waiting.append((index, callback))
        self._rs_read_confirmed = waiting

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        if self._rs_batching:
            self._rs_send_held = True  # sent once, after the batch is flushed
            return
        SyncObj._SyncObj__sendAppendEntries(self)

    def _SyncObj__sendNextNodeIdx(self, node: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self._SyncObj__raftLog.sync()  # durable before acknowledged
        SyncObj._SyncObj__sendNextNodeIdx(self, node, *args, **kwargs)

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        kind = message.get("type")
        if kind == _READ_PROBE:
            self._rs_on_read_probe(node, message)
            return
        if kind == _READ_ACK:
            self._rs_on_read_ack(node, message)
            return
        if kind == "append_entries":
            message = self._rs_trim_append_entries(message)
            with self._SyncObj__raftLog.deferred():
                SyncObj._SyncObj__onMessageReceived(self, node, message)
            return
        SyncObj._SyncObj__onMessageReceived(self, node, message)

    def _rs_term_at(self, idx: int) -> int | None:
        log = self._SyncObj__raftLog
        pos = idx - log[0][1]
        if 0 <= pos < len(log):
            return int(log[pos][2])
        return None

    def _rs_trim_append_entries(self, message: dict[str, Any]) -> dict[str, Any]:
        """Drop the part of an append_entries that this log already holds.

        pysyncobj truncates the follower's log after ``prevLogIdx`` whenever the log is
        longer, conflict or not, then re-appends the message's entries. A late or
        overlapping append_entries (common with ``use_batch=False``: one is sent per
        proposal) therefore shrinks the log below entries this member already acknowledged
        -- Raft only allows truncating at a conflict (Figure 2, AppendEntries step 3). A
        member killed in that state has lost acknowledged entries; two such members can
        elect a leader without them. We skip the entries we already hold with the same
        term and, when nothing new remains and our last entry is of the sender's term (so
        it came from this very leader and matches its log), move ``prevLogIdx`` to our
        last entry so that nothing is truncated.
        """
        if "prevLogIdx" not in message or "transmission" in message:
            return message
        if message["term"] < self.raftCurrentTerm:
            return message
        log = self._SyncObj__raftLog
        last_idx, last_term = int(log[-1][1]), int(log[-1][2])
        prev_idx, prev_term = message["prevLogIdx"], message["prevLogTerm"]
        if prev_idx is None or prev_idx >= last_idx:
            return message
        if self._rs_term_at(prev_idx) != prev_term:
            return message  # pysyncobj rejects it; leave that path alone
        entries = list(message.get("entries", []))
        skip = 0
        for entry in entries:
            if entry[1] > last_idx or self._rs_term_at(entry[1]) != entry[2]:
                break
            prev_idx, prev_term = entry[1], entry[2]
            skip += 1
        entries = entries[skip:]
        if not entries and prev_idx < last_idx and last_term == message["term"]:
            prev_idx, prev_term = last_idx, last_term
        if skip == 0 and prev_idx == message["prevLogIdx"]:
            return message
        return {**message, "prevLogIdx": prev_idx, "prevLogTerm": prev_term, "entries": entries}

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:  # noqa: N802, N803
        if not clearJournal:
            self._rs_align_journal_with_snapshot()
        SyncObj._SyncObj__loadDumpFile(self, clearJournal)

    def _rs_align_journal_with_snapshot(self) -> None:
        try:
            snap = snapshot_file.read(self._rs_dump_path)
        except (OSError, CorruptSnapshot):
            return  # the deserializer reports it
        log = self._SyncObj__raftLog
        if len(log) < 2:
            return
        prev = (snap.prev.command, snap.prev.index, snap.prev.term)
        last = (snap.last.command, snap.last.index, snap.last.term)
        pos = snap.prev.index - log[0][1]
        if pos <= 0 or pos + 1 >= len(log):
            return
        if tuple(log[pos]) == prev and tuple(log[pos + 1]) == last:
            logger.warning(
                "journal starts before snapshot %d (crash between snapshot and compaction); "
                "compacting it now instead of clearing it",
                snap.last.index,
            )
            log.deleteEntriesTo(pos)

    def _rs_wrap_journal(self, path: str, *, fsync: bool) -> None:
        log = _Journal(self._SyncObj__raftLog, path, fsync=fsync, slow=self._rs_slow)
        self._SyncObj__raftLog = log
        last = log[-1][1]
        if self._SyncObj__raftCommitIndex > last:
            logger.warning(
                "saved commit index %d is past the journal end %d; clamping",
                self._SyncObj__raftCommitIndex,
                last,
            )
            self._SyncObj__raftCommitIndex = last
            log.setRaftCommitIndex(last)


# ---------------------------------------------------------------------------------- core


class RaftCore:
    """Owns one ``SyncObj`` and the thread that ticks it. Thread-safe; never touches trio.

    Hooks run in the raft thread. ``apply`` on the state machine, ``snapshot`` and
    ``restore`` also run only there.
    """

    def __init__(
        self,
        *,
        self_address: str,
        peers: Sequence[str],
        data_dir: str,
        config: RaftConfig,
        apply_entry: Callable[[int, bytes], object],
        take_snapshot: Callable[[], bytes],
        restore_snapshot: Callable[[int, bytes], None],
        on_leadership: Callable[[bool], None],
        name: str = "",
    ) -> None:
        self.self_address = self_address
        self.name = name or self_address
        self._leaders = LeaderLog(self.name, self_address)
        self._slow = SlowLog(self.name)
        self._peers = [p for p in peers if p != self_address]
        self._config = config
        self._apply_entry = apply_entry
        self._take_snapshot = take_snapshot
        self._restore_snapshot = restore_snapshot
        self._on_leadership = on_leadership
        os.makedirs(data_dir, exist_ok=True)
        self.journal_path = os.path.join(data_dir, "journal")
        self.snapshot_path = os.path.join(data_dir, "snapshot")
        self._so: _SyncObj | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.fatal: BaseException | None = None

    # -- lifecycle (blocking; call from a worker thread) --

    def start(self) -> None:
        c = self._config
        conf = SyncObjConf(
            autoTick=False,
            autoTickPeriod=c.tick_period,
            appendEntriesUseBatch=c.use_batch,
            appendEntriesPeriod=c.append_entries_period,
            raftMinTimeout=c.election_timeout_min,
            raftMaxTimeout=c.election_timeout_max,
            connectionTimeout=c.connection_timeout,
            connectionRetryTime=c.connection_retry,
            leaderFallbackTimeout=c.leader_fallback_timeout,
            commandsQueueSize=c.commands_queue_size,
            logCompactionMinEntries=c.snapshot_every_entries,
            logCompactionMinTime=c.snapshot_min_interval,
            journalFile=self.journal_path,
            fullDumpFile=self.snapshot_path,
            serializer=self._serialize,
            deserializer=self._deserialize,
            dynamicMembershipChange=True,
            bindAddress=c.bind_address or self.self_address,
            bindRetryTime=0.1,
            maxBindRetries=c.max_bind_retries,
            onStateChanged=self._state_changed,
            commandsWaitLeader=False,  # fail fast with NoLeader instead of queueing
        )
        try:
            so = _SyncObj(
                self.self_address,
                self._peers,
                conf,
                self._apply_entry,
                self.snapshot_path,
                read_timeout=c.leader_fallback_timeout,
                slow=self._slow,
            )
        except SyncObjException as exc:
            raise BindFailed(f"cannot listen on {self.self_address}: {exc}") from exc
        so._rs_wrap_journal(self.journal_path, fsync=c.fsync)
        if not self._peers and not so.otherNodes:
            # Alone, nobody else can lead: stand at once rather than after a first election
            # timeout (etcd fast-forwards its first election the same way). Members with
            # peers wait, so that a restarted one does not depose a healthy leader.
            so._SyncObj__raftElectionDeadline = 0.0
        self._so = so
        self._thread = threading.Thread(
            target=self._run, name=f"raft-{self.self_address}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking, close sockets, flush and close the journal. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        so = self._so
        assert so is not None
        try:
            while not self._stopping.is_set() and self.fatal is None:
                try:
                    so.doTick(self._config.tick_period)
                    leader = so._getLeader()
                    self._leaders.observe(
                        int(so.raftCurrentTerm), None if leader is None else str(leader.id)
                    )
                except Exception:
                    logger.exception("raft tick failed; retrying")
                    self._stopping.wait(self._config.tick_period)
        finally:
            try:
                so.destroy()  # autoTick=False: destroys synchronously, in this thread
            except Exception:
                logger.exception("destroying pysyncobj failed")

    # -- raft-thread callbacks --

    def _state_changed(self, old: int, new: int) -> None:
        if (old == _STATE_LEADER) != (new == _STATE_LEADER):
            self._on_leadership(new == _STATE_LEADER)

    def _serialize(self, path: str, raft_data: Any) -> None:
        last, prev, cluster = raft_data
        snap = snapshot_file.Snapshot(
            last=snapshot_file.LogEntry(bytes(last[0]), int(last[1]), int(last[2])),
            prev=snapshot_file.LogEntry(bytes(prev[0]), int(prev[1]), int(prev[2])),
            members=tuple(sorted(str(node.id) for node in cluster)),
            state=self._take_snapshot(),
        )
        snapshot_file.write(path, snap, fsync=self._config.fsync)

    def _deserialize(self, path: str) -> tuple[Any, Any, list[str]]:
        try:
            snap = snapshot_file.read(path)
            self._restore_snapshot(snap.last.index, snap.state)
        except BaseException as exc:
            # pysyncobj would log this and carry on with a state machine that misses the
            # snapshot's entries; stop the member instead.
            logger.critical("cannot load snapshot %s: %r; stopping this member", path, exc)
            self.fatal = exc
            raise
        return (
            (snap.last.command, snap.last.index, snap.last.term),
            (snap.prev.command, snap.prev.index, snap.prev.term),
            # pysyncobj filters its own node out with ``node != selfNode``, which is never
            # true for a string: filter ourselves, or this member would count itself twice
            [m for m in snap.members if m != self.self_address],
        )

    # -- thread-safe entry points --

    def _require(self) -> _SyncObj:
        if self._so is None:
            raise RuntimeError("RaftCore.start() was not called")
        return self._so

    def submit(self, envelope: bytes, callback: ResultCallback) -> None:
        """Queue ``envelope`` for replication (forwarded to the leader by pysyncobj when this
        member is a follower). ``callback`` fires once the entry is applied *locally*."""
        self._require()._applyCommand(_REGULAR + envelope, _wrap(callback))

    def read_index(self, callback: ResultCallback) -> None:
        """ReadIndex (leader only): ``callback(index, None)`` once a majority confirmed this
        member's leadership after the call and ``index`` (the commit index at the call) is
        applied here; ``callback(None, NotLeader)`` when it cannot (not the leader, no entry
        of its term committed yet, leadership not confirmed in time): use a log entry."""
        self._require().rs_request_read_index(callback)

    def add_member(self, address: str, callback: ResultCallback) -> None:
        self._require().addNodeToCluster(address, _wrap(callback))

    def remove_member(self, address: str, callback: ResultCallback) -> None:
        if address == self.self_address:
            callback(None, MembershipChangeRejected("a member cannot remove itself"))
            return
        self._require().removeNodeFromCluster(address, _wrap(callback))

    def force_snapshot(self) -> None:
        self._require().forceLogCompaction()

    def status(self) -> CoreStatus:
        so = self._require()
        leader = so._getLeader()
        others = [str(n.id) for n in so.otherNodes]
        return CoreStatus(
            self_id=self.self_address,
            leader_id=None if leader is None else str(leader.id),
            is_leader=bool(so._isLeader()),
            term=int(so.raftCurrentTerm),
            commit_index=int(so.raftCommitIndex),
            applied_index=int(so.raftLastApplied),
            members=tuple(sorted([self.self_address, *others])),
            has_quorum=bool(so.hasQuorum),
            leader_changes=self._leaders.changes,
        )


def _wrap(callback: ResultCallback) -> Callable[[object, int], None]:
    def on_result(result: object, reason: int) -> None:
        if reason != FAIL_REASON.SUCCESS:
            callback(None, error_for(reason))
        elif isinstance(result, ApplyFailure):
            err = ApplyError(f"state machine apply raised {result.exc!r}")
            err.__cause__ = result.exc
            callback(None, err)
        else:
            callback(result, None)

    return on_result
