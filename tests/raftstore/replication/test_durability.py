"""Durability with real processes: three ``raftstore.replication.demo`` members, SIGKILLed.

Invariant checked everywhere: every write that was acknowledged (``propose`` returned) is,
after the members restart on the same data dirs, present on every member, in the order in
which it was acknowledged, and all members hold the same list.

The members use ``--snapshot-every 40`` so that log compaction, snapshot files and
snapshot installs are exercised by every cycle.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.raftstore.replication.cluster import Cluster

SNAPSHOTS = ("--snapshot-every", "40")


def is_subsequence(sub: list[bytes], seq: list[bytes]) -> bool:
    it = iter(seq)
    return all(x in it for x in sub)


def check(cluster: Cluster, acked: list[bytes], marker: bytes) -> None:
    cluster.propose_until_ok(marker)
    lists = cluster.wait_converged(marker)
    for items in lists[1:]:
        assert items == lists[0], "members disagree"
    missing = [w for w in acked if w not in lists[0]]
    assert not missing, f"acknowledged writes lost: {missing[:5]} ({len(missing)})"
    assert is_subsequence(acked, lists[0]), "acknowledged writes out of order"


def write(cluster: Cluster, rnd: random.Random, prefix: str, count: int) -> list[bytes]:
    """Sequential writes through random members (followers forward); the acknowledged."""
    acked = []
    for i in range(count):
        member = rnd.choice([m for m in cluster.members if m.alive])
        payload = f"{prefix}-{i}".encode()
        if member.propose(payload, timeout=2.0).startswith("ok"):
            acked.append(payload)
    return acked


def kill_all_cycles(
    root: Path, cycles: int, writes: int, seed: int, extra: tuple[str, ...] = ()
) -> None:
    rnd = random.Random(seed)
    cluster = Cluster(root, extra=SNAPSHOTS + extra)
    try:
        cluster.start()
        acked: list[bytes] = []
        for cycle in range(cycles):
            cluster.leader()
            acked += write(cluster, rnd, f"c{cycle}", writes)
            assert len(acked) >= (cycle + 1) * writes * 0.9, "too many writes failed"
            # one more proposal in flight (its outcome is unknown), then kill everyone
            rnd.choice(cluster.members).send(f"propose {b'in-flight'.hex()} 2")
            cluster.kill_all()
            cluster.start()
            check(cluster, acked, f"marker-{cycle}".encode())
    finally:
        cluster.kill_all()


def test_kill_all_members_keeps_acknowledged_writes(tmp_path: Path) -> None:
    kill_all_cycles(tmp_path, cycles=8, writes=40, seed=1)


def test_kill_all_members_with_fsync_group_commit(tmp_path: Path) -> None:
    # --fsync: appends are group-committed (one flush per batch, range msync)
    kill_all_cycles(tmp_path, cycles=5, writes=40, seed=5, extra=("--fsync",))


@pytest.mark.slow
def test_kill_all_members_soak(tmp_path: Path) -> None:
    kill_all_cycles(tmp_path, cycles=200, writes=50, seed=2)


def test_killed_member_catches_up(tmp_path: Path) -> None:
    rnd = random.Random(3)
    cluster = Cluster(tmp_path, extra=SNAPSHOTS)
    try:
        cluster.start()
        leader = cluster.leader()
        acked = write(cluster, rnd, "before", 20)
        victim = next(m for m in cluster.members if m is not leader)
        victim.kill()
        acked += write(cluster, rnd, "while-down", 100)  # > 2 snapshots: needs an install
        victim.start()
        check(cluster, acked, b"marker")
    finally:
        cluster.kill_all()


def test_leader_killed_during_writes(tmp_path: Path) -> None:
    rnd = random.Random(4)
    cluster = Cluster(tmp_path, extra=SNAPSHOTS)
    try:
        cluster.start()
        acked: list[bytes] = []
        for round_ in range(3):
            leader = cluster.leader()
            acked += write(cluster, rnd, f"r{round_}", 30)
            leader.send(f"propose {b'in-flight'.hex()} 2")
            leader.kill()
            # the survivors elect a new leader and take writes again
            start = time.monotonic()
            cluster.propose_until_ok(f"after-kill-{round_}".encode(), timeout=15)
            assert time.monotonic() - start < 15
            acked += write(cluster, rnd, f"r{round_}-after", 10)
            leader.start()
            check(cluster, acked, f"marker-{round_}".encode())
    finally:
        cluster.kill_all()
