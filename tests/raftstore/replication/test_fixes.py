"""Deterministic tests of the adapter's fixes to pysyncobj (see docs/replication.md)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio

from raftstore.replication import RaftConfig, open_raft_node
from raftstore.replication._pysyncobj import _Journal, _SyncObj
from raftstore.replication.listsm import ListStateMachine


def _fake_syncobj(log: list[tuple[bytes, int, int]], term: int) -> Any:
    so = _SyncObj.__new__(_SyncObj)
    so._SyncObj__raftLog = log
    so._SyncObj__raftCurrentTerm = term
    return so


def _log(terms: list[int]) -> list[tuple[bytes, int, int]]:
    return [(b"e%d" % i, i, t) for i, t in enumerate(terms, start=1)]


def _msg(term: int, prev: int, prev_term: int, entries: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": 1,
        "prevLogIdx": prev,
        "prevLogTerm": prev_term,
        "entries": [(b"e%d" % i, i, t) for i, t in entries],
    }


def test_stale_append_entries_no_longer_truncate() -> None:
    so = _fake_syncobj(_log([0] + [2] * 9), term=2)  # entries 1..10
    got = so._rs_trim_append_entries(_msg(2, 5, 2, [(6, 2), (7, 2)]))
    assert (got["prevLogIdx"], got["prevLogTerm"], got["entries"]) == (10, 2, [])
    got = so._rs_trim_append_entries(_msg(2, 5, 2, []))  # late heartbeat
    assert (got["prevLogIdx"], got["entries"]) == (10, [])


def test_overlapping_append_entries_keep_only_new_entries() -> None:
    so = _fake_syncobj(_log([0] + [2] * 9), term=2)
    got = so._rs_trim_append_entries(_msg(2, 5, 2, [(i, 2) for i in range(6, 13)]))
    assert got["prevLogIdx"] == 10 and [e[1] for e in got["entries"]] == [11, 12]


def test_conflicting_entries_still_truncate() -> None:
    so = _fake_syncobj(_log([0, 1, 1, 1, 1, 1, 1]), term=2)  # 1..7, old term 1
    msg = _msg(2, 5, 1, [(6, 2)])
    assert so._rs_trim_append_entries(msg) is msg  # pysyncobj truncates at 6, as Raft says
    msg = _msg(2, 3, 1, [(4, 1), (5, 1), (6, 2)])  # 4, 5 match; 6 conflicts
    got = so._rs_trim_append_entries(msg)
    assert got["prevLogIdx"] == 5 and [e[1] for e in got["entries"]] == [6]
    # an empty message from a newer leader keeps pysyncobj's behaviour (tail of older term)
    msg = _msg(2, 5, 1, [])
    assert so._rs_trim_append_entries(msg) is msg


def _address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def _solo_leader(node: Any) -> None:
    with trio.fail_after(10):
        while not node.status().is_leader:  # noqa: ASYNC110 - raft-thread state
            await trio.sleep(0.01)


async def test_crash_between_snapshot_and_compaction_keeps_later_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pysyncobj renames the new snapshot into place and compacts the journal a tick later.
    A crash in between left a journal that does not start at the snapshot, which pysyncobj
    then cleared on restart -- losing every entry after the snapshot. We simulate the crash
    by never compacting."""
    address, data_dir = _address(), str(tmp_path / "solo")
    config = RaftConfig(snapshot_every_entries=100_000)
    monkeypatch.setattr(_Journal, "deleteEntriesTo", lambda self, entry_to: None)
    async with open_raft_node(
        self_address=address,
        peers=[],
        data_dir=data_dir,
        state_machine=ListStateMachine(),
        config=config,
    ) as node:
        await _solo_leader(node)
        for i in range(20):
            await node.propose(b"%d" % i, timeout=5)
        node.force_snapshot()
        with trio.fail_after(10):
            while not (tmp_path / "solo" / "snapshot").exists():  # noqa: ASYNC110
                await trio.sleep(0.01)
        for i in range(20, 30):
            await node.propose(b"%d" % i, timeout=5)
    monkeypatch.undo()
    sm = ListStateMachine()
    async with open_raft_node(
        self_address=address, peers=[], data_dir=data_dir, state_machine=sm, config=config
    ) as node:
        await _solo_leader(node)
        await node.read_barrier(timeout=5)
        assert sm.items() == [b"%d" % i for i in range(30)]
