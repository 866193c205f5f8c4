"""Container probes: liveness, readiness and startup checks, run as Kubernetes runs them.

The problem. A container can be running and still useless: deadlocked, still warming up,
or unable to serve. Kubernetes asks three questions of it, each answered by a *probe*
(``exec`` a command in it, ``httpGet`` one of its URLs, or open a ``tcpSocket``):
*startup* -- has it finished starting? (the other two wait for it); *liveness* -- should it
be restarted? *readiness* -- may it receive traffic (the pod's Ready condition, and so its
place in Endpoints)? This module answers the questions; the pod worker acts on the answers.

Two layers.
    :func:`probe_once` runs one check and returns a :class:`ProbeResult` and a message a
    user can act on (``HTTP probe failed with statuscode: 500``). A check that cannot be
    *made* -- a port name the container does not declare, a pod without an IP yet, a
    container that is not running -- is UNKNOWN: the kubelet throws such a result away
    instead of counting it against the container, and so does :class:`ProbeWorker`.

    :class:`ProbeWorker` runs one probe of one container instance on trio's clock and
    applies Kubernetes' thresholds: the first check after ``initialDelaySeconds``, then one
    every ``periodSeconds``; each check is cut off after ``timeoutSeconds`` (a timeout is a
    failure); the result it reports flips to SUCCESS after ``successThreshold``
    consecutive successes and to FAILURE after ``failureThreshold`` consecutive failures.
    ``on_change`` is called when the reported result flips, never otherwise.

Kubernetes' behaviour kept here (pkg/kubelet/prober):
    * Defaults for fields left at 0: period 10 s, timeout 1 s, success 1, failure 3,
      initial delay 0.
    * Initial results: readiness FAILURE (not ready until proven), liveness SUCCESS
      (alive until proven dead), startup FAILURE (not started until proven).
    * httpGet: ``host`` defaults to the pod IP, ``path`` to ``/``, ``scheme`` to HTTP
      (HTTPS skips certificate verification, as the kubelet does); the port is a number or
      the name of one of the container's ports; headers from ``httpHeaders`` replace the
      defaults ``User-Agent: kube-probe/...`` and ``Accept: */*`` (and may set ``Host``).
      A status from 200 to 399 is success. Redirects to the same host are followed (at
      most 10); a redirect to another host is not, and counts as success, as in Kubernetes.
    * exec: exit code 0 is success; the output (at most 10 KiB) is the message.
    * After a startup probe reaches either threshold, or a liveness probe fails, the worker
      stops: that container instance has its answer (it will be restarted, or the other
      probes take over). The pod worker starts new workers for a new instance.

Not here: gRPC probes, and ``terminationGracePeriodSeconds`` of a probe (the pod worker
applies it when it kills a container after a liveness failure).
"""

from __future__ import annotations

import enum
import math
import os
import shlex
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit

import trio

from node_agent.runtime.base import ContainerRuntimeError
from proto.k8s import core_pb2, meta_pb2

__all__ = [
    "ActionError",
    "ExecFn",
    "HttpResponse",
    "HttpTarget",
    "ProbeContext",
    "ProbeResult",
    "ProbeTiming",
    "ProbeWorker",
    "exec_action",
    "http_get",
    "http_target",
    "probe_once",
    "resolve_port",
    "tcp_connect",
]

MAX_OUTPUT: Final = 10 * 1024
"""Bytes of exec output kept for a probe's message (Kubernetes keeps 10 KiB)."""

MAX_REDIRECTS: Final = 10
USER_AGENT: Final = "kube-probe/raftsman"
_MAX_HEAD: Final = 64 * 1024

ExecFn = Callable[[Sequence[str], float], Awaitable[tuple[int, bytes]]]
"""Runs ``argv`` in the container: ``(argv, timeout) -> (exit code, combined output)``.

Cancellation must kill the command (``runtime.exec`` does). The caller also enforces the
timeout with a cancel scope; an implementation may raise :class:`TimeoutError` itself.
It raises :class:`~node_agent.runtime.base.ContainerRuntimeError` when the command
cannot run at all (container not running): the probe result is then UNKNOWN.
"""


class ProbeResult(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"
    """The check could not be made; workers ignore it (neither success nor failure)."""


@dataclass(frozen=True)
class ProbeContext:
    """What a probe needs to know about its container.

    ``ports`` maps the container's port names to numbers (``{"http": 8080}``) for
    ``port: http``. ``exec`` runs a command in the container.
    """

    pod_ip: str
    ports: Mapping[str, int]
    exec: ExecFn


class ActionError(Exception):
    """A probe or hook action cannot be made as specified (the message says why)."""


# ---------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class ProbeTiming:
    """A probe's timing fields with Kubernetes' defaults applied to zeros."""

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: core_pb2.Probe) -> ProbeTiming:
        return cls(
            initial_delay=float(max(0, probe.initial_delay_seconds)),
            period=float(probe.period_seconds) if probe.period_seconds > 0 else 10.0,
            timeout=float(probe.timeout_seconds) if probe.timeout_seconds > 0 else 1.0,
            success_threshold=probe.success_threshold if probe.success_threshold > 0 else 1,
            failure_threshold=probe.failure_threshold if probe.failure_threshold > 0 else 3,
        )


# ---------------------------------------------------------------------------------------
# Ports


def resolve_port(port: meta_pb2.IntOrString, ports: Mapping[str, int], *, field: str) -> int:
    """The port number ``port`` names: a number, or a container port's name.

    As Kubernetes, a string is looked up by name first, then read as a number.
    """
    kind = port.WhichOneof("value")
    if kind is None:
        raise ActionError(f"{field} is required")
    if kind == "int_val":
        number = port.int_val
    else:
        name = port.str_val
        if name in ports:
            number = ports[name]
        elif name.isdigit():
            number = int(name)
        else:
            known = ", ".join(sorted(ports)) or "none"
            raise ActionError(
                f"{field}: the container has no port named {name!r} (named ports: {known})"
            )
    if not 0 < number < 65536:
        raise ActionError(f"{field}: invalid port number {number} (must be 1-65535)")
    return number


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _os_error_text(exc: BaseException) -> str:
    """``connection refused`` from the OSError buried in trio's connect error."""
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if isinstance(current, socket.gaierror):
            return f"lookup failed: {current.strerror}"
        if isinstance(current, OSError) and current.errno:
            return os.strerror(current.errno).lower()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return str(exc)


# ---------------------------------------------------------------------------------------
# Actions


async def exec_action(
    action: core_pb2.ExecAction, ctx: ProbeContext, *, timeout: float
) -> tuple[ProbeResult, str]:
    """Run an exec action: SUCCESS on exit code 0, FAILURE otherwise or on timeout."""
    argv = list(action.command)
    if not argv:
        return ProbeResult.UNKNOWN, "exec.command is empty"
    text = shlex.join(argv)
    try:
        with trio.fail_after(timeout):
            code, output = await ctx.exec(argv, timeout)
    except (trio.TooSlowError, TimeoutError):
        return ProbeResult.FAILURE, f"command {text} timed out after {timeout:g}s"
    except ContainerRuntimeError as exc:
        return ProbeResult.UNKNOWN, f"cannot run command {text}: {exc}"
    message = output[:MAX_OUTPUT].decode(errors="replace").strip()
    if code == 0:
        return ProbeResult.SUCCESS, message
    detail = f": {message}" if message else ""
    return ProbeResult.FAILURE, f"command {text} exited with code {code}{detail}"


@dataclass(frozen=True)
class HttpTarget:
    """Where an httpGet action goes, resolved against its container."""

    scheme: str  # "http" or "https"
    host: str
    port: int
    path: str  # with the query, starting with "/"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{_host_port(self.host, self.port)}{self.path}"


def http_target(action: core_pb2.HTTPGetAction, ctx: ProbeContext, *, field: str) -> HttpTarget:
    """Resolve host (default: the pod IP), port (by name) and path of an httpGet action."""
    scheme = action.scheme.upper() or "HTTP"
    if scheme not in ("HTTP", "HTTPS"):
        raise ActionError(f"{field}.scheme must be HTTP or HTTPS, not {action.scheme!r}")
    host = action.host or ctx.pod_ip
    if not host:
        raise ActionError(f"{field}.host is empty and the pod has no IP address yet")
    port = resolve_port(action.port, ctx.ports, field=f"{field}.port")
    path = action.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = tuple((h.name, h.value) for h in action.http_headers)
    return HttpTarget(scheme.lower(), host, port, path, headers)


@dataclass(frozen=True)
class HttpResponse:
    """The final response of an httpGet: its status, and the URL that gave it."""

    status: int
    reason: str
    url: str
    redirected_away: bool = False  # a redirect to another host, not followed


class HttpError(Exception):
    """No HTTP response: connection refused, reset, a malformed answer, too many redirects."""


def _request_bytes(target: HttpTarget) -> bytes:
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if target.port == default_port else _host_port(target.host, target.port)
    headers: dict[str, tuple[str, str]] = {
        "host": ("Host", host),
        "user-agent": ("User-Agent", USER_AGENT),
        "accept": ("Accept", "*/*"),
    }
    for name, value in target.headers:
        headers[name.lower()] = (name, value)
    headers["connection"] = ("Connection", "close")
    lines = [f"GET {target.path} HTTP/1.1", *(f"{n}: {v}" for n, v in headers.values())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _insecure_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _request_once(target: HttpTarget) -> tuple[int, str, str | None]:
    """One GET: (status, reason, Location header or None)."""
    try:
        tcp = await trio.open_tcp_stream(target.host, target.port)
    except OSError as exc:
        raise HttpError(
            f"dial tcp {_host_port(target.host, target.port)}: connect: {_os_error_text(exc)}"
        ) from None
    stream: trio.abc.Stream = tcp
    try:
        if target.scheme == "https":
            tls = trio.SSLStream(tcp, _insecure_tls(), server_hostname=None)
            stream = tls
            await tls.do_handshake()
        await stream.send_all(_request_bytes(target))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            head += chunk
            if len(head) > _MAX_HEAD:
                raise HttpError("the response headers are larger than 64 KiB")
    except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
        raise HttpError(_os_error_text(exc) or type(exc).__name__) from None
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
    status_line, _, rest = head.partition(b"\r\n")
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        shown = status_line[:80].decode("latin-1") or "nothing"
        raise HttpError(f"malformed HTTP response: got {shown!r}")
    location = None
    for line in rest.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"location":
            location = value.strip().decode("latin-1")
    return int(parts[1]), parts[2] if len(parts) > 2 else "", location


async def http_get(target: HttpTarget) -> HttpResponse:
    """GET ``target``, following redirects to the same host (at most :data:`MAX_REDIRECTS`).

    Raises :class:`HttpError` when no response arrives; the caller owns the timeout.
    """
    current = target
    for _ in range(MAX_REDIRECTS + 1):
        status, reason, location = await _request_once(current)
        if status not in (301, 302, 303, 307, 308) or not location:
            return HttpResponse(status, reason, current.url)
        parts = urlsplit(urljoin(current.url, location))
        if parts.scheme not in ("http", "https") or parts.hostname != target.host:
            return HttpResponse(status, reason, current.url, redirected_away=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        current = HttpTarget(parts.scheme, target.host, port, path, target.headers)
    raise HttpError(f"stopped after {MAX_REDIRECTS} redirects")


async def tcp_connect(host: str, port: int) -> None:
    """Open a TCP connection and close it at once; OSError when it cannot be opened."""
    stream = await trio.open_tcp_stream(host, port)
    await trio.aclose_forcefully(stream)


# ---------------------------------------------------------------------------------------
# One check


async def probe_once(probe: core_pb2.Probe, ctx: ProbeContext) -> tuple[ProbeResult, str]:
    """Run ``probe``'s handler once, within its ``timeoutSeconds``: (result, message)."""
    timeout = ProbeTiming.of(probe).timeout
    try:
        if probe.HasField("exec"):
            return await exec_action(probe.exec, ctx, timeout=timeout)
        if probe.HasField("http_get"):
            return await _http_probe(probe.http_get, ctx, timeout)
        if probe.HasField("tcp_socket"):
            return await _tcp_probe(probe.tcp_socket, ctx, timeout)
    except ActionError as exc:
        return ProbeResult.UNKNOWN, str(exc)
    return ProbeResult.UNKNOWN, "the probe has no handler: set exec, httpGet or tcpSocket"


async def _http_probe(
    action: core_pb2.HTTPGetAction, ctx: ProbeContext, timeout: float
) -> tuple[ProbeResult, str]:
    target = http_target(action, ctx, field="httpGet")
    try:
        with trio.fail_after(timeout):
            response = await http_get(target)
    except trio.TooSlowError:
        return ProbeResult.FAILURE, f'Get "{target.url}": no response within {timeout:g}s'
    except HttpError as exc:
        return ProbeResult.FAILURE, f'Get "{target.url}": {exc}'
    if response.redirected_away:
        return ProbeResult.SUCCESS, f"probe terminated redirects (status {response.status})"
    if 200 <= response.status < 400:
        return ProbeResult.SUCCESS, f"HTTP probe succeeded with statuscode: {response.status}"
    return ProbeResult.FAILURE, f"HTTP probe failed with statuscode: {response.status}"


async def _tcp_probe(
    action: core_pb2.TCPSocketAction, ctx: ProbeContext, timeout: float
) -> tuple[ProbeResult, str]:
    host = action.host or ctx.pod_ip
    if not host:
        raise ActionError("tcpSocket.host is empty and the pod has no IP address yet")
    port = resolve_port(action.port, ctx.ports, field="tcpSocket.port")
    address = _host_port(host, port)
    try:
        with trio.fail_after(timeout):
            await tcp_connect(host, port)
    except trio.TooSlowError:
        return ProbeResult.FAILURE, f"dial tcp {address}: i/o timeout after {timeout:g}s"
    except OSError as exc:
        return ProbeResult.FAILURE, f"dial tcp {address}: connect: {_os_error_text(exc)}"
    return ProbeResult.SUCCESS, f"connected to {address}"


# ---------------------------------------------------------------------------------------
# The worker

KINDS: Final = ("liveness", "readiness", "startup")
_INITIAL: Final = {
    "liveness": ProbeResult.SUCCESS,
    "readiness": ProbeResult.FAILURE,
    "startup": ProbeResult.FAILURE,
}


class ProbeWorker:
    """Probes one container instance periodically and reports thresholded results.

    ``result`` is the current thresholded answer (initially FAILURE for readiness and
    startup, SUCCESS for liveness) and ``message`` the message of the last check.
    ``on_change(result, message)`` is called, synchronously from :meth:`run`, each time
    ``result`` flips -- and, for a startup probe, once when it reaches either threshold
    (a startup probe that fails stays FAILURE, yet its container must be restarted).
    ``on_probe``, when given, is called after every check with its raw result (for
    events such as ``Unhealthy``); UNKNOWN results are passed to it too but never
    counted.

    :meth:`run` returns after a startup probe reached a threshold or a liveness probe
    failed (see the module docstring); otherwise it runs until cancelled. Calling it
    again starts over from the initial result.
    """

    def __init__(
        self,
        probe: core_pb2.Probe,
        kind: str,
        ctx: ProbeContext,
        on_change: Callable[[ProbeResult, str], None],
        *,
        on_probe: Callable[[ProbeResult, str], None] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"probe kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.probe = probe
        self.kind = kind
        self.ctx = ctx
        self.timing = ProbeTiming.of(probe)
        self.result = _INITIAL[kind]
        self.message = ""
        self._on_change = on_change
        self._on_probe = on_probe
        self._last: ProbeResult | None = None
        self._run_length = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.result = _INITIAL[self.kind]
        self._last = None
        self._run_length = 0
        task_status.started()
        next_check = trio.current_time() + self.timing.initial_delay
        while True:
            await trio.sleep_until(next_check)
            result, message = await probe_once(self.probe, self.ctx)
            if self._observe(result, message):
                return
            # A fixed cadence, as a ticker: a slow check does not shift later ones, and
            # checks missed while one overran are skipped rather than run back to back.
            next_check += self.timing.period
            now = trio.current_time()
            if next_check < now:
                next_check += (
                    math.ceil((now - next_check) / self.timing.period) * self.timing.period
                )

    def _observe(self, result: ProbeResult, message: str) -> bool:
        """Count one check; True when this worker is done."""
        self.message = message
        if self._on_probe is not None:
            self._on_probe(result, message)
        if result is ProbeResult.UNKNOWN:
            return False
        if result is self._last:
            self._run_length += 1
        else:
            self._last = result
            self._run_length = 1
        threshold = (
            self.timing.success_threshold
            if result is ProbeResult.SUCCESS
            else self.timing.failure_threshold
        )
        if self._run_length < threshold:
            return False
        changed = result is not self.result
        self.result = result
        if self.kind == "startup":
            self._on_change(result, message)
            return True
        if changed:
            self._on_change(result, message)
        return self.kind == "liveness" and result is ProbeResult.FAILURE
