"""Cluster membership through etcd's Cluster API, with real member processes."""

from __future__ import annotations

import grpc

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.raftstore.server.helpers import get_prefix, put
from tests.support.ports import free_ports
from tests.support.processes import wait_for
from tests.support.raftstore import StoreMember


def cluster_call(endpoint: str, method: str, request: object) -> object:
    with grpc.insecure_channel(endpoint) as channel:
        return getattr(rpc_pb2_grpc.ClusterStub(channel), method)(request, timeout=15)


def test_add_then_remove_a_member(store3, tmp_path):
    leader = store3.leader_index()
    assert leader is not None
    endpoint = store3.members[leader].endpoint
    client_port, peer_port = free_ports(2)
    peer_url = f"http://127.0.0.1:{peer_port}"
    added = cluster_call(endpoint, "MemberAdd", rpc_pb2.MemberAddRequest(peerURLs=[peer_url]))
    new_id = added.member.ID  # type: ignore[attr-defined]
    assert len(added.members) == 4  # type: ignore[attr-defined]

    initial = ",".join(
        [f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in store3.members] + [f"s3={peer_url}"]
    )
    newcomer = StoreMember(
        name="s3",
        client_port=client_port,
        peer_port=peer_port,
        data_dir=tmp_path / "s3",
        initial_cluster=initial,
        log_path=tmp_path / "s3.log",
        extra_args=("--initial-cluster-state=existing",),
    )
    store3.members.append(newcomer)
    put(endpoint, "/m/before", "1")
    newcomer.start()
    store3.wait_ready()
    put(endpoint, "/m/after", "2")
    wait_for(
        lambda: (
            get_prefix(newcomer.endpoint, "/m/", serializable=True)
            == {"/m/before": "1", "/m/after": "2"}
        ),
        timeout=20,
        message="the new member to catch up",
    )
    listed = cluster_call(newcomer.endpoint, "MemberList", rpc_pb2.MemberListRequest())
    names = sorted(m.name for m in listed.members)  # type: ignore[attr-defined]
    assert names == ["s0", "s1", "s2", "s3"]

    removed = cluster_call(endpoint, "MemberRemove", rpc_pb2.MemberRemoveRequest(ID=new_id))
    assert sorted(m.name for m in removed.members) == ["s0", "s1", "s2"]  # type: ignore[attr-defined]
    newcomer.stop()
    put(endpoint, "/m/removed", "3")
    assert get_prefix(endpoint, "/m/")["/m/removed"] == "3"


def test_removing_an_unknown_member_is_not_found(store3):
    try:
        cluster_call(store3.endpoints[0], "MemberRemove", rpc_pb2.MemberRemoveRequest(ID=12345))
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        assert exc.details() == "etcdserver: member not found"
    else:
        raise AssertionError("removing an unknown member succeeded")
