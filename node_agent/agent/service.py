"""The node agent's gRPC API (``raftsman.node.v1.NodeAgent``): logs, exec and usage of its pods.

Kubernetes' kubelet serves ``/containerLogs``, ``/exec`` and ``/stats`` over HTTPS and
the apiserver relays them to ``kubectl logs / exec / top``. Here the same three are gRPC
methods (:file:`proto/node/node_agent.proto`), relayed by the apiserver
(:mod:`actors.apiserver.proxy`). The service stands on three things and knows nothing
else: a :class:`~node_agent.runtime.base.ContainerRuntime` (exec, stats, wait), a
:class:`~node_agent.agent.lookup.ContainerLookup` (which container instance and log file
a pod's container name means, offered by the pod workers), and the CRI-format log files
(:mod:`node_agent.runtime.logs`).

Logs
    The current instance's log, or with ``previous`` the one before the last restart;
    ``tail_lines``, ``since_seconds`` / ``since_time`` (tail first, then since, as the
    kubelet does), ``timestamps`` (each line prefixed by its RFC 3339 nanosecond
    timestamp), ``limit_bytes`` (output cut at exactly that many bytes). ``follow`` keeps
    streaming across log rotation until that container instance exits, then ends -- a
    restart is a new instance and a new ``logs -f``, as in Kubernetes. Lines are batched
    into chunks of at most :data:`CHUNK_BYTES` whenever several are ready, so a large
    tail costs a few messages, not one per line.

Exec
    The first request names the container and command; later ones carry stdin, which ends
    when the caller closes its side. Output arrives as stdout/stderr chunks in order per
    stream; the last response carries the exit code. Only running containers: exec on a
    container that has not started or has exited is ``FAILED_PRECONDITION``, with the
    reason. No terminals (``tty``).

Stats
    cpu in millicores and memory in bytes per container, summed per pod and per node (the
    pods plus the agent itself). cpu is a rate: cumulative cpu seconds against the
    previous sample of the same container when that is between ``cpu_window`` and
    :data:`MAX_SAMPLE_AGE` seconds old, else over a fresh ``cpu_window`` (so the first
    call waits that long). Containers that are not running are left out.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import trio

from node_agent.agent.lookup import ContainerLookup, ContainerRef
from node_agent.runtime import logs, procfs
from node_agent.runtime.base import (
    ContainerId,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntime,
    ContainerRuntimeError,
    ContainerStats,
)
from proto import rpc
from proto.node import node_agent_pb2 as pb

__all__ = ["CHUNK_BYTES", "MAX_SAMPLE_AGE", "NodeAgentService", "UsageMeter"]

CHUNK_BYTES: Final = 64 * 1024
MAX_SAMPLE_AGE: Final = 60.0
_QUEUE: Final = 4096  # log records buffered between the file reader and the sender


def _pod_text(namespace: str, pod: str) -> str:
    return f'"{pod}"' if namespace == "default" else f'"{namespace}/{pod}"'


# ---------------------------------------------------------------------------------------
# cpu rates


@dataclass(frozen=True)
class _Sample:
    cpu_seconds: float
    timestamp: float
    memory_bytes: int


class UsageMeter:
    """cpu rates (millicores) and memory from cumulative samples, keyed by anything.

    See the module docstring for how the window is chosen. Not safe for concurrent
    ``measure`` calls on the same keys; the service serializes them.
    """

    def __init__(self, *, window: float = 1.0, max_age: float = MAX_SAMPLE_AGE) -> None:
        if window <= 0:
            raise ValueError(f"cpu window must be > 0 seconds, got {window}")
        self.window = window
        self.max_age = max_age
        self._last: dict[Hashable, _Sample] = {}

    async def measure(
        self, samplers: Mapping[Hashable, Callable[[], Awaitable[ContainerStats | None]]]
    ) -> tuple[dict[Hashable, tuple[int, int]], float]:
        """Usage ``(millicores, memory bytes)`` per key whose sampler answered, and the
        longest window used (0 when there was nothing to measure)."""
        now = {k: s for k, s in [(k, await f()) for k, f in samplers.items()] if s is not None}
        base: dict[Hashable, _Sample] = {}
        fresh = []
        for key, stats in now.items():
            previous = self._last.get(key)
            if previous is not None and (
                self.window <= stats.timestamp - previous.timestamp <= self.max_age
            ):
                base[key] = previous
            else:
                fresh.append(key)
        latest = {k: _Sample(s.cpu_seconds, s.timestamp, s.memory_bytes) for k, s in now.items()}
        if fresh:
            await trio.sleep(self.window)
            for key in fresh:
                base[key] = latest.pop(key)
                again = await samplers[key]()
                if again is not None:
                    latest[key] = _Sample(again.cpu_seconds, again.timestamp, again.memory_bytes)
        usage: dict[Hashable, tuple[int, int]] = {}
        longest = 0.0
        for key, sample in latest.items():
            start = base[key]
            elapsed = sample.timestamp - start.timestamp
            rate = (
                max(0.0, sample.cpu_seconds - start.cpu_seconds) / elapsed if elapsed > 0 else 0.0
            )
            usage[key] = (round(rate * 1000), sample.memory_bytes)
            longest = max(longest, elapsed)
        for key in set(self._last) - set(samplers):
            del self._last[key]  # containers that are gone
        self._last.update(latest)
        return usage, longest


async def _own_usage() -> ContainerStats | None:
    """The agent process itself, as if it were a container."""
    await trio.lowlevel.checkpoint()
    stat = procfs.read_stat(os.getpid())
    if stat is None:  # pragma: no cover - /proc is always there on Linux
        return None
    return ContainerStats(stat.cpu_seconds, stat.rss_bytes, 1, time.time())


# ---------------------------------------------------------------------------------------
# The service


class NodeAgentService:
    """The servicer; see the module docstring. ``node_name`` guards against a caller that
    means another node (a stale address); "" accepts every request."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        lookup: ContainerLookup,
        *,
        node_name: str = "",
        poll_interval: float = 0.1,
        cpu_window: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.lookup = lookup
        self.node_name = node_name
        self.poll_interval = poll_interval
        self.meter = UsageMeter(window=cpu_window)
        self._stats_lock = trio.Lock()

    def rpc_service(self) -> rpc.Service:
        return rpc.Service.of(self, pb, "NodeAgent")

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[rpc.Server] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve this API alone on ``host:port`` (0: a free port) until cancelled."""
        await rpc.serve([self.rpc_service()], host=host, port=port, task_status=task_status)

    # ------------------------------------------------------------------ resolving names

    def _check_node(self, node: str) -> None:
        if node and self.node_name and node != self.node_name:
            raise rpc.InvalidArgument(
                f"this node agent serves node {self.node_name}, not {node}: "
                "the node's daemonEndpoints are out of date"
            )

    def _container(self, namespace: str, pod: str, container: str) -> str:
        if not pod:
            raise rpc.InvalidArgument("the request names no pod")
        default = self.lookup.default_container(namespace, pod)
        if default is None:
            where = f" {self.node_name}" if self.node_name else ""
            raise rpc.NotFound(f"pod {_pod_text(namespace, pod)} is not on this node{where}")
        return container or default

    def _find(self, namespace: str, pod: str, container: str, *, previous: bool) -> ContainerRef:
        ref = self.lookup.find(namespace, pod, container, previous=previous)
        if ref is None:
            names = " ".join(name for name, _ in self.lookup.containers(namespace, pod))
            raise rpc.NotFound(
                f'container "{container}" is not valid for pod {_pod_text(namespace, pod)}; '
                f"choose one of: [{names}]"
            )
        return ref

    # ------------------------------------------------------------------ Logs

    async def Logs(self, request: pb.LogsRequest, ctx: rpc.ServerContext) -> None:
        self._check_node(request.node)
        tail, since, limit = _log_options(request)
        namespace = request.namespace or "default"
        container = self._container(namespace, request.pod, request.container)
        ref = self._find(namespace, request.pod, container, previous=request.previous)
        pod_text = _pod_text(namespace, request.pod)
        if ref.log_path is None:
            if request.previous:
                raise rpc.FailedPrecondition(
                    f'previous terminated container "{container}" in pod {pod_text} not found'
                )
            raise rpc.FailedPrecondition(
                f'container "{container}" in pod {pod_text} is waiting to start'
            )
        sender = _ChunkSender(ctx, limit=limit, timestamps=request.timestamps)
        follow = request.follow and not request.previous and ref.running
        if not follow:
            records = await trio.to_thread.run_sync(
                lambda: logs.tail(ref.log_path, tail, since=since)  # type: ignore[arg-type]
            )
            for record in records:
                if await sender.add(record):
                    break
            await sender.flush()
            return
        await self._follow(ref.log_path, ref.container_id, tail, since, sender)

    async def _follow(
        self,
        path: Path,
        container_id: ContainerId | None,
        tail: int | None,
        since: datetime | None,
        sender: _ChunkSender,
    ) -> None:
        exited = trio.Event()
        send, receive = trio.open_memory_channel[logs.LogRecord](_QUEUE)

        async def watch_exit() -> None:
            assert container_id is not None
            try:
                await self.runtime.wait(container_id)
            except ContainerNotFoundError:
                pass  # removed: it has certainly exited
            exited.set()

        async def read() -> None:
            records = logs.follow(
                path, tail_lines=tail, until=exited, poll_interval=self.poll_interval
            )
            async with send, aclosing(records):
                async for record in records:
                    if since is None or record.time >= since:
                        await send.send(record)

        async with trio.open_nursery() as nursery:
            if container_id is not None:
                nursery.start_soon(watch_exit)
            nursery.start_soon(read)
            try:
                await _relay(receive, sender)
            finally:
                nursery.cancel_scope.cancel()
        await sender.flush()

    # ------------------------------------------------------------------ Exec

    async def Exec(
        self, requests: rpc.RequestStream[pb.ExecRequest], ctx: rpc.ServerContext
    ) -> None:
        first = await requests.receive()
        if first is None or not first.HasField("start"):
            raise rpc.InvalidArgument(
                "the first Exec message must name the pod, container and command (start)"
            )
        start = first.start
        self._check_node(start.node)
        if start.tty:
            raise rpc.InvalidArgument("exec with a terminal (tty) is not supported")
        if not start.command:
            raise rpc.InvalidArgument("exec needs a command")
        namespace = start.namespace or "default"
        container = self._container(namespace, start.pod, start.container)
        ref = self._find(namespace, start.pod, container, previous=False)
        where = f'cannot exec in container "{container}" of pod {_pod_text(namespace, start.pod)}'
        not_running = f"{where}: it is not running"
        if not ref.running or ref.container_id is None:
            raise rpc.FailedPrecondition(not_running)
        lock = trio.Lock()

        async def send(response: pb.ExecResponse) -> None:
            async with lock:
                await ctx.send(response)

        async def stdout(chunk: bytes) -> None:
            await send(pb.ExecResponse(stdout=chunk))

        async def stderr(chunk: bytes) -> None:
            await send(pb.ExecResponse(stderr=chunk))

        async def stdin() -> AsyncIterator[bytes]:
            async for request in requests:
                if request.stdin:
                    yield request.stdin

        try:
            code = await self.runtime.exec(
                ref.container_id,
                list(start.command),
                stdin=stdin() if start.stdin else None,
                stdout=stdout,
                stderr=stderr,
            )
        except (ContainerNotRunningError, ContainerNotFoundError):
            raise rpc.FailedPrecondition(not_running) from None
        except ContainerRuntimeError as exc:
            raise rpc.FailedPrecondition(f"{where}: {exc}") from None
        await send(pb.ExecResponse(exit_code=code))

    # ------------------------------------------------------------------ Stats

    async def Stats(self, request: pb.StatsRequest, ctx: rpc.ServerContext) -> pb.StatsResponse:
        self._check_node(request.node)
        samplers: dict[Hashable, Callable[[], Awaitable[ContainerStats | None]]] = {}
        layout: list[tuple[str, str, list[tuple[str, ContainerId]]]] = []
        for namespace, pod in self.lookup.pods():
            if request.namespace and namespace != request.namespace:
                continue
            running = [
                (name, ref.container_id)
                for name, ref in self.lookup.containers(namespace, pod)
                if ref.running and ref.container_id is not None
            ]
            layout.append((namespace, pod, running))
            for _, container_id in running:
                samplers[container_id] = _sampler(self.runtime, container_id)
        samplers[_AGENT] = _own_usage
        async with self._stats_lock:
            usage, window = await self.meter.measure(samplers)
        response = pb.StatsResponse(node=self.node_name, window_seconds=window)
        for namespace, pod, running in layout:
            entry = response.pods.add(namespace=namespace, name=pod)
            for name, container_id in running:
                if container_id not in usage:
                    continue  # exited while we measured
                cpu, memory = usage[container_id]
                entry.containers.add(name=name, cpu_millicores=cpu, memory_bytes=memory)
                entry.cpu_millicores += cpu
                entry.memory_bytes += memory
            response.cpu_millicores += entry.cpu_millicores
            response.memory_bytes += entry.memory_bytes
        agent_cpu, agent_memory = usage.get(_AGENT, (0, 0))
        response.cpu_millicores += agent_cpu
        response.memory_bytes += agent_memory
        return response


_AGENT: Final = ("node-agent",)


def _sampler(
    runtime: ContainerRuntime, container_id: ContainerId
) -> Callable[[], Awaitable[ContainerStats | None]]:
    async def sample() -> ContainerStats | None:
        try:
            return await runtime.stats(container_id)
        except ContainerRuntimeError:
            return None

    return sample


# ---------------------------------------------------------------------------------------
# Logs helpers


async def _relay(receive: trio.MemoryReceiveChannel[logs.LogRecord], sender: _ChunkSender) -> None:
    """Send records as they come, batching those already waiting; stop at the byte limit."""
    async for record in receive:
        if await sender.add(record):
            return
        while True:
            try:
                more = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if await sender.add(more):
                return
        await sender.flush()


def _log_options(request: pb.LogsRequest) -> tuple[int | None, datetime | None, int | None]:
    """(tail lines, since, byte limit) of a request; InvalidArgument for bad values."""
    tail = None
    if request.HasField("tail_lines"):
        if request.tail_lines < 0:
            raise rpc.InvalidArgument(
                f"tail_lines must be >= 0 (leave it unset for every line), got {request.tail_lines}"
            )
        tail = request.tail_lines
    since = None
    if request.HasField("since_seconds"):
        if request.since_time:
            raise rpc.InvalidArgument("give since_seconds or since_time, not both")
        if request.since_seconds <= 0:
            raise rpc.InvalidArgument(f"since_seconds must be > 0, got {request.since_seconds}")
        since = datetime.now(UTC) - timedelta(seconds=request.since_seconds)
    elif request.since_time:
        try:
            since = datetime.fromisoformat(request.since_time.replace("Z", "+00:00"))
        except ValueError:
            raise rpc.InvalidArgument(
                f"since_time must be an RFC 3339 time such as 2024-05-01T12:00:00Z, "
                f"got {request.since_time!r}"
            ) from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    limit = None
    if request.HasField("limit_bytes"):
        if request.limit_bytes <= 0:
            raise rpc.InvalidArgument(f"limit_bytes must be > 0, got {request.limit_bytes}")
        limit = request.limit_bytes
    return tail, since, limit


class _ChunkSender:
    """Collects rendered lines into chunks of at most CHUNK_BYTES and honours limit_bytes."""

    def __init__(self, ctx: rpc.ServerContext, *, limit: int | None, timestamps: bool) -> None:
        self._ctx = ctx
        self._left = math.inf if limit is None else limit
        self._timestamps = timestamps
        self._buffer = bytearray()

    async def add(self, record: logs.LogRecord) -> bool:
        """Queue a line; True once the byte limit is reached (nothing more will be sent)."""
        line = record.render(timestamps=self._timestamps)
        if len(line) >= self._left:
            self._buffer += line[: int(self._left)]
            self._left = 0
            await self.flush()
            return True
        self._left -= len(line)
        self._buffer += line
        if len(self._buffer) >= CHUNK_BYTES:
            await self.flush()
        return False

    async def flush(self) -> None:
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            await self._ctx.send(pb.LogsChunk(data=data))
