"""Tuning knobs of a replication node, with the defaults we measured (see docs/replication.md).

All durations are in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    #: Longest the raft thread sleeps in its poller between two ticks. Socket events and new
    #: proposals (``use_batch=False``) wake it earlier, so this only bounds timer latency.
    tick_period: float = 0.01
    #: Heartbeat (empty append_entries) interval of the leader.
    append_entries_period: float = 0.05
    #: A follower that hears no leader for a random time in [min, max) starts an election.
    election_timeout_min: float = 0.3
    election_timeout_max: float = 0.6
    #: pysyncobj's ``appendEntriesUseBatch``: True waits for the next heartbeat to ship new
    #: entries (≈ append_entries_period per write), False ships them at once.
    use_batch: bool = False
    #: A connection that receives nothing for this long is dropped.
    connection_timeout: float = 2.0
    #: How often to retry connecting to an unreachable member.
    connection_retry: float = 0.2
    #: A leader that heard from no majority for this long steps down.
    leader_fallback_timeout: float = 1.5
    #: Capacity of the proposal queue of the raft thread (``QueueFull`` beyond it).
    commands_queue_size: int = 100_000
    #: Snapshot (log compaction) after this many log entries ...
    snapshot_every_entries: int = 10_000
    #: ... or after this long, whichever comes first.
    snapshot_min_interval: float = 600.0
    #: msync the journal after each append and fsync the meta and snapshot files: survives
    #: power loss, costs a disk flush per write. Off: survives process crashes only.
    fsync: bool = False
    #: ``read_barrier`` on the leader uses ReadIndex (a majority-acknowledged heartbeat
    #: round, no log entry); False: always a no-op log entry (also the fallback).
    read_index: bool = True
    #: Give up binding the own address after this many attempts, 0.1 s apart.
    max_bind_retries: int = 30
    #: "host:port" to listen on for peers when it differs from the member's own address
    #: (its id, which peers connect to), e.g. behind a proxy; None: the own address.
    bind_address: str | None = None

    def __post_init__(self) -> None:
        if not self.election_timeout_min > 3 * self.append_entries_period:
            raise ValueError(
                "election_timeout_min must exceed 3 * append_entries_period, got "
                f"{self.election_timeout_min} and {self.append_entries_period}"
            )
        if not self.election_timeout_max > self.election_timeout_min:
            raise ValueError("election_timeout_max must exceed election_timeout_min")
        if not self.connection_timeout >= self.election_timeout_max:
            raise ValueError("connection_timeout must be at least election_timeout_max")
        if not self.leader_fallback_timeout > self.append_entries_period:
            raise ValueError("leader_fallback_timeout must exceed append_entries_period")
        if self.snapshot_every_entries < 2:
            raise ValueError("snapshot_every_entries must be at least 2")
