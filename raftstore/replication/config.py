"""Tuning knobs of a replication node, with the defaults we measured (see docs/replication.md).

All durations are in seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    #: Longest the raft thread sleeps in its poller between two ticks. Socket events and new
    #: proposals (``use_batch=False``) wake it earlier, so this only bounds timer latency.
    tick_period: float = 0.01
    #: Heartbeat (empty append_entries) interval of the leader (etcd: 100 ms).
    append_entries_period: float = 0.1
    #: A follower that hears no leader for a random time in [min, max) starts an election
    #: (etcd: 1 s, randomized up to 2 s). 0.3-0.6 s elected a new leader whenever a member
    #: stalled for half a second -- a journal flush on a busy disk, a starved CPU -- up to
    #: 27 times in one 1,000-pod burst; see docs/replication.md.
    election_timeout_min: float = 1.0
    election_timeout_max: float = 2.0
    #: pysyncobj's ``appendEntriesUseBatch``: True waits for the next heartbeat to ship new
    #: entries (≈ append_entries_period per write), False ships them at once.
    use_batch: bool = False
    #: A connection that receives nothing for this long is dropped. Twice the longest
    #: election timeout, so that a peer that stalls for about as long as an election
    #: timeout still finds its connections, and the heartbeats queued in them, afterwards.
    connection_timeout: float = 4.0
    #: How often to retry connecting to an unreachable member.
    connection_retry: float = 0.2
    #: A leader that heard from no majority for this long steps down (no sooner than its
    #: followers could elect another).
    leader_fallback_timeout: float = 2.0
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

    def with_etcd_timings(
        self, *, heartbeat_interval_ms: int, election_timeout_ms: int
    ) -> RaftConfig:
        """This config with etcd's two timing flags applied (milliseconds, as etcd takes them).

        ``--heartbeat-interval`` is the leader's heartbeat period; ``--election-timeout``
        the silence after which a follower starts an election, randomized (as etcd does)
        over [timeout, 2 x timeout). Connections are dropped, and a leader cut off from
        its majority steps down, no sooner than a follower could start an election
        (connections: not before twice that).
        ``ValueError`` names the flag when a value cannot work (etcd's rule: the election
        timeout at least 5 heartbeats).
        """
        if heartbeat_interval_ms < 1:
            raise ValueError(
                f"--heartbeat-interval must be at least 1 ms, not {heartbeat_interval_ms}"
            )
        if election_timeout_ms < 5 * heartbeat_interval_ms:
            raise ValueError(
                f"--election-timeout[{election_timeout_ms}ms] must be at least 5 times "
                f"--heartbeat-interval[{heartbeat_interval_ms}ms]"
            )
        heartbeat = heartbeat_interval_ms / 1000
        election = election_timeout_ms / 1000
        return dataclasses.replace(
            self,
            append_entries_period=heartbeat,
            election_timeout_min=election,
            election_timeout_max=2 * election,
            connection_timeout=max(self.connection_timeout, 4 * election),
            leader_fallback_timeout=max(self.leader_fallback_timeout, 2 * election),
        )
