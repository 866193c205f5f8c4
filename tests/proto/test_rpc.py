"""The trio <-> gRPC bridge against a real in-process server on a free loopback port."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import trio

from proto import rpc
from proto.testing import echo_pb2, echo_pb2_grpc
from proto.testing.echo_pb2 import EchoReply, EchoRequest

pytestmark = pytest.mark.usefixtures("rpc_loop")


def _fail(kind: str) -> None:
    if kind == "not_found":
        raise rpc.NotFound("pod default/web-1 not found")
    if kind == "conflict":
        raise rpc.Aborted("resourceVersion 7 is stale")
    if kind == "boom":
        raise ValueError("unexpected")


@dataclass
class EchoServicer:
    """Records what its handlers saw, so tests can assert on server-side effects."""

    started: trio.Event = field(default_factory=trio.Event)
    cancelled: trio.Event = field(default_factory=trio.Event)
    remaining: list[float | None] = field(default_factory=list)

    async def _slow(self, delay: float) -> None:
        if delay:
            self.started.set()
            try:
                await trio.sleep(delay)
            except trio.Cancelled:
                self.cancelled.set()
                raise

    async def Unary(self, request: EchoRequest, ctx: rpc.ServerContext) -> EchoReply:
        self.remaining.append(ctx.time_remaining())
        _fail(request.fail)
        await self._slow(request.delay)
        return EchoReply(text=request.text)

    async def ServerStream(self, request: EchoRequest, ctx: rpc.ServerContext) -> None:
        for i in range(request.repeat):
            await ctx.send(EchoReply(text=request.text, index=i))
        _fail(request.fail)
        await self._slow(request.delay)

    async def ClientStream(
        self, requests: rpc.RequestStream[EchoRequest], ctx: rpc.ServerContext
    ) -> EchoReply:
        texts = [r.text async for r in requests]
        return EchoReply(text="+".join(texts), index=len(texts))

    async def Bidi(self, requests: rpc.RequestStream[EchoRequest], ctx: rpc.ServerContext) -> None:
        async for request in requests:
            _fail(request.fail)
            for i in range(max(request.repeat, 1)):
                await ctx.send(EchoReply(text=request.text, index=i))
            await self._slow(request.delay)


@pytest.fixture
async def echo(nursery: trio.Nursery) -> AsyncIterator[tuple[EchoServicer, rpc.Server]]:
    servicer = EchoServicer()
    server = await nursery.start(partial(rpc.serve, [rpc.Service.of(servicer, echo_pb2, "Echo")]))
    yield servicer, server


@pytest.fixture
async def stub(echo: tuple[EchoServicer, rpc.Server]) -> AsyncIterator[object]:
    _, server = echo
    async with rpc.connect(server.address) as channel:
        yield channel.stub(echo_pb2_grpc.EchoStub)


async def test_serve_reports_bound_port_and_health(echo):
    _, server = echo
    assert server.port > 0
    async with rpc.connect(server.address) as channel:
        await channel.wait_ready(timeout=5)
        assert await channel.check_health()
        await server.set_serving(False)
        assert not await channel.check_health()


async def test_unary(stub):
    reply = await stub.Unary(EchoRequest(text="hello"))
    assert reply.text == "hello"


async def test_server_stream(stub):
    async with stub.ServerStream(EchoRequest(text="x", repeat=3)) as replies:
        got = [(r.text, r.index) async for r in replies]
    assert got == [("x", 0), ("x", 1), ("x", 2)]


async def test_client_stream(stub):
    async with stub.ClientStream() as call:
        for word in ("a", "b", "c"):
            await call.send(EchoRequest(text=word))
        await call.done_writing()
        reply = await call.response()
    assert (reply.text, reply.index) == ("a+b+c", 3)


async def test_bidi_interleaves_requests_and_replies(stub):
    async with stub.Bidi() as stream:
        await stream.send(EchoRequest(text="one", repeat=2))
        assert (await stream.receive()).index == 0
        assert (await stream.receive()).index == 1
        await stream.send(EchoRequest(text="two"))
        assert (await stream.receive()).text == "two"
        await stream.done_writing()
        assert await stream.receive() is None


async def test_cancel_scope_cancels_the_rpc_and_the_handler(echo, stub):
    servicer, _ = echo
    with trio.move_on_after(30) as outer:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_when_started() -> None:
                    await servicer.started.wait()
                    scope.cancel()

                nursery.start_soon(cancel_when_started)
                await stub.Unary(EchoRequest(text="slow", delay=60))
        assert scope.cancelled_caught
        await servicer.cancelled.wait()
    assert not outer.cancelled_caught


async def test_client_disconnect_cancels_streaming_handler(echo, stub):
    servicer, _ = echo
    with trio.fail_after(30):
        async with stub.ServerStream(EchoRequest(text="x", repeat=1, delay=60)) as replies:
            assert (await replies.receive()).text == "x"
            await servicer.started.wait()
        await servicer.cancelled.wait()


async def test_deadline_exceeded_maps_and_cancels_handler(echo, stub):
    servicer, _ = echo
    with pytest.raises(rpc.DeadlineExceeded):
        await stub.Unary(EchoRequest(text="slow", delay=60), timeout=0.3)
    with trio.fail_after(30):
        await servicer.cancelled.wait()


async def test_deadline_is_visible_to_the_handler(echo, stub):
    servicer, _ = echo
    await stub.Unary(EchoRequest(text="x"), timeout=20)
    remaining = servicer.remaining[-1]
    # gRPC rounds deadlines up on the wire, by up to a few hundred milliseconds.
    assert remaining is not None and 15 < remaining <= 21


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("not_found", rpc.NotFound, "pod default/web-1 not found"),
        ("conflict", rpc.Aborted, "resourceVersion 7 is stale"),
        ("boom", rpc.Internal, "ValueError: unexpected"),
    ],
)
async def test_errors_map_to_status_codes_and_back(stub, kind, error, message):
    with pytest.raises(error) as caught:
        await stub.Unary(EchoRequest(fail=kind))
    assert message in caught.value.message
    with pytest.raises(error):
        async with stub.ServerStream(EchoRequest(text="x", repeat=1, fail=kind)) as replies:
            assert (await replies.receive()).text == "x"
            await replies.receive()
    with pytest.raises(error):
        async with stub.Bidi() as stream:
            await stream.send(EchoRequest(fail=kind))
            await stream.receive()


async def test_unimplemented_method(nursery):
    class Partial:
        async def Unary(self, request: EchoRequest, ctx: rpc.ServerContext) -> EchoReply:
            return EchoReply(text="only this")

    server = await nursery.start(partial(rpc.serve, [rpc.Service.of(Partial(), echo_pb2, "Echo")]))
    async with rpc.connect(server.address) as channel:
        echo = channel.stub(echo_pb2_grpc.EchoStub)
        assert (await echo.Unary(EchoRequest())).text == "only this"
        with pytest.raises(rpc.Unimplemented):
            async with echo.ServerStream(EchoRequest()) as replies:
                await replies.receive()


async def test_unreachable_server_is_unavailable():
    async with rpc.connect("127.0.0.1:1") as channel:
        echo = channel.stub(echo_pb2_grpc.EchoStub)
        with pytest.raises(rpc.Unavailable):
            await echo.Unary(EchoRequest(), timeout=5)


# ---------------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext",
                 "-out", f"{name}.crt", cwd=d)  # fmt: skip
    return {p.name: p for p in d.iterdir()}


async def test_tls_round_trip_with_client_certificates(nursery, pki):
    server_tls = rpc.TlsConfig.from_files(
        cert=pki["server.crt"], key=pki["server.key"], ca=pki["ca.crt"]
    )
    server = await nursery.start(
        partial(rpc.serve, [rpc.Service.of(EchoServicer(), echo_pb2, "Echo")], tls=server_tls)
    )
    client_tls = rpc.TlsConfig.from_files(
        cert=pki["client.crt"], key=pki["client.key"], ca=pki["ca.crt"]
    )
    async with rpc.connect(server.address, tls=client_tls) as channel:
        echo = channel.stub(echo_pb2_grpc.EchoStub)
        assert (await echo.Unary(EchoRequest(text="secret"), timeout=10)).text == "secret"

    # Without a client certificate the handshake is refused.
    async with rpc.connect(server.address, tls=rpc.TlsConfig(ca=client_tls.ca)) as channel:
        echo = channel.stub(echo_pb2_grpc.EchoStub)
        with pytest.raises(rpc.Unavailable):
            await echo.Unary(EchoRequest(text="x"), timeout=10)

    # A plaintext client cannot talk to a TLS server.
    async with rpc.connect(server.address) as channel:
        echo = channel.stub(echo_pb2_grpc.EchoStub)
        with pytest.raises(rpc.Unavailable):
            await echo.Unary(EchoRequest(text="x"), timeout=10)
