"""Probes and lifecycle hooks in the pod worker (sim runtime, trio's fake clock).

The probes themselves are tested with node_agent.agent.probes; here: what the pod worker
does with their verdicts -- Ready condition, restarts, startup gating -- and when hooks run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from proto.k8s import core_pb2
from tests.node_agent.agent.kit import (
    Kit,
    ScriptedRuntime,
    container_status,
    deleting,
    eventually,
    make_pod,
    probe,
    start_worker,
)


def condition(kit: Kit, pod: core_pb2.Pod, type_: str) -> core_pb2.PodStatus:
    return next((c for c in kit.status_of(pod).conditions if c.type == type_), None)  # type: ignore[return-value]


@pytest.fixture
def runtime() -> ScriptedRuntime:
    return ScriptedRuntime()


async def test_readiness_probe_drives_the_ready_condition(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity")
    probe(pod.spec.containers[0].readiness_probe, "ready", failure=2)
    runtime.codes["ready"] = 1
    await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    await trio.sleep(5)
    ready = condition(kit, pod, "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    assert ready.message == "containers with unready status: [c0]"
    c = container_status(kit.status_of(pod))
    assert c.state.HasField("running") and not c.ready and c.started
    assert [e[3] for e in kit.events.events if e[2] == "Unhealthy"][
        0
    ] == "Readiness probe failed: command check ready exited with code 1: check ready"

    runtime.codes["ready"] = 0
    await eventually(lambda: condition(kit, pod, "Ready").status == "True")
    runtime.codes["ready"] = 1
    flipped = trio.current_time()
    await eventually(lambda: condition(kit, pod, "Ready").status == "False")
    # failureThreshold 2 at a 1 s period: not ready after two failed checks.
    assert 1 <= trio.current_time() - flipped <= 2.1
    assert container_status(kit.status_of(pod)).restart_count == 0  # readiness never restarts


async def test_liveness_failure_restarts_the_container(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", grace=5)
    probe(pod.spec.containers[0].liveness_probe, "alive", failure=3)
    runtime.codes["alive"] = 1
    await start_worker(nursery, kit, pod)
    await eventually(lambda: container_status(kit.status_of(pod)).restart_count == 1)
    c = container_status(kit.status_of(pod))
    assert c.last_state.terminated.exit_code == 143  # SIGTERM
    messages = [e[3] for e in kit.events.events if e[2] == "Killing"]
    assert messages[0] == "Container c0 failed liveness probe, will be restarted"
    runtime.codes["alive"] = 0
    await trio.sleep(60)
    assert container_status(kit.status_of(pod)).restart_count == 1
    assert container_status(kit.status_of(pod)).state.HasField("running")


async def test_startup_probe_holds_liveness_and_readiness(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity")
    c0 = pod.spec.containers[0]
    probe(c0.startup_probe, "started", failure=30)
    probe(c0.liveness_probe, "alive", failure=1)
    probe(c0.readiness_probe, "ready")
    runtime.codes.update(started=1, alive=1)
    await start_worker(nursery, kit, pod)
    await trio.sleep(10)
    c = container_status(kit.status_of(pod))
    assert c.state.HasField("running") and not c.started and not c.ready
    assert c.restart_count == 0
    # Neither liveness nor readiness ran while the startup probe had not passed.
    assert {argv[1] for _, argv in runtime.execs} == {"started"}
    runtime.codes.update(started=0, alive=0)
    await eventually(lambda: container_status(kit.status_of(pod)).ready)
    assert container_status(kit.status_of(pod)).started
    assert {argv[1] for _, argv in runtime.execs} == {"started", "alive", "ready"}


async def test_failing_startup_probe_kills_and_restarts(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", grace=1)
    probe(pod.spec.containers[0].startup_probe, "started", failure=3, period=2)
    runtime.codes["started"] = 1
    began = trio.current_time()
    await start_worker(nursery, kit, pod)
    await eventually(lambda: container_status(kit.status_of(pod)).restart_count == 1)
    # Checks at 0, 2, 4 s fail; killed at once (SIGTERM), restarted without backoff.
    assert trio.current_time() - began == pytest.approx(4, abs=0.1)
    assert "Container c0 failed startup probe, will be restarted" in [
        e[3] for e in kit.events.events
    ]


async def test_post_start_hook_runs_before_the_container_counts_as_running(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity")
    pod.spec.containers[0].lifecycle.post_start.exec.command.extend(["sh", "-c", "sleep 5"])
    began = trio.current_time()
    await start_worker(nursery, kit, pod)
    await eventually(
        lambda: (
            container_status(kit.status_of(pod)).state.waiting.reason == "ContainerCreating"
            and runtime.execs
        )
    )
    assert kit.status_of(pod).phase == "Pending"
    await eventually(lambda: container_status(kit.status_of(pod)).state.HasField("running"))
    assert trio.current_time() - began == pytest.approx(5, abs=0.1)
    assert kit.status_of(pod).phase == "Running"


async def test_failed_post_start_hook_kills_the_container(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", restart_policy="Never", grace=2)
    pod.spec.containers[0].lifecycle.post_start.exec.command.extend(["check", "hook"])
    runtime.codes["hook"] = 2
    await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Failed")
    assert "FailedPostStartHook" in kit.events.reasons()
    assert container_status(kit.status_of(pod)).state.terminated.exit_code == 143


async def test_pre_stop_hook_runs_within_the_grace_period_on_deletion(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", grace=10)
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["sh", "-c", "sleep 3"])
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    began = trio.current_time()
    worker.update(deleting(pod, grace=10))
    await worker.finished.wait()
    # preStop takes 3 s, then SIGTERM ends the container at once.
    assert trio.current_time() - began == pytest.approx(3, abs=0.1)
    assert [argv for _, argv in runtime.execs] == [("sh", "-c", "sleep 3")]
    assert container_status(kit.status_of(pod)).state.terminated.exit_code == 143
    assert kit.api.deleted


async def test_pre_stop_hook_is_cut_off_by_the_grace_period(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", grace=2)
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["sh", "-c", "sleep 60"])
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    began = trio.current_time()
    worker.update(deleting(pod, grace=2))
    await worker.finished.wait()
    assert trio.current_time() - began == pytest.approx(2, abs=0.1)
    assert "FailedPreStopHook" in kit.events.reasons()
