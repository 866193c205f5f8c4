"""Fault links: a TCP proxy on the cluster's internal links that chaos can cut or slow down.

The problem. To partition a store member away, or to slow its traffic, something must
sit on the wire between components. Network namespaces and ``tc``/``iptables`` need
root; a user-space proxy does not. ``raftsman up --fault-links`` plans a cluster whose
internal links all go through one: the supervisor runs a proxy listener in front of
every store member's peer port and client port, store members advertise their proxy
address to each other (``--initial-advertise-peer-urls``, ``--initial-cluster``) while
listening on their real port (``--listen-peer-urls``), and API servers get the proxy
addresses as ``--etcd-servers``. Clients outside the cluster (``raftsman status``,
``etcdctl``, the chaos workload) keep using the real client ports, so the harness can
always see what the members themselves say.

Who is talking. A rule names a process (``store-1``): it applies to every link *to* it
(the proxy in front of its ports) and every link *from* it. Connections arrive at a proxy
from loopback, so the source is found the way ``ss -p`` finds it: the client's port is
looked up in ``/proc/net/tcp`` to get the socket's inode, and the inode among the open
files (``/proc/PID/fd``) of the cluster's processes (pids from the state file). No root
needed for our own processes. A source that cannot be identified matches only rules for
the destination.

Rules (``DIR/links/rules.json``, written by :class:`LinkControl`, read by the proxy):

* ``refuse`` -- close the connections of a matching link and refuse new ones: the
  members see a connection error at once and keep retrying.
* ``blackhole`` -- accept and keep connections but forward nothing: the members see
  silence until their own timeouts fire (pysyncobj drops a silent connection after
  ``connection_timeout``, 2 s, and reconnects -- into the same hole).
* ``delay`` -- forward every chunk ``latency`` seconds after it arrived, each way,
  preserving order (pure latency, not a bandwidth limit).

Control is a file, not a socket: the proxy polls ``rules.json`` (every 50 ms) and writes
the generation it has applied to ``DIR/links/applied.json``; :meth:`LinkControl.add`
returns only once the proxy has applied it, so a fault is in effect when the harness
records its start. A file also outlives a proxy restart: the supervisor that comes back
applies the same rules. The plan (ports) is ``DIR/links/plan.json``; its presence is what
turns fault links on for a cluster, fixed when the cluster is created (the members'
advertised addresses are their identity in the Raft group).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from .layout import Layout
from .state import ClusterState, ProcessRecord, StateFileError, write_atomic

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class LinksError(Exception):
    """Fault links cannot be set up or used as asked; the message says why."""


ACTIONS = ("refuse", "blackhole", "delay")
POLL_PERIOD = 0.05
CHUNK = 65536


def links_dir(root: Path | str) -> Path:
    return Path(root) / "links"


def _plan_file(root: Path | str) -> Path:
    return links_dir(root) / "plan.json"


def _rules_file(root: Path | str) -> Path:
    return links_dir(root) / "rules.json"


def _applied_file(root: Path | str) -> Path:
    return links_dir(root) / "applied.json"


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Link:
    """A proxy listener: ``listen`` forwards to ``target``'s ``port`` (a named port)."""

    target: str
    port: str
    listen: int
    connect: int


def enabled(root: Path | str) -> bool:
    """Whether the cluster at ``root`` was created with fault links."""
    return _plan_file(root).exists()


def load_plan(root: Path | str) -> list[Link]:
    try:
        raw = json.loads(_plan_file(root).read_text())
    except (OSError, ValueError) as exc:
        raise StateFileError(f"{_plan_file(root)}: unreadable fault link plan: {exc}") from None
    return [Link(**entry) for entry in raw["links"]]


def enable(layout: Layout, state: ClusterState, *, new: bool) -> None:
    """Plan fault links for a cluster ``up`` is about to create (``new``).

    An existing cluster keeps what it was created with: asking an existing cluster
    without fault links for them is a :class:`PlanError`.
    """
    from .plan import PlanError, free_ports  # plan imports roles, which imports this module

    root = layout.root
    if enabled(root):
        return
    if not new:
        raise PlanError(
            f"the cluster at {root} was created without --fault-links; fault links are "
            f"chosen when a cluster is created (`raftsman down --purge --dir {root}` first)"
        )
    stores = state.by_role("store")
    taken = {port for proc in state.processes for port in proc.ports.values()}
    ports = free_ports(2 * len(stores))
    while taken & set(ports):  # the kernel may hand out a port the plan just took
        ports = free_ports(2 * len(stores))
    links = []
    for i, proc in enumerate(stores):
        for j, port in enumerate(("peer", "client")):
            links.append(Link(proc.name, port, ports[2 * i + j], proc.ports[port]))
    links_dir(root).mkdir(parents=True, exist_ok=True)
    write_atomic(
        _plan_file(root),
        json.dumps({"version": 1, "links": [asdict(link) for link in links]}, indent=2) + "\n",
    )


def _proxied(cluster: ClusterState, proc: ProcessRecord, port: str) -> str:
    if enabled(cluster.dir):
        for link in load_plan(cluster.dir):
            if link.target == proc.name and link.port == port:
                return f"{LOOPBACK}:{link.listen}"
    return proc.endpoint(port)


def peer_url(cluster: ClusterState, proc: ProcessRecord) -> str:
    """The peer URL other members use for store ``proc`` (its proxy, with fault links)."""
    return f"http://{_proxied(cluster, proc, 'peer')}"


def client_url(cluster: ClusterState, proc: ProcessRecord) -> str:
    """The client URL components use for store ``proc`` (its proxy, with fault links)."""
    return f"http://{_proxied(cluster, proc, 'client')}"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, kw_only=True)
class Rule:
    """``action`` on every fault link to or from ``process``."""

    action: str
    process: str
    latency: float = 0.0
    id: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if self.action == "delay" and not self.latency > 0:
            raise ValueError(f"a delay rule needs latency > 0, not {self.latency}")


@dataclass(frozen=True)
class RuleSet:
    generation: int = 0
    rules: tuple[Rule, ...] = ()

    @classmethod
    def read(cls, root: Path | str) -> RuleSet:
        try:
            raw = json.loads(_rules_file(root).read_text())
        except FileNotFoundError:
            return cls()
        return cls(int(raw["generation"]), tuple(Rule(**r) for r in raw["rules"]))

    def write(self, root: Path | str) -> None:
        links_dir(root).mkdir(parents=True, exist_ok=True)
        body = {"generation": self.generation, "rules": [asdict(r) for r in self.rules]}
        write_atomic(_rules_file(root), json.dumps(body, indent=2) + "\n")

    def verdict(self, source: str | None, target: str) -> tuple[str, float]:
        """What happens on a link from ``source`` to ``target``: ``(action, latency)``.

        ``refuse`` beats ``blackhole`` beats ``delay``; delays add up. ``("pass", 0)``
        when no rule matches.
        """
        matching = [r for r in self.rules if r.process in (source, target)]
        for action in ("refuse", "blackhole"):
            if any(r.action == action for r in matching):
                return action, 0.0
        latency = sum(r.latency for r in matching if r.action == "delay")
        return ("delay", latency) if latency else ("pass", 0.0)


class LinkControl:
    """Adds and removes rules of one cluster's fault links; used by the chaos harness."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_cluster(cls, root: Path | str) -> LinkControl:
        root = Path(root)
        if not enabled(root):
            raise LinksError(
                f"the cluster at {root} has no fault links; create it with "
                "`raftsman up --fault-links` to partition or delay its members"
            )
        return cls(root)

    def rules(self) -> RuleSet:
        return RuleSet.read(self.root)

    async def add(self, rules: Sequence[Rule], *, timeout: float = 10.0) -> list[str]:
        """Add ``rules``; returns their ids once the proxy applies them."""
        current = self.rules()
        await self._publish(RuleSet(current.generation + 1, (*current.rules, *rules)), timeout)
        return [r.id for r in rules]

    async def remove(self, ids: Sequence[str], *, timeout: float = 10.0) -> None:
        current = self.rules()
        kept = tuple(r for r in current.rules if r.id not in set(ids))
        await self._publish(RuleSet(current.generation + 1, kept), timeout)

    async def clear(self, *, timeout: float = 10.0) -> None:
        await self._publish(RuleSet(self.rules().generation + 1, ()), timeout)

    async def _publish(self, rules: RuleSet, timeout: float) -> None:
        rules.write(self.root)
        with trio.move_on_after(timeout):
            while True:  # the proxy is another process: poll what it says it applied
                if applied_generation(self.root) >= rules.generation:
                    return
                await trio.sleep(0.02)
        raise TimeoutError(
            f"the fault link proxy did not apply rules generation {rules.generation} within "
            f"{timeout:g}s; is the cluster's supervisor running?"
        )


def applied_generation(root: Path | str) -> int:
    try:
        return int(json.loads(_applied_file(root).read_text())["generation"])
    except (OSError, ValueError, KeyError):
        return -1


# --------------------------------------------------------------------------- who is it


def _local_socket_inode(port: int, remote_port: int) -> int | None:
    """Inode of the loopback TCP socket bound to ``port`` and connected to ``remote_port``."""
    local = f"0100007F:{port:04X}"
    remote = f"0100007F:{remote_port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[1] == local and fields[2] == remote:
            return int(fields[9])
    return None


def socket_owner(port: int, remote_port: int, candidates: dict[str, int]) -> str | None:
    """Which of ``candidates`` (name -> pid) holds the loopback socket ``port`` ->
    ``remote_port``; None when none does (or it is gone)."""
    inode = _local_socket_inode(port, remote_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for name, pid in candidates.items():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return name
            except OSError:
                continue
    return None


# --------------------------------------------------------------------------- the proxy


@dataclass(eq=False)
class _Connection:
    link: Link
    source: str | None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class LinkProxy:
    """Every fault link of one cluster, in one trio task tree (run by the supervisor)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links = load_plan(root)
        self.rules = RuleSet()
        self.connections: set[_Connection] = set()

    def _candidates(self) -> dict[str, int]:
        """Name -> pid of every process the state file says runs (read raw: only these
        two fields matter here, and a half-understood file must not stop the proxy)."""
        try:
            raw = json.loads((Path(self.root) / "state.json").read_text())
            return {str(p["name"]): int(p["pid"]) for p in raw["processes"] if p.get("pid")}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _source(self, port: int, remote_port: int) -> str | None:
        return socket_owner(port, remote_port, self._candidates())

    def verdict(self, conn: _Connection) -> tuple[str, float]:
        return self.rules.verdict(conn.source, conn.link.target)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._apply(RuleSet.read(self.root))
        async with trio.open_nursery() as nursery:
            for link in self.links:
                listeners = await trio.open_tcp_listeners(link.listen, host=LOOPBACK)
                nursery.start_soon(self._serve, link, listeners)
            nursery.start_soon(self._watch_rules)
            log.info("fault links listening links=%d", len(self.links))
            task_status.started()

    async def _serve(self, link: Link, listeners: list[trio.SocketListener]) -> None:
        async def handle(stream: trio.SocketStream) -> None:
            await self._handle(stream, link)

        await trio.serve_listeners(handle, listeners)

    def _apply(self, rules: RuleSet) -> None:
        self.rules = rules
        for conn in list(self.connections):
            if self.verdict(conn)[0] == "refuse":
                conn.scope.cancel()
        _applied_file(self.root).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(_applied_file(self.root), json.dumps({"generation": rules.generation}))
        if rules.rules:
            log.info(
                "fault link rules generation=%d %s",
                rules.generation,
                " ".join(f"{r.action}:{r.process}" for r in rules.rules),
            )

    async def _watch_rules(self) -> None:
        path = _rules_file(self.root)
        seen: float | None = None
        while True:  # a file written by another process: poll its mtime
            try:
                mtime = (await trio.Path(path).stat()).st_mtime_ns
            except FileNotFoundError:
                mtime = None
            if mtime != seen:
                seen = mtime
                rules = await trio.to_thread.run_sync(RuleSet.read, self.root)
                if rules.generation != self.rules.generation or mtime is None:
                    self._apply(rules)
            await trio.sleep(POLL_PERIOD)

    async def _handle(self, downstream: trio.SocketStream, link: Link) -> None:
        peer_port = downstream.socket.getpeername()[1]
        source = await trio.to_thread.run_sync(self._source, peer_port, link.listen)
        conn = _Connection(link, source)
        async with downstream:
            if self.verdict(conn)[0] == "refuse":
                return
            self.connections.add(conn)
            try:
                with conn.scope:
                    try:
                        upstream = await trio.open_tcp_stream(LOOPBACK, link.connect)
                    except OSError:
                        return
                    async with upstream, trio.open_nursery() as nursery:
                        nursery.start_soon(self._pump, conn, downstream, upstream)
                        nursery.start_soon(self._pump, conn, upstream, downstream)
            finally:
                self.connections.discard(conn)

    async def _pump(
        self, conn: _Connection, source: trio.SocketStream, sink: trio.SocketStream
    ) -> None:
        """Copy ``source`` to ``sink`` under the rules; ends the connection when either ends."""
        send, receive = trio.open_memory_channel[tuple[float, bytes]](256)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._deliver, receive, sink)
                async with send:
                    while True:
                        try:
                            data = await source.receive_some(CHUNK)
                        except trio.BrokenResourceError:
                            break
                        if not data:
                            break
                        action, latency = self.verdict(conn)
                        if action == "blackhole":
                            continue
                        await send.send((trio.current_time() + latency, data))
        finally:
            conn.scope.cancel()

    @staticmethod
    async def _deliver(
        receive: trio.MemoryReceiveChannel[tuple[float, bytes]], sink: trio.SocketStream
    ) -> None:
        async with receive:
            async for due, data in receive:
                await trio.sleep_until(due)
                try:
                    await sink.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return


async def run_links(
    layout: Layout, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the cluster's fault links until cancelled (the supervisor runs this)."""
    await LinkProxy(layout.root).run(task_status=task_status)


def describe(root: Path | str) -> dict[str, Any]:
    """The plan and the rules in force, for status output and debugging."""
    rules = RuleSet.read(root)
    return {
        "links": [asdict(link) for link in load_plan(root)],
        "generation": rules.generation,
        "applied": applied_generation(root),
        "rules": [asdict(r) for r in rules.rules],
    }
