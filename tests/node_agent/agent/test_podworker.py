"""The pod worker on the sim runtime and trio's fake clock: exact restart timelines."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node_agent.runtime.base import ContainerId, ContainerSpec
from node_agent.runtime.sim import SimRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.kit import (
    Kit,
    container_status,
    deleting,
    eventually,
    make_pod,
    start_worker,
)


def phase(kit: Kit, pod: core_pb2.Pod) -> str:
    return kit.status_of(pod).phase


async def test_running_pod_reports_kubernetes_status(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", env={"GREETING": "hi"})
    await start_worker(nursery, kit, pod)
    await eventually(lambda: phase(kit, pod) == "Running")
    status = kit.status_of(pod)
    c = container_status(status)
    assert c.state.HasField("running") and c.ready and c.started
    assert c.restart_count == 0 and c.container_id.startswith("sim://")
    assert status.pod_ip.startswith("127.64.9.") and status.host_ip == "127.0.0.1"
    assert {x.type: x.status for x in status.conditions} == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    assert status.HasField("start_time")
    (info,) = await kit.runtime.containers()
    assert info.spec.env["POD_IP"] == status.pod_ip and info.spec.env["GREETING"] == "hi"
    assert info.spec.argv == ("sh", "-c", "sleep infinity")
    assert kit.events.reasons() == ["Pulled", "Created", "Started"]


async def test_crash_loop_backoff_timeline(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep 1; exit 3")
    restarts: list[tuple[int, float]] = []

    def restarted() -> bool:
        c = container_status(kit.status_of(pod))
        if c.state.HasField("running") and (not restarts or restarts[-1][0] != c.restart_count):
            started = c.state.running.started_at.ToNanoseconds() / 1e9
            restarts.append((c.restart_count, started))
        return len(restarts) >= 5

    await start_worker(nursery, kit, pod)
    await eventually(restarted)
    restarts = [(n, round(t - restarts[0][1], 3)) for n, t in restarts]
    # Runs 1 s each time; restarts at once, then after 10, 20, 40 s of back-off.
    assert restarts == [(0, 0.0), (1, 1.0), (2, 12.0), (3, 33.0), (4, 74.0)]
    await eventually(
        lambda: container_status(kit.status_of(pod)).state.waiting.reason == "CrashLoopBackOff"
    )
    c = container_status(kit.status_of(pod))
    assert c.state.waiting.message.startswith("back-off 80s restarting failed container=c0 pod=")
    assert c.last_state.terminated.exit_code == 3 and c.last_state.terminated.reason == "Error"
    assert phase(kit, pod) == "Running"
    assert "BackOff" in kit.events.reasons()
    # Old attempts are removed from the runtime; the current and the previous one stay.
    assert len(await kit.runtime.containers()) <= 2


@pytest.mark.parametrize(
    ("policy", "script", "final_phase", "restarts"),
    [
        ("Never", "sleep 1; exit 0", "Succeeded", 0),
        ("Never", "sleep 1; exit 2", "Failed", 0),
        ("OnFailure", "sleep 1; exit 0", "Succeeded", 0),
    ],
)
async def test_restart_policy_final_phases(
    tmp_path: Path,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
    policy: str,
    script: str,
    final_phase: str,
    restarts: int,
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod(script, restart_policy=policy)
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: phase(kit, pod) == final_phase)
    c = container_status(kit.status_of(pod))
    assert c.state.terminated.exit_code == (0 if final_phase == "Succeeded" else 2)
    assert c.state.terminated.reason == ("Completed" if final_phase == "Succeeded" else "Error")
    assert c.restart_count == restarts
    # Terminal is final: nothing restarts, the pod IP is released.
    await trio.sleep(120)
    assert phase(kit, pod) == final_phase and worker.terminal == final_phase
    assert kit.ips.lookup(pod.metadata.uid) is None
    assert kit.status_of(pod).pod_ip  # still reported, as Kubernetes does


async def test_on_failure_restarts_until_success(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod(["sh", "-c", "sleep 1; exit 1"], restart_policy="OnFailure")
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: container_status(kit.status_of(pod)).restart_count == 2)
    # The container gets fixed (the sim reads SIM_EXIT_CODE on the next attempt).
    record = worker.record("c0")
    assert record is not None
    pod2 = core_pb2.Pod()
    pod2.CopyFrom(pod)
    pod2.spec.containers[0].env.add(name="SIM_EXIT_CODE", value="0")
    worker.update(pod2)
    await eventually(lambda: phase(kit, pod) == "Succeeded")
    assert container_status(kit.status_of(pod)).restart_count >= 3


async def test_init_containers_run_in_order_before_app_containers(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", init=("sleep 5", "sleep 5"))
    await start_worker(nursery, kit, pod)
    await eventually(
        lambda: container_status(kit.status_of(pod), "init0").state.HasField("running")
    )
    status = kit.status_of(pod)
    assert status.phase == "Pending"
    assert container_status(status, "init1").state.waiting.reason == "PodInitializing"
    assert container_status(status, "c0").state.waiting.reason == "PodInitializing"
    initialized = next(c for c in status.conditions if c.type == "Initialized")
    assert initialized.message == "containers with incomplete status: [init0 init1]"
    began = trio.current_time()
    await eventually(lambda: phase(kit, pod) == "Running")
    assert trio.current_time() - began == pytest.approx(10, abs=0.1)
    status = kit.status_of(pod)
    assert container_status(status, "init0").state.terminated.reason == "Completed"
    assert container_status(status, "init1").state.terminated.reason == "Completed"


async def test_failed_init_container_fails_a_never_pod(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", init=("exit 7",), restart_policy="Never")
    await start_worker(nursery, kit, pod)
    await eventually(lambda: phase(kit, pod) == "Failed")
    status = kit.status_of(pod)
    assert container_status(status, "init0").state.terminated.exit_code == 7
    assert container_status(status, "c0").state.waiting.reason == "PodInitializing"
    assert [i for i in await kit.runtime.containers() if i.spec.container_name == "c0"] == []


async def test_missing_config_map_then_it_appears(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity")
    ref = pod.spec.containers[0].env.add(name="LEVEL").value_from.config_map_key_ref
    ref.name, ref.key = "settings", "level"
    worker = await start_worker(nursery, kit, pod)
    await eventually(
        lambda: (
            container_status(kit.status_of(pod)).state.waiting.reason
            == "CreateContainerConfigError"
        )
    )
    assert (
        container_status(kit.status_of(pod)).state.waiting.message
        == 'configmap "settings" not found'
    )
    assert phase(kit, pod) == "Pending"
    config_map = core_pb2.ConfigMap()
    config_map.metadata.name, config_map.metadata.namespace = "settings", "default"
    config_map.data["level"] = "7"
    kit.sources.put(config_map)
    before = trio.current_time()
    worker.inputs_changed()
    await eventually(lambda: phase(kit, pod) == "Running")
    assert trio.current_time() - before < 1
    (info,) = await kit.runtime.containers()
    assert info.spec.env["LEVEL"] == "7"


async def test_unknown_image_without_command_backs_off(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("true", image="example.com/acme/app:v1")
    del pod.spec.containers[0].command[:]
    await start_worker(nursery, kit, pod)
    await eventually(
        lambda: container_status(kit.status_of(pod)).state.waiting.reason == "ErrImagePull"
    )
    assert "--image-catalog" in container_status(kit.status_of(pod)).state.waiting.message
    await eventually(
        lambda: container_status(kit.status_of(pod)).state.waiting.reason == "ImagePullBackOff"
    )
    assert await kit.runtime.containers() == []


async def test_start_error_is_a_terminated_attempt_then_crash_loop(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod(
        "sleep infinity",
        env={"SIM_START_ERROR": 'exec: "nope": executable file not found in $PATH'},
    )
    await start_worker(nursery, kit, pod)
    await eventually(
        lambda: container_status(kit.status_of(pod)).state.waiting.reason == "CrashLoopBackOff"
    )
    c = container_status(kit.status_of(pod))
    assert c.last_state.terminated.reason == "StartError"
    assert c.last_state.terminated.exit_code == 128
    assert "executable file not found" in c.last_state.terminated.message
    assert c.restart_count == 1


async def test_deletion_stops_containers_within_grace_then_deletes_with_uid(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", "sleep infinity", env={"SIM_IGNORE_TERM": "1"}, grace=30)
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: phase(kit, pod) == "Running")
    began = trio.current_time()
    worker.update(deleting(pod, grace=30))
    await worker.finished.wait()
    # Containers that ignore SIGTERM are killed when the grace period ends.
    assert trio.current_time() - began == pytest.approx(30, abs=0.1)
    assert kit.api.deleted == [("default", pod.metadata.name, 0, pod.metadata.uid)]
    assert await kit.runtime.containers() == []
    assert kit.ips.lookup(pod.metadata.uid) is None
    assert not (tmp_path / "pods" / pod.metadata.uid).exists()
    final = kit.status_of(pod)
    assert container_status(final).state.terminated.exit_code == 137
    assert kit.events.reasons().count("Killing") == 2


async def test_force_deletion_cuts_the_grace_period_short(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", env={"SIM_IGNORE_TERM": "1"}, grace=300)
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: phase(kit, pod) == "Running")
    began = trio.current_time()
    worker.update(deleting(pod, grace=300))
    await trio.sleep(5)
    worker.remove()  # the pod object was force-deleted
    await worker.finished.wait()
    assert trio.current_time() - began == pytest.approx(5 + kit.ctx.timings.force_grace, abs=0.1)
    assert kit.api.deleted == []  # the object is gone already


async def test_readoption_keeps_running_containers_and_restart_counts(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    runtime = SimRuntime()
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", "sleep 2; exit 1")
    async with trio.open_nursery() as nursery:
        await start_worker(nursery, kit, pod)
        await eventually(lambda: container_status(kit.status_of(pod), "c1").restart_count == 2)
        first = {
            i.spec.container_name: i.id for i in await runtime.containers() if i.status.running
        }
        nursery.cancel_scope.cancel()  # the agent stops: containers keep running
    assert [i.id for i in await runtime.containers() if i.status.running] != []
    kit2 = Kit(tmp_path, runtime=runtime)
    async with trio.open_nursery() as nursery:
        await start_worker(nursery, kit2, pod)
        await eventually(lambda: phase(kit2, pod) == "Running")
        c0 = container_status(kit2.status_of(pod), "c0")
        assert c0.container_id == f"sim://{first['c0']}" and c0.restart_count == 0
        assert container_status(kit2.status_of(pod), "c1").restart_count >= 2
        nursery.cancel_scope.cancel()


class ExplodingRuntime(SimRuntime):
    """A runtime with a bug: starting a container named "boom" raises."""

    async def start(self, spec: ContainerSpec) -> ContainerId:
        if spec.container_name == "c1":
            raise RuntimeError("bug in the runtime")
        return await super().start(spec)


async def test_a_bug_while_syncing_one_pod_is_reported_and_retried(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path, runtime=ExplodingRuntime())
    bad = make_pod("sleep infinity", "sleep infinity")
    good = make_pod("sleep infinity")
    bad_worker = await start_worker(nursery, kit, bad)
    await start_worker(nursery, kit, good)
    await eventually(lambda: phase(kit, good) == "Running")
    await eventually(lambda: bad_worker.syncs >= 4)
    assert "FailedSync" in kit.events.reasons()
    assert any("bug in the runtime" in e[3] for e in kit.events.events)


async def test_containers_that_exit_before_the_worker_looks_are_noticed_at_once(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", init=("true", "true"))
    began = trio.current_time()
    await start_worker(nursery, kit, pod)
    await eventually(lambda: phase(kit, pod) == "Running")
    assert trio.current_time() - began < 1  # not at the next periodic resync
