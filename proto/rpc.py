"""gRPC for trio: the one module that joins trio to grpcio's asyncio API.

Raftsman's services and clients are written in trio. grpcio's mature async API
(``grpc.aio``) is built on asyncio, so it runs here inside the trio loop through
trio-asyncio: an asyncio event loop whose callbacks are trio tasks. This module owns that
bridge. Code anywhere else is plain trio and never imports asyncio or trio_asyncio.

Options we rejected: grpcio's threaded server (a thread per call, handlers that cannot
take part in trio's cancellation), and a pure-Python HTTP/2 gRPC implementation (slower
and far less proven than grpcio's core).

Servers
    A servicer is any object with one ``async`` trio method per RPC, named as in the
    ``.proto``. Every method takes ``(request_or_requests, ctx)``:

    * unary request: the request message; streamed requests: a :class:`RequestStream`
      (async-iterate it, or ``await receive()``);
    * unary response: return the response message; streamed responses: ``await
      ctx.send(message)`` as often as needed and return ``None``.

    Raise an :class:`RpcError` subclass (``NotFound("pod web-1 not found")``) to answer
    with that status code and message; any other exception is logged with its traceback
    and answered as ``INTERNAL``. When the client goes away or its deadline passes, the
    handler's trio task is cancelled.

Clients
    ``async with connect("127.0.0.1:2379") as channel`` gives a :class:`Channel`;
    ``channel.stub(KVStub)`` wraps a generated stub so that unary methods are awaited
    (``await kv.Range(request, timeout=2)``) and streaming ones are async context
    managers that own the call (``async with kv.Watch() as stream``). Leaving the
    ``async with``, or a trio cancel scope around an await, cancels the RPC. Failures
    arrive as the :class:`RpcError` subclass of their status code.

Guarantees
    * A trio cancel scope around a call cancels the RPC on the wire.
    * A client disconnect or an expired deadline cancels the handler's trio work.
    * ``timeout=`` becomes the gRPC deadline, visible to the server as
      ``ctx.time_remaining()``.
    * Servers report their bound port through ``task_status.started()`` only once they
      are listening; port 0 picks a free port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import grpc
import grpc.aio
import trio
import trio_asyncio
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf import message_factory
from grpc_health.v1 import health as _health
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=_message.Message)
Resp = TypeVar("Resp", bound=_message.Message)
T = TypeVar("T")

# Generous message limits: etcd accepts 1.5 MiB requests and sends up to 2 GiB; the
# servers enforce their own request limits with a clear error instead of a transport one.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)
_SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


# --------------------------------------------------------------------------- errors


class RpcError(Exception):
    """An error that crosses gRPC: a status code and a message a user can act on.

    Servers raise a subclass to choose the status code; clients receive the subclass
    that matches the status code of a failed call.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Cancelled(RpcError):
    code = grpc.StatusCode.CANCELLED


class InvalidArgument(RpcError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(RpcError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(RpcError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RpcError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(RpcError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(RpcError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(RpcError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(RpcError):
    """Also used for optimistic-concurrency conflicts (a stale resourceVersion)."""

    code = grpc.StatusCode.ABORTED


class OutOfRange(RpcError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(RpcError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(RpcError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(RpcError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(RpcError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(RpcError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Unknown(RpcError):
    code = grpc.StatusCode.UNKNOWN


ERRORS: Mapping[grpc.StatusCode, type[RpcError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def error_for(code: grpc.StatusCode, message: str) -> RpcError:
    """The typed error for a status code (``Unknown`` for codes without a subclass)."""
    return ERRORS.get(code, Unknown)(message)


def error_named(code: str, message: str) -> RpcError:
    """The typed error for a status code given by name (``"NOT_FOUND"``)."""
    try:
        status = grpc.StatusCode[code]
    except KeyError:
        raise ValueError(f"unknown gRPC status code name {code!r}") from None
    return error_for(status, message)


def _from_aio(exc: grpc.aio.AioRpcError) -> RpcError:
    return error_for(exc.code(), exc.details() or exc.code().name.lower())


# --------------------------------------------------------------------------- the loop


# grpc.aio registers one reader on a process-wide completion-queue fd with every asyncio
# loop it meets, and two trio-asyncio loops in one trio run would both wait on that fd.
# So each trio run has at most one loop, found here by any task of the run, also tasks
# whose context was copied before the loop opened (pytest-trio fixtures, system tasks).
_RUN_LOOPS: dict[trio.lowlevel.TrioToken, Any] = {}


def _loop() -> Any:
    loop = trio_asyncio.current_loop.get()
    if loop is None:
        loop = _RUN_LOOPS.get(trio.lowlevel.current_trio_token())
    if loop is None:
        raise RuntimeError("gRPC used outside proto.rpc.open_loop(); use rpc.run() as main")
    return loop


@asynccontextmanager
async def open_loop() -> AsyncIterator[None]:
    """Make sure an asyncio loop runs inside the current trio run.

    Re-entrant: when the run already has a loop (a caller or a fixture opened one) this
    does nothing. :func:`serve` and :func:`connect` call it themselves; a program opens it
    once at the top (:func:`run`) so that every server and client shares it.
    """
    token = trio.lowlevel.current_trio_token()
    if trio_asyncio.current_loop.get() is not None or token in _RUN_LOOPS:
        yield
        return
    async with trio_asyncio.open_loop() as loop:
        _RUN_LOOPS[token] = loop
        try:
            yield
        finally:
            del _RUN_LOOPS[token]


async def _in_aio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run an asyncio coroutine function from trio; a trio cancel cancels it."""
    result: T = await trio_asyncio.aio_as_trio(fn, loop=_loop())(*args)
    return result


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsConfig:
    """PEM-encoded TLS material.

    On a server, ``cert``/``key`` are its own; with ``ca`` set, clients must present a
    certificate signed by it. On a client, ``ca`` verifies the server and ``cert``/``key``
    (optional) authenticate the client.
    """

    cert: bytes | None = None
    key: bytes | None = None
    ca: bytes | None = None

    @classmethod
    def from_files(
        cls,
        *,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ca: str | Path | None = None,
    ) -> TlsConfig:
        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(cert=read(cert), key=read(key), ca=read(ca))

    def server_credentials(self) -> grpc.ServerCredentials:
        if self.cert is None or self.key is None:
            raise ValueError("a TLS server needs both cert and key")
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.ca,
            require_client_auth=self.ca is not None,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a TLS client certificate needs both cert and key")
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


# --------------------------------------------------------------------------- servers


class ServerContext:
    """What a trio handler knows about its call, and how it streams responses."""

    def __init__(self, aio_context: grpc.aio.ServicerContext, method: str) -> None:
        self._aio = aio_context
        self.method = method

    def peer(self) -> str:
        return str(self._aio.peer())

    def metadata(self) -> dict[str, str]:
        return {k: v for k, v in (self._aio.invocation_metadata() or ()) if isinstance(v, str)}

    def time_remaining(self) -> float | None:
        """Seconds until the client's deadline, or None without one."""
        remaining = self._aio.time_remaining()
        return None if remaining is None else float(remaining)

    async def send(self, message: _message.Message) -> None:
        """Send one response of a streaming RPC. Waits while the transport is full."""
        await _in_aio(self._aio.write, message)


class RequestStream(Generic[Req]):
    """The requests of a client-streaming or bidirectional call, in trio."""

    def __init__(self, aio_context: grpc.aio.ServicerContext) -> None:
        self._aio = aio_context
        self._done = False

    async def receive(self) -> Req | None:
        """The next request, or None once the client has finished sending."""
        if self._done:
            return None
        message = await _in_aio(self._aio.read)
        if message is grpc.aio.EOF:
            self._done = True
            return None
        return message

    def __aiter__(self) -> RequestStream[Req]:
        return self

    async def __anext__(self) -> Req:
        message = await self.receive()
        if message is None:
            raise StopAsyncIteration
        return message


@dataclass(frozen=True)
class Service:
    """A servicer bound to the service it implements."""

    descriptor: _descriptor.ServiceDescriptor
    servicer: object

    @classmethod
    def of(cls, servicer: object, file_module: Any, name: str) -> Service:
        """``Service.of(MyKV(), rpc_pb2, "KV")``: the service ``name`` of a generated module."""
        return cls(descriptor=file_module.DESCRIPTOR.services_by_name[name], servicer=servicer)


_Outcome = tuple[bool, Any]  # (True, value) or (False, RpcError)


async def _run_handler(fn: Callable[..., Awaitable[Any]], arg: Any, ctx: ServerContext) -> _Outcome:
    try:
        return True, await fn(arg, ctx)
    except RpcError as exc:
        return False, exc
    except Exception as exc:
        log.exception("rpc handler failed method=%s", ctx.method)
        return False, Internal(f"internal error in {ctx.method}: {type(exc).__name__}: {exc}")


def _method_handler(
    method: _descriptor.MethodDescriptor, fn: Callable[..., Awaitable[Any]]
) -> grpc.RpcMethodHandler:
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    name = f"/{method.containing_service.full_name}/{method.name}"
    loop = _loop()

    async def handle(request_or_none: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = ServerContext(context, name)
        arg = RequestStream(context) if method.client_streaming else request_or_none
        ok, value = await trio_asyncio.trio_as_aio(_run_handler, loop=loop)(fn, arg, ctx)
        if not ok:
            await context.abort(value.code, value.message)
        if method.server_streaming:
            return None
        if value is None:
            await context.abort(grpc.StatusCode.INTERNAL, f"{name} returned no response")
        return value

    kwargs: dict[str, Any] = {
        "request_deserializer": request_cls.FromString,
        "response_serializer": response_cls.SerializeToString,
    }
    if method.client_streaming:

        async def handle_stream(_requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await handle(None, context)

        factory = (
            grpc.stream_stream_rpc_method_handler
            if method.server_streaming
            else grpc.stream_unary_rpc_method_handler
        )
        # grpc.aio hands a request iterator to stream handlers; the RequestStream reads
        # from the context instead, so the iterator stays unused.
        return factory(handle_stream, **kwargs)
    factory = (
        grpc.unary_stream_rpc_method_handler
        if method.server_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return factory(handle, **kwargs)


def _generic_handler(service: Service) -> grpc.GenericRpcHandler:
    handlers = {}
    for method in service.descriptor.methods:
        fn = getattr(service.servicer, method.name, None)
        if fn is None:
            continue  # grpc answers UNIMPLEMENTED for methods we leave out
        handlers[method.name] = _method_handler(method, fn)
    return grpc.method_handlers_generic_handler(service.descriptor.full_name, handlers)


@dataclass
class Server:
    """A running server: its bound port and its health status."""

    host: str
    port: int
    _health: Any = field(repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def set_serving(self, serving: bool, *, service: str = "") -> None:
        """Report health (``grpc.health.v1``) for ``service`` ('' = the whole server)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await _in_aio(self._health.set, service, status)


async def serve(
    services: Sequence[Service],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: TlsConfig | None = None,
    grace: float = 1.0,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``services`` until cancelled; report the :class:`Server` once listening.

    Health checking (``grpc.health.v1.Health``) is always registered; the server starts
    as SERVING. On cancellation, calls in flight get ``grace`` seconds to finish.
    """
    async with open_loop():
        server = grpc.aio.server(options=_SERVER_OPTIONS)
        server.add_generic_rpc_handlers(tuple(_generic_handler(s) for s in services))
        health = _health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        address = f"{host}:{port}"
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, tls.server_credentials())
        if bound == 0:
            raise OSError(f"cannot listen on {address}")
        await _in_aio(server.start)
        try:
            handle = Server(host=host, port=bound, _health=health)
            await handle.set_serving(True)
            task_status.started(handle)
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await _in_aio(server.stop, grace)


# --------------------------------------------------------------------------- clients


class ResponseStream(Generic[Resp]):
    """The responses of a server-streaming call, in trio."""

    def __init__(self, call: Any) -> None:
        self._call = call

    async def receive(self) -> Resp | None:
        """The next response, or None when the server has finished."""
        try:
            message = await _in_aio(self._call.read)
        except grpc.aio.AioRpcError as exc:
            raise _from_aio(exc) from None
        if message is grpc.aio.EOF:
            return None
        return message

    def __aiter__(self) -> ResponseStream[Resp]:
        return self

    async def __anext__(self) -> Resp:
        message = await self.receive()
        if message is None:
            raise StopAsyncIteration
        return message


class BidiStream(ResponseStream[Resp], Generic[Req, Resp]):
    """A bidirectional (or client-streaming) call: send requests, receive responses."""

    async def send(self, request: Req) -> None:
        try:
            await _in_aio(self._call.write, request)
        except grpc.aio.AioRpcError as exc:
            raise _from_aio(exc) from None
        except asyncio.InvalidStateError:
            # The call already ended; its status explains why.
            raise await self._final_error() from None

    async def done_writing(self) -> None:
        """Tell the server no more requests follow."""
        try:
            await _in_aio(self._call.done_writing)
        except grpc.aio.AioRpcError as exc:
            raise _from_aio(exc) from None

    async def response(self) -> Resp:
        """The single response of a client-streaming call."""
        try:
            result: Resp = await _in_aio(_await, self._call)
        except grpc.aio.AioRpcError as exc:
            raise _from_aio(exc) from None
        return result

    async def _final_error(self) -> RpcError:
        code = await _in_aio(self._call.code)
        details = await _in_aio(self._call.details)
        return error_for(code, details or code.name.lower())


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


class _Stub:
    """A generated stub made trio-friendly; see :meth:`Channel.stub`."""

    def __init__(self, aio_stub: Any, default_timeout: float | None) -> None:
        self._aio_stub = aio_stub
        self._default_timeout = default_timeout

    def __getattr__(self, name: str) -> Any:
        multicallable = getattr(self._aio_stub, name)
        default = self._default_timeout
        if isinstance(multicallable, grpc.aio.UnaryUnaryMultiCallable):

            async def unary(
                request: Any,
                *,
                timeout: float | None = default,
                metadata: Sequence[tuple[str, str]] | None = None,
            ) -> Any:
                async def call() -> Any:
                    return await multicallable(request, timeout=timeout, metadata=metadata)

                try:
                    return await _in_aio(call)
                except grpc.aio.AioRpcError as exc:
                    raise _from_aio(exc) from None

            return unary

        server_only = isinstance(multicallable, grpc.aio.UnaryStreamMultiCallable)

        @asynccontextmanager
        async def streaming(
            *request: Any,
            timeout: float | None = None,
            metadata: Sequence[tuple[str, str]] | None = None,
        ) -> AsyncIterator[Any]:
            async def start() -> Any:
                return multicallable(*request, timeout=timeout, metadata=metadata)

            call = await _in_aio(start)
            try:
                yield ResponseStream(call) if server_only else BidiStream(call)
            finally:
                call.cancel()

        return streaming


class Channel:
    """A client connection to one server address (gRPC reconnects by itself)."""

    def __init__(self, aio_channel: grpc.aio.Channel, target: str) -> None:
        self._aio = aio_channel
        self.target = target

    def stub(self, stub_class: type, *, default_timeout: float | None = None) -> Any:
        """Wrap a generated stub class (``rpc_pb2_grpc.KVStub``) for use from trio.

        Unary methods: ``await stub.Range(request, timeout=2)``. Streaming methods are
        async context managers that own the call: ``async with stub.Watch() as s:`` gives
        a :class:`BidiStream` (``send``, ``receive``, async iteration, ``done_writing``,
        ``response``); a server-streaming method ``stub.M(request)`` gives a
        :class:`ResponseStream`.
        """
        return _Stub(stub_class(self._aio), default_timeout)

    async def wait_ready(self, *, timeout: float) -> None:
        """Wait until the channel is connected; :class:`Unavailable` after ``timeout``."""
        try:
            with trio.fail_after(timeout):
                await _in_aio(self._aio.channel_ready)
        except trio.TooSlowError:
            raise Unavailable(f"cannot reach {self.target} within {timeout:g}s") from None

    async def check_health(self, *, service: str = "", timeout: float = 2.0) -> bool:
        """True when the server reports SERVING for ``service``."""
        health = self.stub(health_pb2_grpc.HealthStub)
        try:
            response = await health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except RpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


@asynccontextmanager
async def connect(
    target: str,
    *,
    tls: TlsConfig | None = None,
    server_name: str | None = None,
) -> AsyncIterator[Channel]:
    """Open a channel to ``target`` ("host:port"); closed when the block ends.

    ``server_name`` overrides the name checked against the server's certificate.
    """
    async with open_loop():
        options = list(_CHANNEL_OPTIONS)
        if server_name is not None:
            options.append(("grpc.ssl_target_name_override", server_name))

        async def make() -> grpc.aio.Channel:
            if tls is None:
                return grpc.aio.insecure_channel(target, options=options)
            return grpc.aio.secure_channel(target, tls.channel_credentials(), options=options)

        aio_channel = await _in_aio(make)
        try:
            yield Channel(aio_channel, target)
        finally:
            with trio.CancelScope(shield=True):
                await _in_aio(aio_channel.close)


def run(async_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run a trio program that uses gRPC: ``trio.run`` with the asyncio loop open."""

    async def main() -> Any:
        async with open_loop():
            return await async_fn(*args)

    # Ctrl-C is delivered at checkpoints only: arriving inside a grpc callback it would be
    # swallowed there and leave the process hanging.
    return trio.run(main, restrict_keyboard_interrupt_to_checkpoints=True)
