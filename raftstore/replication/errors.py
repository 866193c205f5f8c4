"""The error taxonomy of replication.

Three families, by what the caller may assume about the command's fate:

* ``NotLeader`` / ``NoLeader`` / ``ProposalDropped`` (and its ``QueueFull``,
  ``MembershipChangeRejected``): the command was **not** applied and never will be. Retrying
  is safe, after a backoff for ``NoLeader`` and ``QueueFull``.
* ``ProposalIndeterminate`` and its ``ProposalTimeout``: the command **may or may not** have
  been applied (it may still be applied later). Retry only idempotent commands, or re-read
  state first.
* ``ApplyError``: the command was committed and applied, and the state machine raised.
  Every member raised the same way (apply is deterministic); the log moved on.

``RaftNodeClosed`` is raised for calls made on, or pending in, a node that was closed.
``BindFailed`` is raised when the node cannot listen on its own address.
"""

from __future__ import annotations


class ReplicationError(Exception):
    """Base class of every error raised by ``raftstore.replication``."""


class NotLeader(ReplicationError):
    """The request needed the leader and the member that received it is not (any more) the
    leader. Not applied; safe to retry."""


class NoLeader(NotLeader):
    """No leader is known right now (election in progress, or no quorum reachable).
    Not applied; retry after a backoff."""


class ProposalDropped(ReplicationError):
    """The command was rejected or superseded before it was committed. Not applied."""


class QueueFull(ProposalDropped):
    """The command queue of the raft thread is full. Not applied; back off and retry."""


class MembershipChangeRejected(ProposalDropped):
    """The leader refused the membership change: another change is still uncommitted, the
    leader has not committed an entry of its term yet, the member is already (or not) in the
    cluster, or a member was asked to remove itself. Not applied."""


class ProposalIndeterminate(ReplicationError):
    """The outcome is unknown: the command may have been applied, may be applied later, or
    may never be. Re-read state before retrying a non-idempotent command."""


class ProposalTimeout(ProposalIndeterminate):
    """No outcome within the timeout. Indeterminate, like its base class."""


class ApplyError(ReplicationError):
    """The command was committed and applied, and ``StateMachine.apply`` raised. The cause is
    chained as ``__cause__``."""


class RaftNodeClosed(ReplicationError):
    """The node is closed (or was closed while the call was pending; then the outcome of a
    pending proposal is unknown)."""


class BindFailed(ReplicationError):
    """The node could not listen on its own address."""


class CorruptSnapshot(ReplicationError):
    """A snapshot file is truncated, has a bad checksum, or an unknown format version."""


class UnknownEnvelope(ReplicationError):
    """A log entry carries an envelope version or kind this code does not know (written by a
    newer member). Applying stops at that entry rather than skip it."""
