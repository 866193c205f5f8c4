"""Lifecycle hooks: exec, httpGet and sleep handlers, their successes and failure messages."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing

from node_agent.agent.hooks import run_handler
from node_agent.agent.probes import ProbeContext
from node_agent.runtime.base import ContainerNotRunningError
from proto.k8s import core_pb2
from tests.node_agent.agent.tiny_http import tiny_http
from tests.support.ports import free_port

POD_IP = "127.77.0.6"


async def _exec(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
    if argv[0] == "hang":
        await trio.sleep_forever()
    if argv[0] == "gone":
        raise ContainerNotRunningError("container c1 is not running")
    return (0, b"drained\n") if argv[0] == "drain" else (2, b"no such thing\n")


def _ctx(ports: dict[str, int] | None = None) -> ProbeContext:
    return ProbeContext(pod_ip=POD_IP, ports=ports or {}, exec=_exec)


def _exec_handler(*argv: str) -> core_pb2.LifecycleHandler:
    handler = core_pb2.LifecycleHandler()
    handler.exec.command.extend(argv)
    return handler


def _http_handler(path: str, port: int | str) -> core_pb2.LifecycleHandler:
    handler = core_pb2.LifecycleHandler()
    handler.http_get.path = path
    if isinstance(port, int):
        handler.http_get.port.int_val = port
    else:
        handler.http_get.port.str_val = port
    return handler


async def test_exec_hook_success_and_failure() -> None:
    assert await run_handler(_exec_handler("drain"), _ctx(), timeout=30) == (True, "drained")
    assert await run_handler(_exec_handler("missing", "--now"), _ctx(), timeout=30) == (
        False,
        "Exec lifecycle hook (missing --now) failed - error: command exited with code 2, "
        "message: 'no such thing'",
    )
    ok, message = await run_handler(_exec_handler("gone"), _ctx(), timeout=30)
    assert not ok
    assert message == "Exec lifecycle hook (gone) failed - error: container c1 is not running"


async def test_exec_hook_is_cut_off_at_the_timeout(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    result = await run_handler(_exec_handler("hang"), _ctx(), timeout=7)
    assert result == (False, "Exec lifecycle hook (hang) did not finish within 7s")
    assert trio.current_time() - start == pytest.approx(7)


async def test_http_hook_succeeds_on_any_response() -> None:
    async with tiny_http(POD_IP) as server:
        ok, message = await run_handler(
            _http_handler("/boom", "web"), _ctx({"web": server.port}), timeout=5
        )
    assert ok  # as in Kubernetes, only a missing response fails an HTTP hook
    assert message == f"GET http://{POD_IP}:{server.port}/boom: 500 Whatever"
    assert [r.path for r in server.requests] == ["/boom"]


async def test_http_hook_fails_without_a_response() -> None:
    port = free_port(host=POD_IP)
    ok, message = await run_handler(_http_handler("/shutdown", port), _ctx(), timeout=5)
    assert not ok
    assert message == (
        f'HTTP lifecycle hook (/shutdown) failed - error: Get "http://{POD_IP}:{port}/shutdown": '
        f"dial tcp {POD_IP}:{port}: connect: connection refused"
    )
    async with tiny_http(POD_IP) as server:
        ok, message = await run_handler(_http_handler("/hang", server.port), _ctx(), timeout=0.5)
    assert not ok
    assert message.endswith("no response within 0.5s")


async def test_http_hook_with_an_unknown_port_name_fails() -> None:
    ok, message = await run_handler(_http_handler("/x", "admin"), _ctx(), timeout=5)
    assert (ok, message) == (
        False,
        "HTTP lifecycle hook failed - error: httpGet.port: the container has no port named "
        "'admin' (named ports: none)",
    )


async def test_sleep_hook(autojump_clock: trio.testing.MockClock) -> None:
    handler = core_pb2.LifecycleHandler(sleep=core_pb2.SleepAction(seconds=5))
    start = trio.current_time()
    assert await run_handler(handler, _ctx(), timeout=30) == (True, "slept 5s")
    assert trio.current_time() - start == pytest.approx(5)
    ok, message = await run_handler(handler, _ctx(), timeout=2)
    assert not ok
    assert message.startswith("Sleep lifecycle hook (5s) was cut off after 2s")
    assert trio.current_time() - start == pytest.approx(7)


async def test_unsupported_and_empty_handlers_fail_clearly() -> None:
    tcp = core_pb2.LifecycleHandler()
    tcp.tcp_socket.port.int_val = 80
    assert await run_handler(tcp, _ctx(), timeout=1) == (
        False,
        "tcpSocket is not supported as a lifecycle handler; use exec, httpGet or sleep",
    )
    assert await run_handler(core_pb2.LifecycleHandler(), _ctx(), timeout=1) == (
        False,
        "the lifecycle handler has no action: set exec, httpGet or sleep",
    )
