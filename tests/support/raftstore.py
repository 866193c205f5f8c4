"""Real raftstore members as processes (``raftsman store``), for integration tests.

Each member runs ``python -m cli.main store`` with etcd's flags on free loopback ports,
in its own process group, logging to a file. A member can be killed (SIGKILL), stopped
(SIGTERM) and started again on the same data directory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.support import processes
from tests.support.ports import LOOPBACK, free_ports

START_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StoreMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    initial_cluster: str
    log_path: Path
    extra_args: tuple[str, ...] = ()
    process: processes.Process | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{self.endpoint}"

    def argv(self) -> list[str]:
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        return [
            sys.executable,
            "-m",
            "cli.main",
            "store",
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.initial_cluster}",
            *self.extra_args,
        ]

    def start(self) -> None:
        assert self.process is None or not self.process.alive, f"{self.name} already runs"
        self.process = processes.start(self.argv(), log_path=self.log_path, cwd=ROOT)

    def kill(self) -> None:
        if self.process is not None and self.process.alive:
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None and self.process.alive:
            self.process.stop()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def status(self) -> rpc_pb2.StatusResponse | None:
        """The member's Status, or None when it does not answer."""
        with grpc.insecure_channel(self.endpoint) as channel:
            try:
                return rpc_pb2_grpc.MaintenanceStub(channel).Status(
                    rpc_pb2.StatusRequest(), timeout=1.0
                )
            except grpc.RpcError:
                return None

    def ready(self) -> bool:
        """Serving, and knows a leader that has applied this member's attributes."""
        status = self.status()
        if status is None or status.leader == 0:
            return False
        with grpc.insecure_channel(self.endpoint) as channel:
            try:
                members = rpc_pb2_grpc.ClusterStub(channel).MemberList(
                    rpc_pb2.MemberListRequest(), timeout=1.0
                )
            except grpc.RpcError:
                return False
        return any(m.name == self.name for m in members.members)


@dataclass
class StoreCluster:
    members: list[StoreMember]

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(m.endpoint for m in self.members)

    def leader_index(self) -> int | None:
        for i, member in enumerate(self.members):
            status = member.status() if member.alive else None
            if status is not None and status.leader == status.header.member_id:
                return i
        return None

    def kill(self, index: int) -> None:
        self.members[index].kill()

    def restart(self, index: int) -> None:
        self.members[index].kill()
        self.members[index].start()

    def wait_ready(self, *, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            return all(m.ready() for m in self.members if m.alive)

        processes.wait_for(
            ready, timeout=timeout, message=lambda: f"raftstore to be ready:\n{self.logs()}"
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {m.name} ---\n{m.process.log_text() if m.process else ''}" for m in self.members
        )


@contextmanager
def raftstore_cluster(
    base_dir: Path, *, size: int = 1, extra_args: tuple[str, ...] = ()
) -> Iterator[StoreCluster]:
    """Start ``size`` members under ``base_dir``; all ready on entry, all stopped on exit."""
    ports = free_ports(2 * size)
    names = [f"s{i}" for i in range(size)]
    initial = ",".join(f"{n}=http://{LOOPBACK}:{ports[2 * i + 1]}" for i, n in enumerate(names))
    members = [
        StoreMember(
            name=name,
            client_port=ports[2 * i],
            peer_port=ports[2 * i + 1],
            data_dir=base_dir / name,
            initial_cluster=initial,
            log_path=base_dir / f"{name}.log",
            extra_args=extra_args,
        )
        for i, name in enumerate(names)
    ]
    cluster = StoreCluster(members)
    try:
        for member in members:
            member.start()
        cluster.wait_ready()
        yield cluster
    finally:
        for member in members:
            member.stop()
