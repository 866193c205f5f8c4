"""etcd's timing flags: what they set, and the values refused with the flag named."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from cli.main import main
from raftstore.replication import RaftConfig, open_raft_node
from raftstore.replication.listsm import ListStateMachine

from .test_node import free_address


def test_etcd_timings_set_heartbeat_and_a_randomized_election_timeout() -> None:
    config = RaftConfig().with_etcd_timings(heartbeat_interval_ms=100, election_timeout_ms=1000)
    assert config.append_entries_period == 0.1
    assert (config.election_timeout_min, config.election_timeout_max) == (1.0, 2.0)
    # no connection dropped, no leader stepping down, before a follower could elect
    assert config.leader_fallback_timeout >= 2.0 and config.connection_timeout >= 4.0
    assert config.fsync == RaftConfig().fsync  # everything else kept

    short = RaftConfig().with_etcd_timings(heartbeat_interval_ms=20, election_timeout_ms=100)
    assert (short.election_timeout_min, short.election_timeout_max) == (0.1, 0.2)
    assert short.connection_timeout == RaftConfig().connection_timeout


def test_the_defaults_are_etcds_100_ms_heartbeat_and_1000_ms_election_timeout() -> None:
    # what `raftsman store --help` promises
    etcd = RaftConfig().with_etcd_timings(heartbeat_interval_ms=100, election_timeout_ms=1000)
    assert RaftConfig() == etcd


def test_an_election_timeout_under_five_heartbeats_is_refused() -> None:
    with pytest.raises(ValueError, match=r"--election-timeout\[400ms\] must be at least 5 times"):
        RaftConfig().with_etcd_timings(heartbeat_interval_ms=100, election_timeout_ms=400)
    with pytest.raises(ValueError, match="--heartbeat-interval must be at least 1 ms"):
        RaftConfig().with_etcd_timings(heartbeat_interval_ms=0, election_timeout_ms=400)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--election-timeout=300", "--heartbeat-interval=100"], "--election-timeout[300ms]"),
        (["--election-timeout=200"], "at least 5 times --heartbeat-interval"),
        (["--heartbeat-interval=0"], "--heartbeat-interval"),
    ],
)
def test_the_store_refuses_timings_that_cannot_work(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["store", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


async def test_a_member_alone_leads_without_waiting_for_an_election_timeout(
    tmp_path: Path,
) -> None:
    slow = RaftConfig().with_etcd_timings(heartbeat_interval_ms=100, election_timeout_ms=5000)
    async with open_raft_node(
        self_address=free_address(),
        peers=[],
        data_dir=str(tmp_path / "alone"),
        state_machine=ListStateMachine(),
        config=slow,
    ) as node:
        with trio.fail_after(slow.election_timeout_min / 2):
            await node.wait_leadership(is_leader=True)
        assert await node.propose(b"x", timeout=5) == 1
