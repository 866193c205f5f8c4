"""In-process tests: three members in one trio run, each with its own raft thread."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from raftstore.replication import (
    ApplyError,
    NoLeader,
    RaftConfig,
    RaftNode,
    ReplicationError,
    open_raft_node,
)
from raftstore.replication.listsm import ListStateMachine


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class ExplodingList(ListStateMachine):
    def apply(self, command: bytes, *, index: int) -> object:
        if command == b"boom":
            raise ValueError("boom")
        return super().apply(command, index=index)


async def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the raft thread
            await trio.sleep(0.01)


async def leader_of(nodes: list[RaftNode]) -> RaftNode:
    await wait_until(lambda: sum(n.status().is_leader for n in nodes) == 1)
    leader = next(n for n in nodes if n.status().is_leader)
    await wait_until(lambda: all(n.status().leader_id == leader.self_id for n in nodes))
    return leader


class Trio:
    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.addresses = [free_address() for _ in range(size)]
        self.events: dict[str, list[tuple[int, bytes, object]]] = {a: [] for a in self.addresses}

    async def open(self, stack: AsyncExitStack, i: int, **kw: object) -> RaftNode:
        address = self.addresses[i]
        return await stack.enter_async_context(
            open_raft_node(
                self_address=address,
                peers=self.addresses,
                data_dir=str(self.root / f"m{i}"),
                state_machine=kw.pop("state_machine", None) or ExplodingList(),  # type: ignore[arg-type]
                apply_hook=lambda i, c, r: self.events[address].append((i, c, r)),
                **kw,  # type: ignore[arg-type]
            )
        )


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Trio, list[RaftNode]]]:
    t = Trio(tmp_path)
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i) for i in range(3)]
        yield t, nodes


async def test_propose_on_leader_and_follower(cluster: tuple[Trio, list[RaftNode]]) -> None:
    t, nodes = cluster
    leader = await leader_of(nodes)
    follower = next(n for n in nodes if n is not leader)
    assert await leader.propose(b"a", timeout=5) == 1
    # forwarded to the leader; the result is the follower's own apply result
    assert await follower.propose(b"b", timeout=5) == 2
    assert follower.state_machine.items() == [b"a", b"b"]  # type: ignore[attr-defined]
    await leader.read_barrier(timeout=5)
    assert leader.state_machine.items() == [b"a", b"b"]  # type: ignore[attr-defined]
    # the apply hook saw every command, in log order, with its index and result
    for n in nodes:
        await n.read_barrier(timeout=5)
        seen = t.events[n.self_id]
        assert [(c, r) for _, c, r in seen] == [(b"a", 1), (b"b", 2)]
        assert seen[0][0] < seen[1][0]
    st = follower.status()
    assert st.leader_id == leader.self_id and not st.is_leader and st.term >= 1
    assert st.members == tuple(sorted(t.addresses))
    assert st.applied_index >= seen[1][0]


async def test_apply_error_is_reported_and_log_moves_on(
    cluster: tuple[Trio, list[RaftNode]],
) -> None:
    _, nodes = cluster
    leader = await leader_of(nodes)
    with pytest.raises(ApplyError) as info:
        await leader.propose(b"boom", timeout=5)
    assert isinstance(info.value.__cause__, ValueError)
    assert await leader.propose(b"after", timeout=5) == 1


async def test_concurrent_barriers_share_proposals(cluster: tuple[Trio, list[RaftNode]]) -> None:
    _, nodes = cluster
    leader = await leader_of(nodes)
    follower = next(n for n in nodes if n is not leader)
    await leader.propose(b"x", timeout=5)
    before = follower.status().applied_index
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(lambda: follower.read_barrier(timeout=5))
    assert follower.state_machine.items() == [b"x"]  # type: ignore[attr-defined]
    # 50 barriers cost at most 2 no-op entries (the first round, and one for the rest)
    assert follower.status().applied_index - before <= 2


async def test_write_then_barrier_elsewhere_sees_it(cluster: tuple[Trio, list[RaftNode]]) -> None:
    _, nodes = cluster
    await leader_of(nodes)
    for i in range(20):
        writer, reader = nodes[i % 3], nodes[(i + 1) % 3]
        await writer.propose(b"%d" % i, timeout=5)
        await reader.read_barrier(timeout=5)
        assert reader.state_machine.items()[-1] == b"%d" % i  # type: ignore[attr-defined]


async def test_leadership_notification(tmp_path: Path) -> None:
    t = Trio(tmp_path)
    changes: list[tuple[bool, int]] = []
    async with AsyncExitStack() as stack:
        first = await t.open(
            stack, 0, leadership_hook=lambda lead, term: changes.append((lead, term))
        )
        others = [await t.open(stack, i) for i in (1, 2)]
        leader = await leader_of([first, *others])
        status = await leader.wait_leadership(is_leader=True)
        assert status.is_leader and status.self_id == leader.self_id
        if leader is first:
            assert changes and changes[-1][0] is True and changes[-1][1] == status.term
        follower = next(n for n in (first, *others) if n is not leader)
        assert not (await follower.wait_leadership(is_leader=False)).is_leader


async def test_no_leader_fails_fast(tmp_path: Path) -> None:
    peers = [free_address(), free_address()]  # nobody listens there
    async with open_raft_node(
        self_address=free_address(),
        peers=peers,
        data_dir=str(tmp_path / "alone"),
        state_machine=ListStateMachine(),
    ) as node:
        with pytest.raises(NoLeader):
            await node.propose(b"x", timeout=5)
        assert node.status().leader_id is None


async def test_restart_from_snapshot_and_journal(tmp_path: Path) -> None:
    t = Trio(tmp_path)
    config = RaftConfig(snapshot_every_entries=10)
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i, config=config) for i in range(3)]
        leader = await leader_of(nodes)
        for i in range(35):
            await leader.propose(b"%d" % i, timeout=5)
        for n in nodes:
            await n.read_barrier(timeout=5)
    snap = (tmp_path / "m0" / "snapshot").read_bytes()
    assert snap.startswith(b"RSSNAP\r\n") and b"pysyncobj" not in snap
    expected = [b"%d" % i for i in range(35)]
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i, config=config) for i in range(3)]
        await leader_of(nodes)
        for n in nodes:
            await n.read_barrier(timeout=5)
            assert n.state_machine.items() == expected  # type: ignore[attr-defined]


async def test_add_and_remove_member(tmp_path: Path) -> None:
    t = Trio(tmp_path, size=3)
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i) for i in range(3)]
        leader = await leader_of(nodes)
        await leader.propose(b"before", timeout=5)
        new_address = free_address()
        # the new member starts with the current member list as its peers
        newcomer = await stack.enter_async_context(
            open_raft_node(
                self_address=new_address,
                peers=t.addresses,
                data_dir=str(tmp_path / "new"),
                state_machine=ListStateMachine(),
            )
        )
        await leader.add_member(new_address, timeout=10)
        await wait_until(lambda: newcomer.status().leader_id is not None)
        await newcomer.propose(b"after", timeout=10)
        assert newcomer.state_machine.items() == [b"before", b"after"]  # type: ignore[attr-defined]
        assert len(leader.status().members) == 4
        follower = next(n for n in nodes if n is not leader)
        await leader.remove_member(follower.self_id, timeout=10)
        await wait_until(lambda: follower.self_id not in leader.status().members)
        assert await leader.propose(b"three", timeout=5) == 3


def _journal(node: RaftNode):  # type: ignore[no-untyped-def]
    return node._core._so._SyncObj__raftLog  # type: ignore[union-attr]


async def test_group_commit_flushes_once_per_batch(tmp_path: Path) -> None:
    t = Trio(tmp_path)
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i, config=RaftConfig(fsync=True)) for i in range(3)]
        leader = await leader_of(nodes)
        await leader.propose(b"warm-up", timeout=5)
        before = {n.self_id: (_journal(n).flushes, len(_journal(n))) for n in nodes}
        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(lambda i=i: leader.propose(b"c%d" % i, timeout=10))
        await wait_until(lambda: all(len(n.state_machine.items()) == 201 for n in nodes))  # type: ignore[attr-defined]
        for n in nodes:
            flushes = _journal(n).flushes - before[n.self_id][0]
            entries = len(_journal(n)) - before[n.self_id][1]
            assert entries >= 200
            # every member flushed, but far fewer times than it appended
            assert 0 < flushes < entries / 4, (n.self_id, flushes, entries)


async def test_leader_read_barrier_writes_nothing_to_the_journal(tmp_path: Path) -> None:
    t = Trio(tmp_path)
    async with AsyncExitStack() as stack:
        nodes = [await t.open(stack, i, config=RaftConfig(fsync=True)) for i in range(3)]
        leader = await leader_of(nodes)
        follower = next(n for n in nodes if n is not leader)
        await leader.read_barrier(timeout=5)  # the leader's own-term no-op is committed
        for round_ in range(5):
            await follower.propose(b"w%d" % round_, timeout=5)
            # let the write settle everywhere (the third member may still be appending it)
            index = follower.status().applied_index
            await wait_until(lambda i=index: all(n.status().applied_index >= i for n in nodes))
            await wait_until(lambda: len({len(_journal(n)) for n in nodes}) == 1)
            journals = {n.self_id: (len(_journal(n)), _journal(n).flushes) for n in nodes}
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(lambda: leader.read_barrier(timeout=5))
            assert leader.state_machine.items()[-1] == b"w%d" % round_  # type: ignore[attr-defined]
            # no entry appended and no flush, on any member
            assert {n.self_id: (len(_journal(n)), _journal(n).flushes) for n in nodes} == journals


async def test_leader_cut_off_from_majority_does_not_serve_reads(tmp_path: Path) -> None:
    t = Trio(tmp_path)
    async with AsyncExitStack() as stack:
        nodes = []
        for i in range(3):
            inner = AsyncExitStack()
            await stack.enter_async_context(inner)
            nodes.append((await t.open(inner, i), inner))
        leader = await leader_of([n for n, _ in nodes])
        await leader.propose(b"x", timeout=5)
        await leader.read_barrier(timeout=5)
        for node, inner in nodes:
            if node is not leader:
                await inner.aclose()  # both followers gone: no majority can confirm
        assert leader.status().is_leader  # it still believes it leads (for ~1.5 s)
        with pytest.raises(ReplicationError):
            await leader.read_barrier(timeout=4)
