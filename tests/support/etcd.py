"""Real etcd for tests: a single member or a 3-member cluster on free loopback ports.

Each member runs as a :class:`~tests.support.processes.Process` with its data directory
and log under a caller-given directory. Timings are shortened (50 ms heartbeat, 500 ms
election timeout) so a cluster that loses its leader elects a new one within about a
second. :func:`etcd_cluster` waits until every member answers ``/health`` (which needs a
leader) and stops every member when the block ends.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import processes
from tests.support.ports import LOOPBACK, free_ports

START_TIMEOUT = 20.0


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: processes.Process

    @property
    def endpoint(self) -> str:
        """``host:port`` of the client (gRPC) listener."""
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{self.endpoint}"

    def healthy(self) -> bool:
        """True when the member answers ``/health`` with ``"health": "true"``."""
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1) as reply:
                return bool(json.load(reply).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False


@dataclass
class EtcdCluster:
    members: list[EtcdMember]

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(m.endpoint for m in self.members)

    @property
    def client_urls(self) -> tuple[str, ...]:
        return tuple(m.client_url for m in self.members)

    def kill(self, index: int) -> None:
        """SIGKILL member ``index`` (no clean shutdown)."""
        self.members[index].process.kill()

    def stop(self, index: int) -> None:
        """Stop member ``index`` cleanly (SIGTERM, SIGKILL after a grace)."""
        self.members[index].process.stop()

    def logs(self) -> str:
        return "\n".join(
            f"--- {m.name} ({m.endpoint}) ---\n{m.process.log_text()}" for m in self.members
        )


def etcd_available() -> bool:
    return shutil.which("etcd") is not None


def _argv(
    name: str, client_port: int, peer_port: int, data_dir: Path, initial_cluster: str, token: str
) -> list[str]:
    client = f"http://{LOOPBACK}:{client_port}"
    peer = f"http://{LOOPBACK}:{peer_port}"
    return [
        "etcd",
        f"--name={name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={initial_cluster}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={token}",
        "--heartbeat-interval=50",
        "--election-timeout=500",
        "--logger=zap",
        "--log-outputs=stderr",
    ]


@contextmanager
def etcd_cluster(base_dir: Path, *, size: int = 1) -> Iterator[EtcdCluster]:
    """Start ``size`` etcd members under ``base_dir``; all healthy on entry, stopped on exit."""
    ports = free_ports(2 * size)
    names = [f"m{i}" for i in range(size)]
    initial = ",".join(
        f"{name}=http://{LOOPBACK}:{ports[2 * i + 1]}" for i, name in enumerate(names)
    )
    token = f"test-{uuid.uuid4().hex[:12]}"
    with ExitStack() as stack:
        members = []
        for i, name in enumerate(names):
            data_dir = base_dir / name
            argv = _argv(name, ports[2 * i], ports[2 * i + 1], data_dir, initial, token)
            process = stack.enter_context(
                processes.running(argv, log_path=base_dir / f"{name}.log", grace=5.0)
            )
            members.append(EtcdMember(name, ports[2 * i], ports[2 * i + 1], data_dir, process))
        cluster = EtcdCluster(members)

        def ready() -> bool:
            dead = [m.name for m in members if not m.process.alive]
            if dead:
                raise RuntimeError(f"etcd {dead} exited during start-up:\n{cluster.logs()}")
            return all(m.healthy() for m in members)

        processes.wait_for(
            ready,
            timeout=START_TIMEOUT,
            message=lambda: f"etcd cluster of {size} to become healthy:\n{cluster.logs()}",
        )
        yield cluster
