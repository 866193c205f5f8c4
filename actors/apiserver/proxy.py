"""The API server's relay to node agents: ``PodLogs``, ``PodExec`` and ``Top``.

Users never talk to node agents: like Kubernetes' apiserver, which proxies
``kubectl logs`` and ``kubectl exec`` to the kubelet of the pod's node, this server
resolves the pod to its node, the node to its agent's address, and relays the stream
both ways. The agent's API is :file:`proto/node/node_agent.proto`
(:mod:`node_agent.agent.service`).

Resolution, each step with its own error:
    1. the pod (``NOT_FOUND``: ``pods "web-1" not found``);
    2. its ``spec.nodeName`` (``FAILED_PRECONDITION``: ``pod web-1 is not scheduled to a
       node yet``);
    3. the container: the request's, else the pod's default (the
       ``kubectl.kubernetes.io/default-container`` annotation, else the first container);
       one the pod does not have is ``INVALID_ARGUMENT`` listing the valid names, as
       kubectl does;
    4. the node's ``InternalIP`` address and ``status.daemonEndpoints.kubeletEndpoint.Port``;
       a node that publishes neither, or an agent that does not answer within
       ``connect_timeout``, is ``UNAVAILABLE`` naming the node and the address.

The agent's own errors (a container that is not running, no previous instance) pass
through unchanged. Every relayed request carries the node name, so an agent that now
serves another node on a reused port refuses instead of answering for the wrong pods.

``Top`` asks every selected node's agent for its ``Stats`` concurrently (at most
:data:`PARALLEL_NODES` at a time) and reports per node or per pod; a node that cannot be
reached has an ``error`` (nodes) or a warning (its pods), never a failed request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import trio

from actors.apiserver import quantity
from actors.apiserver.selectors import compile_filter
from actors.apiserver.storage import Storage
from actors.apiserver.watch_cache import WatchCache
from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from proto.k8s import kinds
from proto.node import node_agent_pb2 as node_pb
from proto.node import node_agent_pb2_grpc as node_grpc

__all__ = ["DEFAULT_CONTAINER_ANNOTATION", "PARALLEL_NODES", "NodeProxy"]

DEFAULT_CONTAINER_ANNOTATION: Final = "kubectl.kubernetes.io/default-container"
PARALLEL_NODES: Final = 16
_POD = kinds.by_kind("Pod")
_NODE = kinds.by_kind("Node")


class NodeProxy:
    """Relays pod logs, exec and usage to node agents; see the module docstring.

    ``caches`` (the server's watch caches, by kind) serve the listings of ``Top``; single
    pods and nodes are read from ``storage``.
    """

    def __init__(
        self,
        storage: Storage,
        caches: Mapping[str, WatchCache],
        *,
        connect_timeout: float = 3.0,
        stats_timeout: float = 10.0,
    ) -> None:
        self.storage = storage
        self.caches = caches
        self.connect_timeout = connect_timeout
        self.stats_timeout = stats_timeout

    # ------------------------------------------------------------------ resolving

    async def _pod(self, namespace: str, name: str) -> Any:
        if not name:
            raise rpc.InvalidArgument("the request names no pod")
        pod = await self.storage.require(_POD, namespace, name)
        if not pod.spec.node_name:
            raise rpc.FailedPrecondition(f"pod {name} is not scheduled to a node yet")
        return pod

    async def _address(self, node_name: str) -> str:
        node = await self.storage.get(_NODE, "", node_name)
        if node is None:
            raise rpc.Unavailable(f"node {node_name} does not exist")
        return node_address(node)

    @asynccontextmanager
    async def _agent(self, node_name: str, address: str) -> AsyncIterator[Any]:
        """A stub of the node agent at ``address``; UNAVAILABLE naming it if unreachable."""
        unreachable = f"cannot reach the node agent of node {node_name} at {address}"
        async with rpc.connect(address) as channel:
            try:
                await channel.wait_ready(timeout=self.connect_timeout)
            except rpc.Unavailable:
                raise rpc.Unavailable(unreachable) from None
            try:
                yield channel.stub(node_grpc.NodeAgentStub)
            except rpc.Unavailable:
                # Not the transport's words: "connection refused" would read, to a client,
                # as if the API server itself could not be reached.
                raise rpc.Unavailable(
                    f"lost the connection to the node agent of node {node_name} at {address}"
                ) from None

    # ------------------------------------------------------------------ PodLogs

    async def pod_logs(self, request: node_pb.LogsRequest, ctx: rpc.ServerContext) -> None:
        namespace = request.namespace or "default"
        pod = await self._pod(namespace, request.pod)
        container = pod_container(pod, request.container)
        if not request.previous:
            _check_started(pod, container)
        address = await self._address(pod.spec.node_name)
        forwarded = node_pb.LogsRequest()
        forwarded.CopyFrom(request)
        forwarded.namespace = namespace
        forwarded.container = container
        forwarded.node = pod.spec.node_name
        async with self._agent(pod.spec.node_name, address) as agent:
            async with agent.Logs(forwarded) as stream:
                async for chunk in stream:
                    await ctx.send(chunk)

    # ------------------------------------------------------------------ PodExec

    async def pod_exec(
        self, requests: rpc.RequestStream[node_pb.ExecRequest], ctx: rpc.ServerContext
    ) -> None:
        first = await requests.receive()
        if first is None or not first.HasField("start"):
            raise rpc.InvalidArgument(
                "the first PodExec message must name the pod, container and command (start)"
            )
        start = node_pb.ExecStart()
        start.CopyFrom(first.start)
        start.namespace = start.namespace or "default"
        pod = await self._pod(start.namespace, start.pod)
        start.container = pod_container(pod, start.container)
        start.node = pod.spec.node_name
        address = await self._address(pod.spec.node_name)
        async with self._agent(pod.spec.node_name, address) as agent:
            async with agent.Exec() as call:
                await call.send(node_pb.ExecRequest(start=start))
                error = await _relay_exec(requests, call, ctx, stdin=start.stdin)
                if error is not None:
                    raise error

    # ------------------------------------------------------------------ Top

    async def top(self, request: pb.TopRequest, ctx: rpc.ServerContext) -> pb.TopResponse:
        kind = request.kind.lower()
        if kind in ("node", "nodes", "no"):
            return await self._top_nodes(request)
        if kind in ("pod", "pods", "po"):
            return await self._top_pods(request)
        raise rpc.InvalidArgument(f'top shows "nodes" or "pods", not {request.kind!r}')

    async def _stats(self, node_name: str, namespace: str) -> node_pb.StatsResponse:
        address = await self._address(node_name)
        async with self._agent(node_name, address) as agent:
            response: node_pb.StatsResponse = await agent.Stats(
                node_pb.StatsRequest(namespace=namespace, node=node_name),
                timeout=self.stats_timeout,
            )
            return response

    async def _stats_of_nodes(
        self, names: list[str], namespace: str
    ) -> dict[str, node_pb.StatsResponse | rpc.RpcError]:
        results: dict[str, node_pb.StatsResponse | rpc.RpcError] = {}
        limiter = trio.CapacityLimiter(PARALLEL_NODES)

        async def one(name: str) -> None:
            async with limiter:
                try:
                    results[name] = await self._stats(name, namespace)
                except rpc.RpcError as exc:
                    results[name] = exc

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(one, name)
        return results

    async def _top_nodes(self, request: pb.TopRequest) -> pb.TopResponse:
        selected = compile_filter(_NODE.message.DESCRIPTOR, request.label_selector, "")
        nodes = [
            n
            for n in self.caches["Node"].objects()
            if selected.matches(n) and (not request.name or n.metadata.name == request.name)
        ]
        if request.name and not nodes:
            await self.storage.require(_NODE, "", request.name)  # NOT_FOUND as for Get
        results = await self._stats_of_nodes([n.metadata.name for n in nodes], "")
        response = pb.TopResponse()
        for node in nodes:
            name = node.metadata.name
            entry = response.nodes.add(name=name)
            entry.cpu_allocatable_millicores, entry.memory_allocatable_bytes = _allocatable(node)
            result = results[name]
            if isinstance(result, rpc.RpcError):
                entry.error = result.message
                response.warnings.append(f"no metrics for node {name}: {result.message}")
            else:
                entry.cpu_millicores = result.cpu_millicores
                entry.memory_bytes = result.memory_bytes
        return response

    async def _top_pods(self, request: pb.TopRequest) -> pb.TopResponse:
        selected = compile_filter(_POD.message.DESCRIPTOR, request.label_selector, "")
        namespace = request.namespace
        pods = [
            p
            for p in self.caches["Pod"].objects(namespace)
            if selected.matches(p) and (not request.name or p.metadata.name == request.name)
        ]
        if request.name and not pods:
            await self.storage.require(_POD, namespace or "default", request.name)
        by_node: dict[str, list[Any]] = {}
        for pod in pods:
            if pod.spec.node_name:
                by_node.setdefault(pod.spec.node_name, []).append(pod)
        results = await self._stats_of_nodes(sorted(by_node), namespace)
        response = pb.TopResponse()
        for node_name, on_node in sorted(by_node.items()):
            result = results[node_name]
            if isinstance(result, rpc.RpcError):
                response.warnings.append(
                    f"no metrics for {len(on_node)} pod(s) on node {node_name}: {result.message}"
                )
                continue
            usage = {(u.namespace, u.name): u for u in result.pods}
            for pod in on_node:
                found = usage.get((pod.metadata.namespace, pod.metadata.name))
                if found is None or not found.containers:
                    continue  # not running: no usage, as metrics-server leaves it out
                response.pods.add(
                    namespace=found.namespace,
                    name=found.name,
                    cpu_millicores=found.cpu_millicores,
                    memory_bytes=found.memory_bytes,
                    containers=found.containers,
                )
        response.pods.sort(key=lambda p: (p.namespace, p.name))
        if request.name and not response.pods:
            detail = f"; {response.warnings[0]}" if response.warnings else ""
            raise rpc.NotFound(f'metrics for pod "{request.name}" are not available{detail}')
        return response


# ---------------------------------------------------------------------------------------
# Helpers


def node_address(node: Any) -> str:
    """``host:port`` of a Node's agent: its InternalIP and daemonEndpoints port."""
    name = node.metadata.name
    ip = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    if not ip or not port:
        missing = " and ".join(
            field
            for field, value in (
                ("an InternalIP in status.addresses", ip),
                ("status.daemonEndpoints.kubeletEndpoint.Port", port),
            )
            if not value
        )
        raise rpc.Unavailable(
            f"node {name} does not publish its node agent's address: no {missing}"
        )
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def pod_container(pod: Any, name: str) -> str:
    """The container ``name`` of ``pod`` (its default when empty); INVALID_ARGUMENT if none."""
    names = [c.name for c in pod.spec.containers]
    init = [c.name for c in pod.spec.init_containers]
    if not name:
        default = pod.metadata.annotations.get(DEFAULT_CONTAINER_ANNOTATION, "")
        if default in names or default in init:
            return str(default)
        if names:
            return str(names[0])
        raise rpc.InvalidArgument(f'pod "{pod.metadata.name}" has no containers')
    if name in names or name in init:
        return name
    message = (
        f'container "{name}" is not valid for pod "{pod.metadata.name}"; '
        f"choose one of: [{' '.join(names)}]"
    )
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise rpc.InvalidArgument(message)


def _check_started(pod: Any, container: str) -> None:
    """A container that never ran has no logs: say why, with its waiting reason."""
    statuses = [*pod.status.init_container_statuses, *pod.status.container_statuses]
    status = next((s for s in statuses if s.name == container), None)
    if status is None:
        return  # the agent knows best
    never_ran = status.restart_count == 0 and not status.last_state.HasField("terminated")
    if status.state.HasField("waiting") and never_ran:
        reason = status.state.waiting.reason or "ContainerCreating"
        raise rpc.FailedPrecondition(
            f'container "{container}" in pod "{pod.metadata.name}" is waiting to start: {reason}'
        )


def _allocatable(node: Any) -> tuple[int, int]:
    allocatable = node.status.allocatable
    try:
        cpu = quantity.milli_value(allocatable["cpu"]) if "cpu" in allocatable else 0
        memory = quantity.value(allocatable["memory"]) if "memory" in allocatable else 0
    except quantity.QuantityError:
        return 0, 0
    return cpu, memory


async def _relay_exec(
    requests: rpc.RequestStream[node_pb.ExecRequest],
    call: rpc.BidiStream[node_pb.ExecRequest, node_pb.ExecResponse],
    ctx: rpc.ServerContext,
    *,
    stdin: bool,
) -> rpc.RpcError | None:
    """Copy stdin to the agent and its output back; the agent's error, if it sent one."""

    async def copy_stdin() -> None:
        try:
            async for request in requests:
                await call.send(request)
            await call.done_writing()
        except rpc.RpcError:
            pass  # the call has ended; its status arrives on the response side

    error = None
    async with trio.open_nursery() as nursery:
        if stdin:
            nursery.start_soon(copy_stdin)
        else:
            await call.done_writing()
        try:
            async for response in call:
                await ctx.send(response)
        except rpc.RpcError as exc:
            error = exc
        nursery.cancel_scope.cancel()
    return error
