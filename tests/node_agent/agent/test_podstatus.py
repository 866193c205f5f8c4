"""Pod phase and conditions from container statuses, as the kubelet computes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node_agent.agent.containers import ContainerRecord, Waiting, render
from node_agent.agent.podstatus import pod_phase, pod_status
from node_agent.runtime.base import ContainerId, ContainerState, ContainerStatus
from proto.k8s import core_pb2

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def running(name: str = "main", *, ready: bool = True) -> core_pb2.ContainerStatus:
    record = ContainerRecord(
        name=name,
        image="busybox",
        attempt=0,
        container_id=ContainerId("abc"),
        status=ContainerStatus(id=ContainerId("abc"), state=ContainerState.RUNNING, started_at=T0),
        ready=ready,
        started=True,
    )
    return render(record, runtime="sim")


def exited(
    name: str = "main", code: int = 0, *, restarting: bool = False, attempt: int = 0
) -> core_pb2.ContainerStatus:
    status = ContainerStatus(
        id=ContainerId("abc"),
        state=ContainerState.EXITED,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=5),
        exit_code=code,
        reason="Completed" if code == 0 else "Error",
    )
    record = ContainerRecord(
        name=name,
        image="busybox",
        attempt=attempt,
        container_id=ContainerId("abc"),
        status=status,
        waiting=Waiting("CrashLoopBackOff", "back-off 10s") if restarting else None,
    )
    return render(record, runtime="sim")


def waiting(name: str = "main", reason: str = "") -> core_pb2.ContainerStatus:
    record = ContainerRecord(
        name=name, image="busybox", waiting=Waiting(reason) if reason else None
    )
    return render(record, runtime="sim")


@pytest.mark.parametrize(
    ("policy", "statuses", "phase"),
    [
        ("Always", [waiting()], "Pending"),
        ("Always", [running()], "Running"),
        ("Always", [running("a"), waiting("b")], "Pending"),
        ("Always", [exited(code=0)], "Running"),
        ("Never", [exited(code=0)], "Succeeded"),
        ("Never", [exited(code=1)], "Failed"),
        ("Never", [exited("a", 0), exited("b", 2)], "Failed"),
        ("Never", [exited("a", 0), running("b")], "Running"),
        ("OnFailure", [exited(code=0)], "Succeeded"),
        ("OnFailure", [exited(code=1, restarting=True, attempt=1)], "Running"),
        ("Always", [exited(code=1, restarting=True, attempt=3)], "Running"),
        ("Always", [waiting(reason="CreateContainerConfigError")], "Pending"),
    ],
)
def test_phase(policy: str, statuses: list[core_pb2.ContainerStatus], phase: str) -> None:
    assert pod_phase(policy, [], statuses, init_count=0, app_count=len(statuses)) == phase


def test_phase_with_init_containers() -> None:
    apps = [waiting(reason="PodInitializing")]
    assert pod_phase("Always", [running("init")], apps, init_count=1, app_count=1) == "Pending"
    assert pod_phase("Never", [exited("init", 1)], apps, init_count=1, app_count=1) == "Failed"
    restarting = exited("init", 1, restarting=True, attempt=1)
    assert pod_phase("Always", [restarting], apps, init_count=1, app_count=1) == "Pending"
    assert (
        pod_phase("Always", [exited("init", 0)], [running()], init_count=1, app_count=1)
        == "Running"
    )


def test_crash_loop_rendering_shows_the_last_exit() -> None:
    status = exited(code=3, restarting=True, attempt=2)
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error"
    assert status.restart_count == 2
    assert status.container_id == "sim://abc"
    assert not status.ready


def test_not_ready_conditions_name_the_containers() -> None:
    pod = core_pb2.Pod()
    pod.spec.containers.add(name="a")
    pod.spec.containers.add(name="b")
    pod.spec.restart_policy = "Always"
    status = pod_status(
        pod,
        init_statuses=[],
        statuses=[running("a"), running("b", ready=False)],
        pod_ip="127.64.0.2",
        host_ip="127.0.0.1",
        start_time=T0,
        now=T0,
    )
    conditions = {c.type: c for c in status.conditions}
    assert [c.type for c in status.conditions] == [
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert conditions["Ready"].status == "False"
    assert conditions["Ready"].reason == "ContainersNotReady"
    assert conditions["Ready"].message == "containers with unready status: [b]"
    assert conditions["Initialized"].status == "True"
    assert status.pod_ip == "127.64.0.2" and [ip.ip for ip in status.pod_ips] == ["127.64.0.2"]

    # A later status keeps transition times of unchanged conditions.
    pod.status.CopyFrom(status)
    later = pod_status(
        pod,
        init_statuses=[],
        statuses=[running("a"), running("b")],
        pod_ip="127.64.0.2",
        host_ip="127.0.0.1",
        start_time=T0,
        now=T0 + timedelta(minutes=1),
    )
    after = {c.type: c for c in later.conditions}
    assert after["Ready"].status == "True"
    assert after["Ready"].last_transition_time.ToDatetime(UTC) == T0 + timedelta(minutes=1)
    assert after["Initialized"].last_transition_time.ToDatetime(UTC) == T0


def test_succeeded_pod_is_not_ready_with_reason_pod_completed() -> None:
    pod = core_pb2.Pod()
    pod.spec.containers.add(name="main")
    pod.spec.restart_policy = "Never"
    status = pod_status(
        pod, init_statuses=[], statuses=[exited()], pod_ip="", host_ip="h", start_time=T0, now=T0
    )
    assert status.phase == "Succeeded"
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "PodCompleted")


def test_init_condition_lists_incomplete_init_containers() -> None:
    pod = core_pb2.Pod()
    pod.spec.init_containers.add(name="one")
    pod.spec.init_containers.add(name="two")
    pod.spec.containers.add(name="main")
    status = pod_status(
        pod,
        init_statuses=[exited("one", 0), running("two")],
        statuses=[waiting(reason="PodInitializing")],
        pod_ip="",
        host_ip="h",
        start_time=T0,
        now=T0,
    )
    initialized = next(c for c in status.conditions if c.type == "Initialized")
    assert (initialized.status, initialized.reason) == ("False", "ContainersNotInitialized")
    assert initialized.message == "containers with incomplete status: [two]"
    assert status.phase == "Pending"
