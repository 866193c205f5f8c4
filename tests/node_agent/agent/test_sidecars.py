"""Sidecar containers: init containers with ``restartPolicy: Always`` (Kubernetes 1.29+).

Unit tests run the pod worker on the sim runtime and trio's fake clock; the end-to-end
test runs a pod with a sidecar as real processes through a real API server and checks
the order in which they start and stop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.client import ApiClient
from cli.kubectl import printers
from node_agent.runtime.process import ProcessRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    gone,
    host_path_volume,
    in_phase,
    lines,
    poll,
    start_agent,
)
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


@pytest.fixture
def runtime() -> ScriptedRuntime:
    return ScriptedRuntime()


def sidecar_pod(
    *apps: str, init: tuple[str, ...], sidecars: tuple[int, ...] = (0,), **kwargs: object
) -> core_pb2.Pod:
    pod = make_pod(*apps, init=init, **kwargs)  # type: ignore[arg-type]
    for index in sidecars:
        pod.spec.init_containers[index].restart_policy = "Always"
    return pod


def condition(kit: Kit, pod: core_pb2.Pod, type_: str) -> tuple[str, str]:
    for c in kit.status_of(pod).conditions:
        if c.type == type_:
            return c.status, c.message
    return "", ""


def kubectl_row(kit: Kit, pod: core_pb2.Pod) -> list[str]:
    shown = core_pb2.Pod()
    shown.CopyFrom(pod)
    shown.status.CopyFrom(kit.status_of(pod))
    return printers._pod(shown)


async def test_next_init_container_waits_for_the_sidecar_to_be_started(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = sidecar_pod("sleep infinity", init=("sleep infinity", "sleep 5"))
    probe(pod.spec.init_containers[0].startup_probe, "proxy", failure=60)
    runtime.codes["proxy"] = 1
    await start_worker(nursery, kit, pod)
    await trio.sleep(10)
    status = kit.status_of(pod)
    proxy = container_status(status, "init0")
    assert proxy.state.HasField("running") and proxy.HasField("started") and not proxy.started
    assert container_status(status, "init1").state.waiting.reason == "PodInitializing"
    assert status.phase == "Pending"
    assert condition(kit, pod, "Initialized") == (
        "False",
        "containers with incomplete status: [init0 init1]",
    )
    assert kubectl_row(kit, pod) == ["0/2", "Init:0/2", "0"]
    started = trio.current_time()
    runtime.codes["proxy"] = 0  # the sidecar's startup probe passes
    await eventually(
        lambda: container_status(kit.status_of(pod), "init1").state.HasField("running")
    )
    assert kubectl_row(kit, pod) == ["1/2", "Init:1/2", "0"]  # the sidecar is ready
    # The regular init container still runs to completion before the app starts.
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    assert trio.current_time() - started == pytest.approx(5, abs=1.1)
    status = kit.status_of(pod)
    proxy = container_status(status, "init0")
    assert proxy.state.HasField("running") and proxy.started and proxy.ready
    assert container_status(status, "init1").state.terminated.reason == "Completed"
    assert condition(kit, pod, "Initialized") == ("True", "")
    assert condition(kit, pod, "Ready") == ("True", "")
    assert kubectl_row(kit, pod) == ["2/2", "Running", "0"]


async def test_sidecar_restarts_with_backoff_whatever_the_pod_restart_policy(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = sidecar_pod("sleep infinity", init=("sleep 2; exit 1",), restart_policy="Never")
    await start_worker(nursery, kit, pod)
    await eventually(lambda: container_status(kit.status_of(pod), "init0").restart_count == 3)
    await eventually(
        lambda: (
            container_status(kit.status_of(pod), "init0").state.waiting.reason == "CrashLoopBackOff"
        )
    )
    status = kit.status_of(pod)
    assert status.phase == "Running"  # an exited sidecar does not make the pod fail
    assert container_status(status, "c0").state.HasField("running")
    assert container_status(status, "init0").last_state.terminated.exit_code == 1
    assert condition(kit, pod, "Initialized")[0] == "True"  # initialization happened
    # kubectl shows the crashing sidecar, and counts its restarts.
    assert kubectl_row(kit, pod) == ["1/2", "Init:CrashLoopBackOff", "3"]
    assert "BackOff" in kit.events.reasons()


async def test_sidecar_probes_count_for_ready_and_restart_it(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = sidecar_pod("sleep infinity", init=("sleep infinity",), grace=3)
    proxy = pod.spec.init_containers[0]
    probe(proxy.readiness_probe, "proxy-ready", failure=1)
    probe(proxy.liveness_probe, "proxy-alive", failure=3)
    runtime.codes["proxy-ready"] = 1
    await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    await trio.sleep(3)
    assert condition(kit, pod, "Ready") == ("False", "containers with unready status: [init0]")
    assert container_status(kit.status_of(pod), "c0").ready
    runtime.codes["proxy-ready"] = 0
    await eventually(lambda: condition(kit, pod, "Ready")[0] == "True")
    runtime.codes["proxy-alive"] = 1
    await eventually(lambda: container_status(kit.status_of(pod), "init0").restart_count == 1)
    assert "Container init0 failed liveness probe, will be restarted" in [
        e[3] for e in kit.events.events
    ]
    assert container_status(kit.status_of(pod), "c0").restart_count == 0


@pytest.mark.parametrize(("code", "phase"), [(0, "Succeeded"), (3, "Failed")])
async def test_finished_app_containers_end_the_pod_and_stop_the_sidecars(
    tmp_path: Path,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
    runtime: ScriptedRuntime,
    code: int,
    phase: str,
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = sidecar_pod(
        f"sleep 5; exit {code}",
        init=("sleep infinity",),
        restart_policy="OnFailure" if code == 0 else "Never",
        grace=10,
    )
    pod.spec.init_containers[0].lifecycle.pre_stop.exec.command.extend(["check", "prestop"])
    worker = await start_worker(nursery, kit, pod)
    began = trio.current_time()
    await eventually(lambda: kit.status_of(pod).phase == phase)
    assert trio.current_time() - began == pytest.approx(5, abs=0.5)
    status = kit.status_of(pod)
    sidecar = container_status(status, "init0")
    assert sidecar.state.terminated.exit_code == 143 and sidecar.restart_count == 0
    assert container_status(status, "c0").state.terminated.exit_code == code
    assert [argv for _, argv in runtime.execs] == [("check", "prestop")]
    assert ("Normal", "Killing", "Stopping container init0") in [e[1:] for e in kit.events.events]
    await trio.sleep(120)  # nothing of a finished pod is started again
    assert worker.terminal == phase and kit.status_of(pod).phase == phase
    assert container_status(kit.status_of(pod), "init0").restart_count == 0
    assert not [i for i in await runtime.containers() if i.status.running]
    assert kit.ips.lookup(pod.metadata.uid) is None


async def test_deletion_stops_app_containers_then_sidecars_in_reverse_order(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, runtime: ScriptedRuntime
) -> None:
    kit = Kit(tmp_path, runtime=runtime)
    pod = sidecar_pod(
        "sleep infinity", init=("sleep infinity", "true", "sleep infinity"), sidecars=(0, 2)
    )
    for c in (pod.spec.init_containers[0], pod.spec.init_containers[2]):
        c.lifecycle.pre_stop.exec.command.extend(["check", c.name])
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["sh", "-c", "sleep 4"])
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    began = trio.current_time()
    worker.update(deleting(pod, grace=30))
    await worker.finished.wait()
    hooks = [(round(t - began, 3), argv[-1]) for t, argv in runtime.execs]
    # The app's preStop (4 s) and exit come first; then init2, then init0.
    assert hooks == [(0, "sleep 4"), (4, "init2"), (4, "init0")]
    assert kit.api.deleted == [("default", pod.metadata.name, 0, pod.metadata.uid)]


# --------------------------------------------------------------------------- end to end


async def test_sidecar_processes_start_first_and_stop_last(
    api: ApiClient,
    nursery: trio.Nursery,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    agent = await start_agent(nursery, api, tmp_path, process_runtime)
    out = tmp_path / "out"
    pod = bound_pod(
        "web",
        ns,
        agent.name,
        # Slow to stop: stopped together, the sidecar would write first.
        "trap 'sleep 0.5; echo app-stopped >> out/log; exit 0' TERM; echo app-started >> out/log;"
        " while true; do sleep 0.1; done",
        grace=10,
    )
    pod.spec.init_containers.add(
        name="proxy",
        image="busybox",
        restart_policy="Always",
        command=[
            "sh",
            "-c",
            "trap 'echo proxy-stopped >> out/log; exit 0' TERM; echo proxy-started >> out/log;"
            " while true; do sleep 0.1; done",
        ],
    )
    host_path_volume(pod, "out", out, "/out")
    await api.create(pod)

    current = await poll(lambda: in_phase(api, ns, "web"), timeout=20)
    proxy = current.status.init_container_statuses[0]
    assert proxy.name == "proxy" and proxy.state.HasField("running") and proxy.started
    assert lines(out / "log") == ["proxy-started", "app-started"]
    await api.delete(core_pb2.Pod, "web", namespace=ns, grace_period_seconds=10)

    await poll(lambda: gone(api, ns, "web"), timeout=20)
    assert lines(out / "log") == ["proxy-started", "app-started", "app-stopped", "proxy-stopped"]
