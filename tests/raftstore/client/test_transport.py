"""The retry policy on fakes: which failures move to the next endpoint, which raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from proto import rpc
from proto.etcdserverpb import rpc_pb2
from raftstore.client.errors import EndpointsUnavailable, Indeterminate, NoLeader
from raftstore.client.transport import Transport, parse_endpoint

REFUSED = rpc.Unavailable("failed to connect to all addresses; last error: refused")
BROKEN = rpc.Unavailable("Socket closed")


@dataclass
class FakeChannel:
    """Answers every call with the next outcome (an exception to raise, or a value)."""

    outcomes: list[Any]
    calls: list[str] = field(default_factory=list)

    def stub(self, stub_class: type, *, default_timeout: float | None = None) -> Any:
        channel = self

        class Stub:
            def __getattr__(self, method: str) -> Any:
                async def call(request: Any, *, timeout: float | None = None) -> Any:
                    channel.calls.append(method)
                    outcome = channel.outcomes.pop(0)
                    if isinstance(outcome, BaseException):
                        raise outcome
                    return outcome

                return call

        return Stub()


def transport(*channels: FakeChannel, retry_window: float = 0) -> Transport:
    names = [f"127.0.0.1:{i + 1}" for i in range(len(channels))]
    return Transport(names, channels, timeout=1, retry_window=retry_window)  # type: ignore[arg-type]


async def test_reads_retry_any_unavailable_on_the_next_endpoint() -> None:
    a, b = FakeChannel([BROKEN]), FakeChannel(["ok"])
    t = transport(a, b)
    assert await t.unary(object, "Range", rpc_pb2.RangeRequest(), idempotent=True) == "ok"
    assert t.current == 1


async def test_writes_retry_only_when_never_sent() -> None:
    a, b = FakeChannel([REFUSED]), FakeChannel(["ok"])
    t = transport(a, b)
    assert await t.unary(object, "Put", rpc_pb2.PutRequest(), idempotent=False) == "ok"

    a, b = FakeChannel([BROKEN]), FakeChannel(["unused"])
    t = transport(a, b)
    with pytest.raises(Indeterminate) as caught:
        await t.unary(object, "Put", rpc_pb2.PutRequest(), idempotent=False)
    assert "Socket closed" in caught.value.message and isinstance(caught.value, rpc.Unavailable)
    assert b.calls == [] and t.current == 1  # not retried, but the next call goes elsewhere


async def test_server_unavailable_errors_are_typed() -> None:
    t = transport(FakeChannel([rpc.Unavailable("etcdserver: no leader")]), FakeChannel(["ok"]))
    assert await t.unary(object, "Range", rpc_pb2.RangeRequest(), idempotent=True) == "ok"
    t = transport(FakeChannel([rpc.Unavailable("etcdserver: no leader")]), FakeChannel([]))
    with pytest.raises(Indeterminate) as caught:
        await t.unary(object, "Put", rpc_pb2.PutRequest(), idempotent=False)
    assert isinstance(caught.value.__cause__, NoLeader)


async def test_all_endpoints_down_and_other_errors() -> None:
    t = transport(FakeChannel([REFUSED]), FakeChannel([REFUSED]))
    with pytest.raises(EndpointsUnavailable) as caught:
        await t.unary(object, "Put", rpc_pb2.PutRequest(), idempotent=False)
    assert "127.0.0.1:1" in caught.value.message and "127.0.0.1:2" in caught.value.message
    t = transport(FakeChannel([rpc.InvalidArgument("nope")]), FakeChannel(["unused"]))
    with pytest.raises(rpc.InvalidArgument):
        await t.unary(object, "Range", rpc_pb2.RangeRequest(), idempotent=True)
    assert t.current == 0


async def test_rounds_continue_while_a_leader_is_elected(autojump_clock: object) -> None:
    import trio

    changed = rpc.Unavailable("etcdserver: leader changed")
    no_leader = rpc.Unavailable("etcdserver: no leader")
    a = FakeChannel([REFUSED, REFUSED, REFUSED])
    b = FakeChannel([changed, no_leader, "ok"])
    t = transport(a, b, retry_window=3)
    start = trio.current_time()
    assert await t.unary(object, "Range", rpc_pb2.RangeRequest(), idempotent=True) == "ok"
    assert trio.current_time() - start == pytest.approx(0.05 + 0.1)  # two pauses
    assert a.calls == ["Range"] * 3 and b.calls == ["Range"] * 3

    # A write that never left is retried in rounds too; one that may have left is not.
    t = transport(FakeChannel([REFUSED, "ok"]), FakeChannel([REFUSED]), retry_window=3)
    assert await t.unary(object, "Put", rpc_pb2.PutRequest(), idempotent=False) == "ok"

    # The window bounds the whole call; the error names each endpoint's last answer.
    down = FakeChannel([REFUSED] * 100)
    t = transport(down, FakeChannel([no_leader] * 100), retry_window=2)
    start = trio.current_time()
    with pytest.raises(EndpointsUnavailable) as caught:
        await t.unary(object, "Range", rpc_pb2.RangeRequest(), idempotent=True)
    assert trio.current_time() - start <= 2
    assert "127.0.0.1:2: etcdserver: no leader" in caught.value.message
    assert len(down.calls) > 3


async def test_parse_endpoint() -> None:
    assert parse_endpoint("http://127.0.0.1:2379") == "127.0.0.1:2379"
    assert parse_endpoint("https://h:1/") == "h:1"
    assert parse_endpoint(" h:2 ") == "h:2"
    for bad in ("h", "h:x", "unix:///tmp/s", ":1"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)
