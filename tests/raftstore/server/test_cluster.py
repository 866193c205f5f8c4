"""Three raftstore members as processes: failover, restarts, nothing acknowledged lost."""

from __future__ import annotations

import itertools

import grpc

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.raftstore.server.helpers import get_prefix, keepalive_once, lease_call, put, put_anywhere
from tests.support.processes import wait_for


def test_writes_through_any_member_are_read_everywhere(store3):
    for i, member in enumerate(store3.members):
        put(member.endpoint, f"/any/{i}", str(i))
    expected = {f"/any/{i}": str(i) for i in range(3)}
    for member in store3.members:
        assert get_prefix(member.endpoint, "/any/") == expected


def test_leader_killed_during_writes_loses_nothing(store3):
    acked: dict[str, str] = {}
    counter = itertools.count()

    def write_some(n: int) -> None:
        for _ in range(n):
            i = next(counter)
            if put_anywhere(store3, f"/f/{i:05d}", str(i)):
                acked[f"/f/{i:05d}"] = str(i)

    write_some(20)
    leader = store3.leader_index()
    assert leader is not None
    store3.kill(leader)
    # Writes succeed again once the survivors elect a new leader.
    wait_for(
        lambda: put_anywhere(store3, "/f/probe", "x"),
        timeout=20,
        message=lambda: f"writes after leader kill:\n{store3.logs()}",
    )
    write_some(20)
    survivor = next(m for m in store3.members if m.alive)
    seen = get_prefix(survivor.endpoint, "/f/")
    assert {k: v for k, v in seen.items() if k in acked} == acked
    # The killed member restarts, catches up, and serves the same data locally.
    store3.members[leader].start()
    store3.wait_ready()
    wait_for(
        lambda: (
            acked.items()
            <= get_prefix(store3.members[leader].endpoint, "/f/", serializable=True).items()
        ),
        timeout=20,
        message="restarted member to catch up",
    )


def test_full_cluster_kill_and_restart_repeatedly_loses_nothing(store3):
    acked: dict[str, str] = {}
    for round_ in range(3):
        for i in range(15):
            key = f"/r/{round_}/{i:03d}"
            assert put_anywhere(store3, key, f"{round_}.{i}")
            acked[key] = f"{round_}.{i}"
        for index in range(3):
            store3.kill(index)
        for member in store3.members:
            member.start()
        store3.wait_ready()
        for member in store3.members:
            assert get_prefix(member.endpoint, "/r/") == acked


def test_watch_continues_across_member_restart(store3):
    """A watcher resuming from its last revision on a restarted member misses nothing."""
    leader = store3.leader_index()
    assert leader is not None
    follower = (leader + 1) % 3
    first = put(store3.members[leader].endpoint, "/w/0", "0")
    store3.kill(follower)
    for i in range(1, 6):
        put(store3.members[leader].endpoint, f"/w/{i}", str(i))
    store3.members[follower].start()
    store3.wait_ready()
    request = rpc_pb2.WatchRequest(
        create_request=rpc_pb2.WatchCreateRequest(
            key=b"/w/", range_end=b"/w0", start_revision=first
        )
    )
    got: list[str] = []
    with grpc.insecure_channel(store3.members[follower].endpoint) as channel:
        stream = rpc_pb2_grpc.WatchStub(channel).Watch(iter([request]), timeout=20)
        for response in stream:
            got.extend(e.kv.key.decode() for e in response.events)
            if len(got) >= 6:
                break
        stream.cancel()
    assert got == [f"/w/{i}" for i in range(6)]


def test_lease_survives_leader_change_and_expires_after(store3):
    leader = store3.leader_index()
    assert leader is not None
    follower = store3.members[(leader + 1) % 3]
    granted = lease_call(follower.endpoint, "LeaseGrant", rpc_pb2.LeaseGrantRequest(TTL=4))
    lease_id = granted.ID  # type: ignore[attr-defined]
    with grpc.insecure_channel(follower.endpoint) as channel:
        rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=b"/lease/k", value=b"v", lease=lease_id), timeout=10
        )
    # Keep-alives sent to a follower reach the leader.
    assert keepalive_once(follower.endpoint, lease_id) == 4
    store3.kill(leader)
    wait_for(
        lambda: store3.leader_index() is not None,
        timeout=20,
        message="a new leader",
    )
    # The new leader restarted the lease's clock: still alive, and renewable.
    assert get_prefix(follower.endpoint, "/lease/") == {"/lease/k": "v"}
    assert keepalive_once(follower.endpoint, lease_id) == 4
    # Without keep-alives it expires on the new leader, deleting its key.
    wait_for(
        lambda: get_prefix(follower.endpoint, "/lease/") == {},
        timeout=15,
        message="the lease to expire on the new leader",
    )
    ttl = lease_call(
        follower.endpoint, "LeaseTimeToLive", rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id)
    )
    assert ttl.TTL == -1  # type: ignore[attr-defined]
