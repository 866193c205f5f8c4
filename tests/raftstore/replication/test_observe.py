"""A member logs and counts the leaders and terms it sees, and warns of slow applies."""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from raftstore.replication import RaftNode
from raftstore.replication.listsm import ListStateMachine
from raftstore.replication.observe import LeaderLog, SlowLog

from .test_node import Trio, leader_of, wait_until

LOGGER = "raftstore.replication.observe"


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_leader_log_counts_one_leader_per_term(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    log = LeaderLog("store-0", "127.0.0.1:1")
    for term, leader in [
        (1, None),  # an election starts
        (1, "127.0.0.1:2"),  # won by a peer
        (1, "127.0.0.1:2"),
        (2, None),
        (3, None),  # a split vote, another term
        (3, "127.0.0.1:1"),  # this member wins
        (3, "127.0.0.1:1"),
        (4, "127.0.0.1:1"),  # re-elected in a later term: a new election, counted
    ]:
        log.observe(term, leader)
    assert log.changes == 3
    messages = _messages(caplog, logging.INFO)
    assert [m for m in messages if "no leader yet" in m] == [
        "raft member store-0 (127.0.0.1:1) is at term 1, no leader yet",
        "raft member store-0 (127.0.0.1:1) is at term 2, no leader yet",
        "raft member store-0 (127.0.0.1:1) is at term 3, no leader yet",
    ]
    leaders = [m for m in messages if "leader at term" in m]
    assert leaders == [
        "raft member store-0 (127.0.0.1:1): leader at term 1 is 127.0.0.1:2 (was none); "
        "leader changes seen: 1",
        "raft member store-0 (127.0.0.1:1): leader at term 3 is 127.0.0.1:1 (this member) "
        "(was 127.0.0.1:2); leader changes seen: 2",
        "raft member store-0 (127.0.0.1:1): leader at term 4 is 127.0.0.1:1 (this member) "
        "(was 127.0.0.1:1); leader changes seen: 3",
    ]


def test_slow_log_warns_over_the_threshold_at_most_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    now = [100.0]
    slow = SlowLog("store-1", clock=lambda: now[0])
    slow.record("apply", 0.1, "of entry 1")  # at the threshold: fine
    slow.record("apply", 0.25, "of entry 2")
    now[0] += 0.5
    slow.record("apply", 0.3, "of entry 3")  # within the second: counted, not logged
    slow.record("flush", 0.2, "of 4096 journal bytes")  # another kind has its own limit
    now[0] += 0.6
    slow.record("apply", 0.15, "of entry 4")
    assert slow.counts == {"apply": 3, "flush": 1}
    assert _messages(caplog, logging.WARNING) == [
        "raft member store-1: apply of entry 2 took 250 ms (expected under 100 ms)",
        "raft member store-1: flush of 4096 journal bytes took 200 ms (expected under 100 ms)",
        "raft member store-1: apply of entry 4 took 150 ms (expected under 100 ms); "
        "1 more since the last warning",
    ]


class SlowList(ListStateMachine):
    def apply(self, command: bytes, *, index: int) -> object:
        if command == b"slow":
            time.sleep(0.15)  # a descheduled raft thread looks like this to the member
        return super().apply(command, index=index)


async def test_a_member_logs_and_counts_a_new_leader_and_a_slow_apply(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    t = Trio(tmp_path)
    async with AsyncExitStack() as stack:
        members: list[tuple[RaftNode, AsyncExitStack]] = []
        for i in range(3):
            inner = AsyncExitStack()
            await stack.enter_async_context(inner)
            node = await t.open(inner, i, state_machine=SlowList(), name=f"store-{i}")
            members.append((node, inner))
        nodes = [n for n, _ in members]
        leader = await leader_of(nodes)
        await wait_until(lambda: all(n.status().leader_changes == 1 for n in nodes))

        await leader.propose(b"slow", timeout=5)
        name = f"store-{nodes.index(leader)}"
        warnings = _messages(caplog, logging.WARNING)
        assert any(m.startswith(f"raft member {name}: apply of entry ") for m in warnings)

        for node, inner in members:
            if node is leader:
                await inner.aclose()
        rest = [n for n in nodes if n is not leader]
        second = await leader_of(rest)
        await wait_until(lambda: all(n.status().leader_changes == 2 for n in rest))
        term = second.status().term
        me = f"store-{nodes.index(second)}"
        assert any(
            m.startswith(f"raft member {me} ({second.self_id}): leader at term {term} is ")
            and "(this member)" in m
            for m in _messages(caplog, logging.INFO)
        )
