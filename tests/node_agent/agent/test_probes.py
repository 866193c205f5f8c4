"""Probes: one check of each kind against real sockets, and the worker's timing on a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing

from node_agent.agent.probes import (
    ActionError,
    ProbeContext,
    ProbeResult,
    ProbeTiming,
    ProbeWorker,
    probe_once,
    resolve_port,
)
from node_agent.runtime.base import ContainerNotRunningError
from proto.k8s import core_pb2, meta_pb2
from tests.node_agent.agent.tiny_http import tiny_http
from tests.support.ports import free_port

POD_IP = "127.77.0.5"  # any 127/8 address is loopback on Linux, as pod IPs are


async def _no_exec(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
    raise AssertionError(f"unexpected exec of {argv}")


def _ctx(ports: dict[str, int] | None = None, exec_fn: object = _no_exec) -> ProbeContext:
    return ProbeContext(pod_ip=POD_IP, ports=ports or {}, exec=exec_fn)  # type: ignore[arg-type]


def _http_probe(path: str, port: int | str, **fields: object) -> core_pb2.Probe:
    probe = core_pb2.Probe(**fields)  # type: ignore[arg-type]
    probe.http_get.path = path
    if isinstance(port, int):
        probe.http_get.port.int_val = port
    else:
        probe.http_get.port.str_val = port
    return probe


def _exec_probe(*argv: str, **fields: object) -> core_pb2.Probe:
    probe = core_pb2.Probe(**fields)  # type: ignore[arg-type]
    probe.exec.command.extend(argv)
    return probe


# ------------------------------------------------------------------------------ timing


def test_timing_defaults_are_kubernetes() -> None:
    assert ProbeTiming.of(core_pb2.Probe()) == ProbeTiming(
        initial_delay=0, period=10, timeout=1, success_threshold=1, failure_threshold=3
    )
    custom = core_pb2.Probe(
        initial_delay_seconds=5,
        period_seconds=2,
        timeout_seconds=3,
        success_threshold=2,
        failure_threshold=1,
    )
    assert ProbeTiming.of(custom) == ProbeTiming(5, 2, 3, 2, 1)


def test_ports_resolve_by_number_by_name_and_reject_bad_ones() -> None:
    ports = {"http": 8080}
    assert resolve_port(meta_pb2.IntOrString(int_val=81), ports, field="p") == 81
    assert resolve_port(meta_pb2.IntOrString(str_val="http"), ports, field="p") == 8080
    assert resolve_port(meta_pb2.IntOrString(str_val="9090"), ports, field="p") == 9090
    with pytest.raises(ActionError, match=r"no port named 'metrics' \(named ports: http\)"):
        resolve_port(meta_pb2.IntOrString(str_val="metrics"), ports, field="p")
    with pytest.raises(ActionError, match="invalid port number 70000"):
        resolve_port(meta_pb2.IntOrString(int_val=70000), ports, field="p")
    with pytest.raises(ActionError, match="httpGet.port is required"):
        resolve_port(meta_pb2.IntOrString(), ports, field="httpGet.port")


# ------------------------------------------------------------------------------ exec


async def test_exec_probe_success_failure_and_output() -> None:
    calls: list[tuple[list[str], float]] = []

    async def fake_exec(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        calls.append((list(argv), timeout))
        return (0, b"fine\n") if argv[-1] == "ok" else (1, b"cat: /tmp/healthy: missing\n")

    ctx = _ctx(exec_fn=fake_exec)
    probe_ok = _exec_probe("check", "ok", timeout_seconds=4)
    assert await probe_once(probe_ok, ctx) == (ProbeResult.SUCCESS, "fine")
    assert calls == [(["check", "ok"], 4.0)]
    result, message = await probe_once(_exec_probe("cat", "/tmp/healthy"), ctx)
    assert result is ProbeResult.FAILURE
    assert message == "command cat /tmp/healthy exited with code 1: cat: /tmp/healthy: missing"


async def test_exec_probe_timeout_is_a_failure(autojump_clock: trio.testing.MockClock) -> None:
    async def hangs(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        await trio.sleep_forever()
        raise AssertionError

    start = trio.current_time()
    result, message = await probe_once(
        _exec_probe("sleep", "100", timeout_seconds=2), _ctx(exec_fn=hangs)
    )
    assert (result, message) == (ProbeResult.FAILURE, "command sleep 100 timed out after 2s")
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_exec_in_a_stopped_container_is_unknown() -> None:
    async def stopped(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        raise ContainerNotRunningError("container c1 is not running")

    result, message = await probe_once(_exec_probe("true"), _ctx(exec_fn=stopped))
    assert result is ProbeResult.UNKNOWN
    assert "not running" in message


async def test_probe_without_handler_is_unknown() -> None:
    result, message = await probe_once(core_pb2.Probe(), _ctx())
    assert result is ProbeResult.UNKNOWN
    assert "exec, httpGet or tcpSocket" in message


# ------------------------------------------------------------------------------ httpGet


@pytest.mark.parametrize(
    ("path", "expected", "message"),
    [
        ("/ok", ProbeResult.SUCCESS, "HTTP probe succeeded with statuscode: 200"),
        ("/moved-to-ok", ProbeResult.SUCCESS, "HTTP probe succeeded with statuscode: 200"),
        ("/moved-to-missing", ProbeResult.FAILURE, "HTTP probe failed with statuscode: 404"),
        ("/missing", ProbeResult.FAILURE, "HTTP probe failed with statuscode: 404"),
        ("/boom", ProbeResult.FAILURE, "HTTP probe failed with statuscode: 500"),
        ("/away", ProbeResult.SUCCESS, "probe terminated redirects (status 302)"),
    ],
)
async def test_http_probe_status_codes(path: str, expected: ProbeResult, message: str) -> None:
    async with tiny_http(POD_IP) as server:
        assert await probe_once(_http_probe(path, server.port), _ctx()) == (expected, message)


async def test_http_probe_redirect_loop_fails() -> None:
    async with tiny_http(POD_IP) as server:
        result, message = await probe_once(_http_probe("/loop", server.port), _ctx())
    assert result is ProbeResult.FAILURE
    assert message.endswith("stopped after 10 redirects")
    assert len(server.requests) == 11


async def test_http_probe_sends_default_and_custom_headers_to_the_pod_ip() -> None:
    async with tiny_http(POD_IP) as server:
        probe = _http_probe("ok", "web")  # path without a leading slash, port by name
        probe.http_get.http_headers.add(name="X-Probe", value="yes")
        probe.http_get.http_headers.add(name="Accept", value="application/json")
        result, _ = await probe_once(probe, _ctx({"web": server.port}))
    assert result is ProbeResult.SUCCESS
    [request] = server.requests
    assert request.path == "/ok"
    assert request.headers["host"] == f"{POD_IP}:{server.port}"
    assert request.headers["user-agent"].startswith("kube-probe/")
    assert request.headers["x-probe"] == "yes"
    assert request.headers["accept"] == "application/json"


async def test_http_probe_host_header_and_explicit_host() -> None:
    async with tiny_http("127.0.0.1") as server:
        probe = _http_probe("/ok", server.port)
        probe.http_get.host = "127.0.0.1"
        probe.http_get.http_headers.add(name="Host", value="app.example")
        assert (await probe_once(probe, _ctx()))[0] is ProbeResult.SUCCESS
    assert server.requests[0].headers["host"] == "app.example"


async def test_http_probe_timeout_is_a_failure() -> None:
    async with tiny_http(POD_IP) as server:
        result, message = await probe_once(
            _http_probe("/hang", server.port, timeout_seconds=1), _ctx()
        )
    assert result is ProbeResult.FAILURE
    assert message == f'Get "http://{POD_IP}:{server.port}/hang": no response within 1s'


async def test_http_probe_connection_refused_is_a_failure() -> None:
    port = free_port(host=POD_IP)
    result, message = await probe_once(_http_probe("/ok", port), _ctx())
    assert result is ProbeResult.FAILURE
    assert message == (
        f'Get "http://{POD_IP}:{port}/ok": dial tcp {POD_IP}:{port}: connect: connection refused'
    )


async def test_http_probe_unknown_port_name_is_unknown() -> None:
    result, message = await probe_once(_http_probe("/ok", "admin"), _ctx({"web": 80}))
    assert result is ProbeResult.UNKNOWN
    assert message == "httpGet.port: the container has no port named 'admin' (named ports: web)"


# ------------------------------------------------------------------------------ tcpSocket


async def test_tcp_probe_open_and_closed_port() -> None:
    async with tiny_http(POD_IP) as server:
        probe = core_pb2.Probe()
        probe.tcp_socket.port.str_val = "web"
        assert await probe_once(probe, _ctx({"web": server.port})) == (
            ProbeResult.SUCCESS,
            f"connected to {POD_IP}:{server.port}",
        )
    closed = free_port(host=POD_IP)
    probe = core_pb2.Probe()
    probe.tcp_socket.port.int_val = closed
    assert await probe_once(probe, _ctx()) == (
        ProbeResult.FAILURE,
        f"dial tcp {POD_IP}:{closed}: connect: connection refused",
    )


# ------------------------------------------------------------------------------ the worker


class Script:
    """A fake exec whose exit codes follow a script (the last one repeats); 'hang' hangs."""

    def __init__(self, *steps: int | str) -> None:
        self.steps = list(steps)
        self.times: list[float] = []

    async def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        self.times.append(trio.current_time())
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if step == "hang":
            await trio.sleep_forever()
        if step == "gone":
            raise ContainerNotRunningError("not running")
        assert isinstance(step, int)
        return step, f"exit {step}".encode()


Changes = list[tuple[float, ProbeResult, str]]


async def _run_worker(
    kind: str, probe: core_pb2.Probe, script: Script, *, until: float
) -> tuple[ProbeWorker, Changes, bool]:
    """Run a worker until virtual time ``until``; (worker, changes, whether run returned)."""
    changes: Changes = []

    def on_change(result: ProbeResult, message: str) -> None:
        changes.append((trio.current_time(), result, message))

    worker = ProbeWorker(probe, kind, _ctx(exec_fn=script), on_change)
    returned = False
    with trio.move_on_after(until):
        await worker.run()
        returned = True
    return worker, changes, returned


async def test_readiness_flips_to_ready_once_with_defaults(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(0)
    worker, changes, returned = await _run_worker("readiness", _exec_probe("ok"), script, until=35)
    assert script.times == [0, 10, 20, 30]  # period 10 by default, first check at once
    assert changes == [(0, ProbeResult.SUCCESS, "exit 0")]
    assert worker.result is ProbeResult.SUCCESS and not returned


async def test_initial_delay_and_period(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(0)
    probe = _exec_probe("ok", initial_delay_seconds=5, period_seconds=2)
    await _run_worker("readiness", probe, script, until=10)
    assert script.times == [5, 7, 9]


async def test_on_change_only_when_the_result_flips(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # t: 0 1 2 3 4 5 6 7 8 9
    script = Script(0, 1, 1, 0, 1, 1, 1, 0, 0, 0)
    probe = _exec_probe("x", period_seconds=1, failure_threshold=3, success_threshold=2)
    worker, changes, _ = await _run_worker("readiness", probe, script, until=9.5)
    # One success is not enough (t=0, 3); three failures (t=4..6) keep it unready without
    # a call; the second success in a row (t=8) makes it ready, t=9 changes nothing.
    assert [(t, r) for t, r, _ in changes] == [(8, ProbeResult.SUCCESS)]
    assert worker.result is ProbeResult.SUCCESS


async def test_readiness_needs_success_threshold_then_failure_threshold(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # t: 0 1 2 3 4 5 6 7 8 9
    script = Script(0, 0, 1, 1, 0, 1, 1, 1, 0, 0)
    probe = _exec_probe("x", period_seconds=1, failure_threshold=3, success_threshold=2)
    worker, changes, _ = await _run_worker("readiness", probe, script, until=9.5)
    assert [(t, r) for t, r, _ in changes] == [
        (1, ProbeResult.SUCCESS),  # second success in a row
        (7, ProbeResult.FAILURE),  # third failure in a row (t=2,3 were only two)
        (9, ProbeResult.SUCCESS),
    ]
    assert changes[1][2] == "command x exited with code 1: exit 1"
    assert worker.result is ProbeResult.SUCCESS


async def test_liveness_reports_only_the_failure_and_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(0, 0, 1, 1, 1, 0)
    probe = _exec_probe("x", period_seconds=3)
    worker, changes, returned = await _run_worker("liveness", probe, script, until=100)
    assert changes == [(12, ProbeResult.FAILURE, "command x exited with code 1: exit 1")]
    assert returned and worker.result is ProbeResult.FAILURE
    assert script.times == [0, 3, 6, 9, 12]  # no check after the container is doomed


async def test_timeout_counts_as_failure(autojump_clock: trio.testing.MockClock) -> None:
    script = Script("hang")
    probe = _exec_probe("slow", period_seconds=5, timeout_seconds=2, failure_threshold=2)
    _, changes, returned = await _run_worker("liveness", probe, script, until=100)
    # Checks at 0 and 5 each time out after 2 s; the second makes the threshold at t=7.
    assert changes == [(7, ProbeResult.FAILURE, "command slow timed out after 2s")]
    assert returned


async def test_unknown_results_are_not_counted(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(1, "gone", 1, "gone", 1)
    probe = _exec_probe("x", period_seconds=1, failure_threshold=3)
    seen: list[ProbeResult] = []
    changes: Changes = []
    worker = ProbeWorker(
        probe,
        "liveness",
        _ctx(exec_fn=script),
        lambda r, m: changes.append((trio.current_time(), r, m)),
        on_probe=lambda r, m: seen.append(r),
    )
    with trio.move_on_after(10):
        await worker.run()
    assert seen[:5] == [
        ProbeResult.FAILURE,
        ProbeResult.UNKNOWN,
        ProbeResult.FAILURE,
        ProbeResult.UNKNOWN,
        ProbeResult.FAILURE,
    ]
    assert [(t, r) for t, r, _ in changes] == [(4, ProbeResult.FAILURE)]


async def test_startup_reports_success_once_and_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(1, 1, 0)
    probe = _exec_probe("x", period_seconds=2, failure_threshold=30)
    worker, changes, returned = await _run_worker("startup", probe, script, until=100)
    assert changes == [(4, ProbeResult.SUCCESS, "exit 0")]
    assert returned and worker.result is ProbeResult.SUCCESS


async def test_startup_failure_is_reported_although_it_starts_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(1)
    probe = _exec_probe("x", period_seconds=2, failure_threshold=2)
    worker, changes, returned = await _run_worker("startup", probe, script, until=100)
    assert [(t, r) for t, r, _ in changes] == [(2, ProbeResult.FAILURE)]
    assert returned and worker.result is ProbeResult.FAILURE


async def test_worker_started_reports_initial_results(
    autojump_clock: trio.testing.MockClock,
) -> None:
    for kind, initial in [
        ("readiness", ProbeResult.FAILURE),
        ("liveness", ProbeResult.SUCCESS),
        ("startup", ProbeResult.FAILURE),
    ]:
        worker = ProbeWorker(
            _exec_probe("x", initial_delay_seconds=60), kind, _ctx(), lambda r, m: None
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            assert worker.result is initial
            nursery.cancel_scope.cancel()
    with pytest.raises(ValueError, match="probe kind must be one of liveness, readiness, startup"):
        ProbeWorker(core_pb2.Probe(), "alive", _ctx(), lambda r, m: None)
