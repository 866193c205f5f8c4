"""The service proxy: listeners that follow Services and Endpoints, and the connections.

:class:`ServiceProxy` is level-triggered. :meth:`ServiceProxy.update` takes the *full*
current set of Services and Endpoints (the node agent passes its informers' caches after
every change) and converges at once, before it returns: listeners that are no longer
wanted, or whose Service port lost its last ready endpoint, are closed; missing ones are
opened; balancers get the new ready endpoints. Calling it twice with the same input does
nothing the second time. There are no incremental upsert/delete methods: a full set
cannot drift, and a proxy handles at most a few thousand Service ports.

Before :meth:`ServiceProxy.run` has started, :meth:`update` only records the wanted
state; ``run`` applies it, then calls ``task_status.started()`` -- at that point every
listener that can be opened is open. ``run`` also retries failed listeners every
``retry_interval`` seconds (a port another program held may have been freed), and
stopping it (cancelling its scope) closes every listener and cuts every connection.

Status and counters
    :meth:`ServiceProxy.port_status` lists every frontend with a :class:`PortState`
    and a message a user can act on, for the agent to surface (e.g. as Events).
    :meth:`ServiceProxy.counters` gives per-Service-port :class:`ServiceCounters`.
    A failure to listen is logged once as a warning when it first happens (and again if
    its reason changes), and once at info level when the port recovers.

Only trio code of one run may call the proxy; it is not thread-safe.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

import trio

from node_agent.proxy.balancer import DEFAULT_AFFINITY_TIMEOUT, Balancer
from node_agent.proxy.listener import (
    BindFunction,
    ListenError,
    ListenFailure,
    default_bind,
    open_listener,
)
from node_agent.proxy.relay import DEFAULT_CHUNK_SIZE, relay
from node_agent.proxy.table import Backend, Frontend, PortPlan, ServicePortName, build_plan
from proto.k8s import core_pb2

__all__ = ["PortState", "PortStatus", "ServiceCounters", "ServiceProxy"]

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY_INTERVAL = 10.0
# accept() failures that mean "out of resources now": wait a little and go on (as
# trio.serve_listeners does) instead of spinning or giving up the port.
_ACCEPT_BACKOFF = 0.1
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


class PortState(enum.Enum):
    LISTENING = "Listening"
    """Accepting connections and forwarding them."""
    NO_ENDPOINTS = "NoEndpoints"
    """Not listening on purpose: no ready endpoints, so connections are refused."""
    FAILED = "Failed"
    """Wanted but could not listen (see the message); retried periodically."""
    SKIPPED = "Skipped"
    """Not proxied (e.g. UDP, an invalid clusterIP)."""


@dataclass(frozen=True)
class PortStatus:
    name: ServicePortName
    frontend: Frontend
    state: PortState
    message: str = ""
    failure: ListenFailure | None = None


@dataclass
class ServiceCounters:
    """Counters of one Service port, as plain attributes (totals since the proxy began)."""

    connections_total: int = 0
    """Connections accepted."""
    connections_active: int = 0
    """Connections open now."""
    connections_failed_total: int = 0
    """Accepted connections dropped because no endpoint answered."""
    endpoint_errors_total: int = 0
    """Connection attempts to an endpoint that failed (refused, timed out)."""
    relay_errors_total: int = 0
    """Connections that ended with a transport error (e.g. reset) instead of EOF."""
    bytes_to_endpoints_total: int = 0
    bytes_to_clients_total: int = 0


@dataclass
class _Listener:
    name: ServicePortName
    frontend: Frontend
    listener: trio.SocketListener
    scope: trio.CancelScope


class ServiceProxy:
    """A userspace TCP proxy for Services, on this node's loopback addresses.

    ``node_address`` is where NodePorts listen (e.g. 127.0.0.1 or the node's InternalIP).
    ``connect_timeout`` bounds each attempt to reach an endpoint; ``affinity_timeout`` is
    the ClientIP affinity timeout (Kubernetes' default, 10800 s); ``chunk_size`` bounds
    the bytes in flight per direction of a connection; ``bind`` is a seam for tests.
    """

    def __init__(
        self,
        *,
        node_address: str = "127.0.0.1",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        affinity_timeout: float = DEFAULT_AFFINITY_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        bind: BindFunction = default_bind,
    ) -> None:
        try:
            ipaddress.IPv4Address(node_address)
        except ValueError:
            raise ValueError(
                f"node_address must be an IPv4 address, not {node_address!r}"
            ) from None
        for field, value in (
            ("connect_timeout", connect_timeout),
            ("affinity_timeout", affinity_timeout),
            ("retry_interval", retry_interval),
        ):
            if not value > 0:
                raise ValueError(f"{field} must be positive, not {value!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size!r}")
        self.node_address = node_address
        self._connect_timeout = connect_timeout
        self._affinity_timeout = affinity_timeout
        self._retry_interval = retry_interval
        self._chunk_size = chunk_size
        self._bind = bind
        self._plans: list[PortPlan] = []
        self._balancers: dict[ServicePortName, Balancer] = {}
        self._listeners: dict[tuple[str, int], _Listener] = {}
        self._status: list[PortStatus] = []
        self._counters: dict[ServicePortName, ServiceCounters] = {}
        self._logged_failures: dict[tuple[str, int], str] = {}
        self._logged_skips: dict[ServicePortName, str] = {}
        self._nursery: trio.Nursery | None = None
        self._running = False

    # ------------------------------------------------------------------ public API

    def update(
        self, services: Iterable[core_pb2.Service], endpoints: Iterable[core_pb2.Endpoints]
    ) -> None:
        """Converge on the full current set of ``services`` and ``endpoints``.

        Returns once listeners are opened and closed accordingly (if running). Existing
        connections are never cut, even when their endpoint or Service disappears.
        """
        self._plans = build_plan(services, endpoints, node_address=self.node_address)
        self._sync_balancers()
        if self._nursery is not None:
            self._reconcile()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``started()`` once the current wanted state is applied."""
        if self._running:
            raise RuntimeError("this ServiceProxy is already running")
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    self._reconcile()
                    task_status.started()
                    while True:
                        await trio.sleep(self._retry_interval)
                        self._reconcile()
                finally:
                    self._nursery = None
                    for address in list(self._listeners):
                        self._close(address)
                    self._status = []
        finally:
            self._running = False

    def port_status(self) -> list[PortStatus]:
        """Every frontend of every Service port and its state (empty before ``run``)."""
        return list(self._status)

    def counters(self) -> dict[ServicePortName, ServiceCounters]:
        """A snapshot of the counters of every current Service port."""
        return {name: replace(c) for name, c in self._counters.items()}

    # ------------------------------------------------------------------ convergence

    def _sync_balancers(self) -> None:
        wanted = {p.name: p for p in self._plans if p.skipped is None}
        self._balancers = {n: b for n, b in self._balancers.items() if n in wanted}
        for name, plan in wanted.items():
            balancer = self._balancers.get(name)
            if balancer is None:
                self._balancers[name] = Balancer(
                    plan.backends,
                    client_ip_affinity=plan.client_ip_affinity,
                    affinity_timeout=self._affinity_timeout,
                )
            else:
                balancer.configure(
                    client_ip_affinity=plan.client_ip_affinity,
                    affinity_timeout=self._affinity_timeout,
                )
                balancer.set_backends(plan.backends)
        names = {p.name for p in self._plans}
        self._counters = {
            n: c for n, c in self._counters.items() if n in names or c.connections_active
        }
        for name in names:
            self._counters.setdefault(name, ServiceCounters())

    def _reconcile(self) -> None:
        status: list[PortStatus] = []
        wanted: dict[tuple[str, int], tuple[PortPlan, Frontend]] = {}
        for plan in self._plans:
            if plan.skipped is not None:
                self._log_skip(plan)
                status += [
                    PortStatus(plan.name, f, PortState.SKIPPED, plan.skipped)
                    for f in plan.frontends
                ]
                continue
            for frontend in plan.frontends:
                address = (frontend.address, frontend.port)
                other = wanted.get(address)
                if other is not None:
                    message = f"{frontend} is already used by {other[0].name}"
                    status.append(PortStatus(plan.name, frontend, PortState.FAILED, message))
                    continue
                wanted[address] = (plan, frontend)
        self._logged_skips = {p.name: p.skipped for p in self._plans if p.skipped is not None}

        for address, current in list(self._listeners.items()):
            want = wanted.get(address)
            if want is None or not want[0].backends:
                self._close(address)
            else:
                current.name, current.frontend = want[0].name, want[1]
        for address, (plan, frontend) in wanted.items():
            status.append(self._ensure_listener(address, plan, frontend))
        self._logged_failures = {a: m for a, m in self._logged_failures.items() if a in wanted}
        status.sort(key=lambda s: (s.name, s.frontend))
        self._status = status

    def _ensure_listener(
        self, address: tuple[str, int], plan: PortPlan, frontend: Frontend
    ) -> PortStatus:
        if not plan.backends:
            self._logged_failures.pop(address, None)
            return PortStatus(
                plan.name,
                frontend,
                PortState.NO_ENDPOINTS,
                "no ready endpoints: not listening, so connections are refused",
            )
        if address in self._listeners:
            return PortStatus(plan.name, frontend, PortState.LISTENING)
        assert self._nursery is not None
        try:
            listener = open_listener(frontend.address, frontend.port, bind=self._bind)
        except ListenError as exc:
            message = (
                f"service {plan.name.service} port {plan.name.port or '(unnamed)'} "
                f"({frontend.kind.value} {frontend}/TCP) is not served: {exc}. Other "
                "ports are not affected"
            )
            if self._logged_failures.get(address) != message:
                logger.warning("%s", message)
                self._logged_failures[address] = message
            return PortStatus(plan.name, frontend, PortState.FAILED, message, exc.failure)
        if self._logged_failures.pop(address, None) is not None:
            logger.info("service %s: now listening on %s", plan.name, frontend)
        entry = _Listener(plan.name, frontend, listener, trio.CancelScope())
        self._listeners[address] = entry
        self._nursery.start_soon(self._accept_loop, entry)
        return PortStatus(plan.name, frontend, PortState.LISTENING)

    def _close(self, address: tuple[str, int]) -> None:
        entry = self._listeners.pop(address)
        entry.scope.cancel()
        # Close now, not when the accept task gets to run: from here on the port refuses.
        entry.listener.socket.close()

    def _log_skip(self, plan: PortPlan) -> None:
        if self._logged_skips.get(plan.name) != plan.skipped:
            logger.warning("service %s is not proxied: %s", plan.name, plan.skipped)

    # ------------------------------------------------------------------ connections

    async def _accept_loop(self, entry: _Listener) -> None:
        with entry.scope:
            while True:
                try:
                    stream = await entry.listener.accept()
                except trio.ClosedResourceError:
                    return
                except OSError as exc:
                    level = logging.DEBUG if exc.errno in _RESOURCE_ERRNOS else logging.WARNING
                    logger.log(level, "accept on %s failed: %s", entry.frontend, exc)
                    await trio.sleep(_ACCEPT_BACKOFF)
                    continue
                assert self._nursery is not None
                self._nursery.start_soon(self._serve, entry.name, stream)

    async def _serve(self, name: ServicePortName, client: trio.SocketStream) -> None:
        counters = self._counters.setdefault(name, ServiceCounters())
        counters.connections_total += 1
        counters.connections_active += 1
        try:
            async with client:
                backend = await self._connect(name, client, counters)
                if backend is None:
                    counters.connections_failed_total += 1
                    _reset_on_close(client)
                    return
                async with backend:
                    result = await relay(client, backend, chunk_size=self._chunk_size)
                counters.bytes_to_endpoints_total += result.to_backend
                counters.bytes_to_clients_total += result.to_client
                if result.error is not None:
                    counters.relay_errors_total += 1
                    logger.debug("service %s: connection ended: %s", name, result.error)
        finally:
            counters.connections_active -= 1

    async def _connect(
        self, name: ServicePortName, client: trio.SocketStream, counters: ServiceCounters
    ) -> trio.SocketStream | None:
        try:
            client_ip = str(client.socket.getpeername()[0])
        except OSError:
            return None  # the client is already gone
        balancer = self._balancers.get(name)
        candidates = balancer.pick(client_ip, now=trio.current_time()) if balancer else []
        failures: list[str] = []
        for backend in candidates:
            try:
                with trio.fail_after(self._connect_timeout):
                    stream = await _open_stream(backend)
            except (OSError, trio.TooSlowError) as exc:
                counters.endpoint_errors_total += 1
                failures.append(f"{backend}: {exc or type(exc).__name__}")
                continue
            assert balancer is not None
            balancer.connected(client_ip, backend, now=trio.current_time())
            return stream
        logger.warning(
            "service %s: no endpoint accepted a connection from %s (%s)",
            name,
            client_ip,
            "; ".join(failures) or "no ready endpoints",
        )
        return None


async def _open_stream(backend: Backend) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        await sock.connect((backend.ip, backend.port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


def _reset_on_close(stream: trio.SocketStream) -> None:
    """Make the coming close send RST, so the client sees a reset rather than a clean,
    empty reply when no endpoint could be reached."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
