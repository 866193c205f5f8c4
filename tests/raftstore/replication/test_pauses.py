"""A member whose raft thread was paused judges its timeouts on what arrived meanwhile."""

from __future__ import annotations

import threading
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from raftstore.replication import RaftConfig

from .test_node import Trio, leader_of, wait_until


async def test_a_follower_paused_past_its_election_timeout_starts_no_election(
    tmp_path: Path,
) -> None:
    # elections after 0.3-0.6 s of silence; connections dropped only after 4 s
    config = RaftConfig().with_etcd_timings(heartbeat_interval_ms=50, election_timeout_ms=300)
    pause = config.election_timeout_max + 0.6
    assert pause < config.connection_timeout
    t = Trio(tmp_path)
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i, config=config) for i in range(3)]
        leader = await leader_of(nodes)
        await leader.propose(b"before", timeout=5)
        term = leader.status().term
        follower = next(n for n in nodes if n is not leader)

        # The follower's raft thread stops while it handles what its end-of-tick read
        # returned (as a thread descheduled on a starved machine, or one waiting for the
        # GIL or a slow disk flush of an append_entries, would); the leader's heartbeats
        # keep arriving meanwhile.
        poller: Any = follower._core._so._poller  # type: ignore[union-attr]
        read = poller.poll
        reads_after_pause: list[float] = []
        paused = threading.Event()

        def read_then_pause(timeout: float) -> None:
            read(timeout)
            if paused.is_set():
                reads_after_pause.append(timeout)
            elif timeout > 0:  # the read that ends a tick, not a read that starts one
                paused.set()
                time.sleep(pause)

        poller.poll = read_then_pause
        # every tick reads its sockets at least once: three reads = the pause is over and
        # the ticks after it have judged the election deadline
        await wait_until(lambda: len(reads_after_pause) >= 3, timeout=pause + 10)

        assert [n.status().term for n in nodes] == [term] * 3
        assert leader.status().is_leader
        assert all(n.status().leader_changes == 1 for n in nodes)
        assert await follower.propose(b"after", timeout=5) == 2
