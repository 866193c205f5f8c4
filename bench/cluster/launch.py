"""Clusters for the benchmarks: ``raftsman up`` / ``down``, and simulated nodes beside it.

:func:`local_cluster` runs ``raftsman up --dir DIR`` (the launcher's defaults: 3 stores,
2 API servers, 2 schedulers, 2 controller managers; the benchmark picks the runtime and
the number of node agents) and always runs ``raftsman down --dir DIR`` when the block
ends, however it ends -- also when ``up`` itself failed half-way. The components are the
launcher's, started exactly as a user's ``raftsman up`` starts them.

:func:`sim_nodes` runs ``raftsman node-agent --runtime sim --sim-nodes N`` against the
cluster's API servers: N simulated nodes in one process, as Kubernetes' kubemark runs
hollow nodes. They renew their Lease as often as the launcher's own node agents
(:data:`cli.launcher.roles.LOCAL_TIMINGS`), because the launcher's controller manager
declares a node lost after its grace period without a renewal. The process leads its own process
group and is stopped by it (SIGTERM, then SIGKILL) when the block ends.

Every command runs with this interpreter and this checkout (``python -m cli.main``), so
the benchmark measures the code it was started from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from actors.client import ApiClient
from cli.launcher.roles import LOCAL_TIMINGS, component_env
from proto import rpc
from raftstore.client import open_client
from tests.support import processes

from .machine import ROOT

UP_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """``raftsman up``/``status`` failed; the message has its stderr."""


@dataclass(frozen=True)
class Member:
    """One process of the cluster, as ``raftsman status -o json`` reports it."""

    role: str
    name: str
    pid: int | None
    state: str
    leader: bool
    endpoint: str | None


def _cli(*args: str, timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=component_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise ClusterError(f"raftsman {' '.join(args)}: {done.stderr.strip() or done.stdout}")
    return done.stdout


class LocalCluster:
    """A cluster started by ``raftsman up --dir``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def status(self) -> list[Member]:
        rows = json.loads(_cli("status", f"--dir={self.dir}", "-o", "json", timeout=60))
        return [
            Member(
                role=r["role"],
                name=r["name"],
                pid=r["pid"],
                state=r["state"],
                leader=bool(r["leader"]),
                endpoint=r.get("endpoint"),
            )
            for r in rows
        ]

    def api_servers(self) -> list[str]:
        return [m.endpoint for m in self.status() if m.role == "apiserver" and m.endpoint]

    def store_endpoints(self, members: Sequence[Member] | None = None) -> list[str]:
        rows = self.status() if members is None else members
        return [m.endpoint for m in rows if m.role == "store" and m.endpoint]

    async def store_term(self, members: Sequence[Member] | None = None) -> int | None:
        """The store's Raft term (one more per leader election), or None if no member
        answers: the difference over a run counts the elections in it."""
        endpoints = self.store_endpoints(members)
        terms = []
        for endpoint in endpoints:
            with trio.move_on_after(3):
                try:
                    async with open_client([endpoint], timeout=2) as client:
                        terms.append((await client.status()).raft_term)
                except rpc.RpcError:
                    continue
        return max(terms, default=None)

    def pids(self, members: Sequence[Member] | None = None) -> dict[str, int]:
        """``name -> pid`` of every process that runs (the supervisor included)."""
        rows = self.status() if members is None else members
        return {m.name: m.pid for m in rows if m.pid and m.state == "up"}


@contextmanager
def local_cluster(
    directory: Path,
    *,
    runtime: str,
    nodes: int,
    timeout: float = UP_TIMEOUT,
    purge: bool = True,
    extra: Sequence[str] = (),
) -> Iterator[LocalCluster]:
    """``raftsman up`` a cluster in ``directory``; ``raftsman down`` it afterwards.

    ``extra``: more ``up`` flags (``--schedulers=0``, ...)."""
    cluster = LocalCluster(directory)
    try:
        _cli(
            "up",
            f"--dir={directory}",
            f"--runtime={runtime}",
            f"--nodes={nodes}",
            f"--timeout={timeout:g}",
            *extra,
            timeout=timeout + 30,
        )
        yield cluster
    finally:
        down = ["down", f"--dir={directory}"] + (["--purge"] if purge else [])
        try:
            _cli(*down, timeout=120)
        except (ClusterError, subprocess.TimeoutExpired) as exc:
            print(f"warning: {exc}", file=sys.stderr)


@contextmanager
def sim_nodes(
    cluster: LocalCluster, *, count: int, prefix: str, work_dir: Path
) -> Iterator[processes.Process]:
    """Run ``count`` simulated nodes ``<prefix>-<i>`` in one node-agent process."""
    servers = ",".join(cluster.api_servers())
    argv = [
        sys.executable, "-m", "cli.main", "node-agent",
        f"--name={prefix}", "--runtime=sim", f"--sim-nodes={count}",
        f"--server={servers}", f"--data-dir={work_dir / prefix}",
        f"--lease-period={LOCAL_TIMINGS['node-lease-period']:g}",
        f"--max-backoff={LOCAL_TIMINGS['max-backoff']:g}",
    ]  # fmt: skip
    with processes.running(
        argv, log_path=work_dir / f"{prefix}.log", cwd=ROOT, env=component_env(), grace=10
    ) as proc:
        yield proc


async def wait_nodes_ready(
    api: ApiClient,
    *,
    count: int,
    prefix: str = "",
    timeout: float,
    alive: processes.Process | None = None,
) -> float:
    """Until ``count`` Nodes named ``prefix...`` are Ready; the seconds it took."""
    started = trio.current_time()

    async def ready() -> bool:
        if alive is not None and not alive.alive:
            raise ClusterError(f"the node agent process exited:\n{alive.log_text(tail=3000)}")
        nodes = (await api.list("nodes")).items
        up = sum(
            1
            for n in nodes
            if n.metadata.name.startswith(prefix)
            and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
        )
        return up >= count

    await processes.async_wait_for(
        ready, timeout=timeout, interval=0.5, message=f"{count} Ready nodes named {prefix}*"
    )
    return trio.current_time() - started
