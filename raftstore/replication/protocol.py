"""The seams between replication and its owner: the state machine, the hooks, the envelope.

**State machine contract.** ``apply``, ``snapshot`` and ``restore`` are called only from the
raft thread, never concurrently with each other. ``apply`` must be deterministic (the same
commands in the same order give the same state and results on every member) and must not
block on the network or on trio. If it raises, the entry still counts as applied: the
exception is logged and the proposer gets ``ApplyError``. Readers in other threads (the
trio thread serving reads) need the state machine's own locking.

``restore`` replaces the whole state **in place** (an instance method, not a constructor), so
the owner keeps one object for the node's lifetime; it is called when a snapshot file is
loaded at start and when the leader installs a snapshot on a lagging follower.

**Envelope.** Every replicated entry is ``bytes([version, kind]) + payload``, version 1.
``COMMAND`` carries the owner's command bytes, ``BARRIER`` carries nothing and is not shown to
the state machine (it is the read barrier's no-op). A member that meets an unknown version or
kind stops applying there (``UnknownEnvelope``, logged) instead of skipping the entry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from raftstore.replication.errors import UnknownEnvelope


class StateMachine(Protocol):
    """What the replicated log drives. See the module docstring for the threading contract."""

    def apply(self, command: bytes, *, index: int) -> object:
        """Apply one committed command at raft log ``index``; return its result."""
        ...

    def snapshot(self) -> bytes:
        """Serialize the whole state (as of the last applied index)."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with one produced by ``snapshot``."""
        ...


ApplyHook = Callable[[int, bytes, object], None]
"""``hook(index, command, result)``: called in the raft thread, synchronously, in log order,
after each state-machine apply (barriers excluded). It must not block: hand the event to a
thread-safe queue or to ``TrioToken.run_sync_soon`` (not ``trio.from_thread.run_sync``, which
waits for trio and would stall the raft thread). Exceptions are logged and ignored. During
start-up the hooks also see the replay of the journal."""

RestoreHook = Callable[[int], None]
"""``hook(index)``: called in the raft thread after the state machine was replaced by a
snapshot ending at ``index`` (watchers must resynchronise). Must not block."""

LeadershipHook = Callable[[bool, int], None]
"""``hook(is_leader, term)``: called in the raft thread whenever this member's raft role
changes to or from leader. Must not block."""


class EnvelopeKind(enum.IntEnum):
    COMMAND = 1
    BARRIER = 2


ENVELOPE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: EnvelopeKind
    payload: bytes

    def encode(self) -> bytes:
        return bytes((ENVELOPE_VERSION, self.kind)) + self.payload

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        if len(data) < 2:
            raise UnknownEnvelope(f"envelope too short: {data!r}")
        if data[0] != ENVELOPE_VERSION:
            raise UnknownEnvelope(f"unknown envelope version {data[0]} (this code knows 1)")
        try:
            kind = EnvelopeKind(data[1])
        except ValueError:
            raise UnknownEnvelope(f"unknown envelope kind {data[1]}") from None
        return cls(kind, bytes(data[2:]))
