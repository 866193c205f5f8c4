"""Run one store member: Raft, the state it drives, and etcd's gRPC services.

``run_store`` is the whole member as a trio task; ``raftsman store`` runs it as a process.
On start a member replays its journal from ``--data-dir``, joins its peers, publishes its
name and client URLs through the log, and serves clients on every ``--listen-client-urls``
address. Cancelling the task (SIGTERM in the process) stops the gRPC servers, then Raft.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import partial

import trio

from proto import rpc
from proto.etcdserverpb import rpc_pb2
from raftstore.replication import RaftConfig, open_raft_node
from raftstore.server.cluster import ClusterService, MaintenanceService
from raftstore.server.config import StoreConfig, host_port
from raftstore.server.kv import KVService
from raftstore.server.lease import LeaseService, Lessor
from raftstore.server.member import Member
from raftstore.server.state import StoreState, member_command
from raftstore.server.watch import WatchService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningStore:
    member: Member
    servers: tuple[rpc.Server, ...]

    @property
    def client_addresses(self) -> tuple[str, ...]:
        return tuple(s.address for s in self.servers)


async def _publish_attributes(member: Member, client_urls: tuple[str, ...]) -> None:
    """Put this member's name and URLs into the replicated registry (retried until done)."""
    me = rpc_pb2.Member(
        ID=member.id,
        name=member.config.name,
        peerURLs=[member.config.peer_url],
        clientURLs=list(client_urls),
    )
    while True:
        with member.state.lock:
            if member.state.members.get(member.id) == me:
                return
        try:
            await member.propose(member_command(me))
            log.info("published member attributes name=%s id=%x", me.name, me.ID)
            return
        except rpc.RpcError as exc:
            log.debug("publishing member attributes failed, retrying: %s", exc)
            await trio.sleep(0.2)


def _with_bind_address(raft: RaftConfig, config: StoreConfig) -> RaftConfig:
    """Listen for peers on --listen-peer-urls even when peers know us by another address."""
    if raft.bind_address is not None or config.raft_bind_address == config.raft_address:
        return raft
    return dataclasses.replace(raft, bind_address=config.raft_bind_address)


async def run_store(
    config: StoreConfig,
    *,
    raft: RaftConfig | None = None,
    task_status: trio.TaskStatus[RunningStore] = trio.TASK_STATUS_IGNORED,
) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    state = StoreState()
    async with (
        rpc.open_loop(),
        open_raft_node(
            self_address=config.raft_address,
            peers=config.partner_addresses,
            data_dir=str(config.data_dir / "member"),
            state_machine=state,
            config=_with_bind_address(raft or RaftConfig(), config),
            name=config.name,
        ) as node,
    ):
        member = Member(config=config, state=state, log=node)
        lessor = Lessor(member)
        services = [
            rpc.Service.of(KVService(member), rpc_pb2, "KV"),
            rpc.Service.of(WatchService(member), rpc_pb2, "Watch"),
            rpc.Service.of(LeaseService(member, lessor), rpc_pb2, "Lease"),
            rpc.Service.of(ClusterService(member), rpc_pb2, "Cluster"),
            rpc.Service.of(MaintenanceService(member), rpc_pb2, "Maintenance"),
        ]
        async with trio.open_nursery() as nursery:
            servers = []
            for url in config.listen_client_urls:
                host, port = host_port(url, flag="--listen-client-urls")
                servers.append(
                    await nursery.start(partial(rpc.serve, services, host=host, port=port))
                )
            advertised = config.advertise_client_urls
            if any(host_port(u, flag="")[1] == 0 for u in advertised):
                advertised = tuple(f"http://{s.address}" for s in servers)
            nursery.start_soon(lessor.run)
            nursery.start_soon(_publish_attributes, member, advertised)
            log.info(
                "store member ready name=%s raft=%s clients=%s",
                config.name,
                config.raft_address,
                ",".join(s.address for s in servers),
            )
            task_status.started(RunningStore(member=member, servers=tuple(servers)))
