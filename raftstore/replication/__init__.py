"""Replication for raftstore: a Raft log of opaque, versioned byte commands (on pysyncobj)
driving a ``StateMachine``, with a trio API.

Public API::

    async with open_raft_node(self_address="127.0.0.1:7001",
                              peers=["127.0.0.1:7002", "127.0.0.1:7003"],
                              data_dir="/var/lib/raftstore/m1",
                              state_machine=store) as node:
        result = await node.propose(b"...", timeout=5)   # committed and applied here
        await node.read_barrier(timeout=5)                # then read store locally
        node.status(); await node.wait_leadership(is_leader=True)
        await node.add_member("127.0.0.1:7004", timeout=10)

Only ``raftstore.replication._pysyncobj`` imports pysyncobj.

Tuning (measured, 3 in-process members on loopback, sequential proposals on the leader; full
table in docs/replication.md): the defaults in ``RaftConfig`` -- ``use_batch=False``,
``tick_period=0.01``, ``append_entries_period=0.05``, elections 0.3-0.6 s -- give a median
write latency well under 1 ms; pysyncobj's own defaults (batching, 50 ms tick, 100 ms
heartbeat) give ~100 ms per sequential write.

Durability: an acknowledged write survives SIGKILL of every member (journal pages are in the
page cache; the compaction and snapshot/journal crash windows are fixed in the adapter). It
survives power loss only with ``RaftConfig(fsync=True)``.
"""

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
    ProposalTimeout,
    QueueFull,
    RaftNodeClosed,
    ReplicationError,
    UnknownEnvelope,
)
from raftstore.replication.node import RaftNode, RaftStatus, open_raft_node
from raftstore.replication.protocol import ApplyHook, LeadershipHook, RestoreHook, StateMachine

__all__ = [
    "ApplyError",
    "ApplyHook",
    "BindFailed",
    "CorruptSnapshot",
    "LeadershipHook",
    "MembershipChangeRejected",
    "NoLeader",
    "NotLeader",
    "ProposalDropped",
    "ProposalIndeterminate",
    "ProposalTimeout",
    "QueueFull",
    "RaftConfig",
    "RaftNode",
    "RaftNodeClosed",
    "RaftStatus",
    "ReplicationError",
    "RestoreHook",
    "StateMachine",
    "UnknownEnvelope",
    "open_raft_node",
]
