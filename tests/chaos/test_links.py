"""The fault-link proxy in-process, against a real echo server on loopback.

A plan with one link (``echo``'s port ``main``) in a temporary cluster directory; the
proxy runs in the test's trio run; rules are published through :class:`LinkControl` as
the chaos harness does, so every test also checks that ``add``/``remove`` return only
once the proxy applied them. The connecting side is this very process, so the proxy's
``/proc`` lookup must name it ``tester`` (the state file lists our pid under that name).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict
from functools import partial
from pathlib import Path

import pytest
import trio

from cli.launcher import links
from cli.launcher.links import Link, LinkControl, LinksError, Rule, RuleSet, socket_owner
from tests.support.ports import free_port

pytestmark = pytest.mark.chaos


async def _echo(stream: trio.SocketStream) -> None:
    async with stream:
        try:
            async for data in stream:
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass


def _write_cluster(root: Path, link: Link) -> None:
    links.links_dir(root).mkdir(parents=True)
    (links.links_dir(root) / "plan.json").write_text(
        json.dumps({"version": 1, "links": [asdict(link)]})
    )
    (root / "state.json").write_text(
        json.dumps({"processes": [{"name": "tester", "pid": os.getpid()}]})
    )


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[Path, int]]:
    """A cluster dir whose one fault link fronts an echo server; the proxy's port."""
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
        port = free_port()
        _write_cluster(
            tmp_path,
            Link(target="echo", port="main", listen=port, connect=listener.socket.getsockname()[1]),
        )
        await nursery.start(links.LinkProxy(tmp_path).run)
        yield tmp_path, port
        nursery.cancel_scope.cancel()


async def _round_trip(port: int, payload: bytes = b"ping") -> bytes:
    """What comes back for ``payload``: all of it, or less if the connection is closed
    (cleanly or reset) first."""
    got = b""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        try:
            await stream.send_all(payload)
            while len(got) < len(payload):
                chunk = await stream.receive_some()
                if not chunk:
                    break
                got += chunk
        except trio.BrokenResourceError:
            pass
        return got


async def test_traffic_passes_without_rules(proxied: tuple[Path, int]) -> None:
    _, port = proxied
    assert await _round_trip(port, b"hello") == b"hello"


async def test_refuse_closes_links_of_the_named_process(proxied: tuple[Path, int]) -> None:
    root, port = proxied
    control = LinkControl.for_cluster(root)
    async with await trio.open_tcp_stream("127.0.0.1", port) as open_before:
        await open_before.send_all(b"x")
        assert await open_before.receive_some() == b"x"
        ids = await control.add([Rule(action="refuse", process="echo")])
        with trio.fail_after(5):  # an existing connection is cut (closed or reset)
            try:
                assert await open_before.receive_some() == b""
            except trio.BrokenResourceError:
                pass
    with trio.fail_after(5):  # a new one is closed at once
        assert await _round_trip(port) == b""
    await control.remove(ids)
    assert await _round_trip(port) == b"ping"


async def test_rules_match_the_identified_source(proxied: tuple[Path, int]) -> None:
    root, port = proxied
    control = LinkControl.for_cluster(root)
    ids = await control.add([Rule(action="refuse", process="tester")])
    with trio.fail_after(5):
        assert await _round_trip(port) == b""
    await control.remove(ids)
    ids = await control.add([Rule(action="refuse", process="someone-else")])
    assert await _round_trip(port) == b"ping"


async def test_blackhole_swallows_bytes_but_keeps_the_connection(
    proxied: tuple[Path, int],
) -> None:
    root, port = proxied
    control = LinkControl.for_cluster(root)
    ids = await control.add([Rule(action="blackhole", process="echo")])
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"lost")
        with trio.move_on_after(0.5) as scope:
            await stream.receive_some()
        assert scope.cancelled_caught, "nothing may come back through a blackhole"
        await control.remove(ids)
        await stream.send_all(b"back")
        with trio.fail_after(5):
            assert await stream.receive_some() == b"back"


async def test_delay_adds_latency_each_way(proxied: tuple[Path, int]) -> None:
    root, port = proxied
    control = LinkControl.for_cluster(root)
    await control.add([Rule(action="delay", process="echo", latency=0.2)])
    started = trio.current_time()
    assert await _round_trip(port) == b"ping"
    took = trio.current_time() - started
    assert 0.4 <= took < 2.0, took
    await control.clear()
    started = trio.current_time()
    await _round_trip(port)
    assert trio.current_time() - started < 0.3


def test_verdict_precedence() -> None:
    rules = RuleSet(
        1,
        (
            Rule(action="delay", process="a", latency=0.1),
            Rule(action="delay", process="b", latency=0.2),
            Rule(action="blackhole", process="c"),
        ),
    )
    assert rules.verdict("a", "b") == ("delay", pytest.approx(0.3))
    assert rules.verdict("c", "a") == ("blackhole", 0.0)
    assert rules.verdict(None, "z") == ("pass", 0.0)
    both = RuleSet(2, (*rules.rules, Rule(action="refuse", process="c")))
    assert both.verdict("x", "c") == ("refuse", 0.0)


def test_bad_rules_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="action must be one of refuse, blackhole, delay"):
        Rule(action="drop", process="a")
    with pytest.raises(ValueError, match="latency > 0"):
        Rule(action="delay", process="a")


def test_control_needs_a_cluster_with_fault_links(tmp_path: Path) -> None:
    with pytest.raises(LinksError, match="raftsman up --fault-links"):
        LinkControl.for_cluster(tmp_path)


async def test_socket_owner_finds_our_own_socket() -> None:
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
        server_port = listener.socket.getsockname()[1]
        async with await trio.open_tcp_stream("127.0.0.1", server_port) as stream:
            local_port = stream.socket.getsockname()[1]
            found = await trio.to_thread.run_sync(
                socket_owner, local_port, server_port, {"other": 1, "me": os.getpid()}
            )
            assert found == "me"
            assert socket_owner(local_port, server_port, {"other": 1}) is None
        nursery.cancel_scope.cancel()
