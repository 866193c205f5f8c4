"""A changed container image on a running pod: the kubelet recreates that container.

Unit tests run the pod worker on the sim runtime and trio's fake clock (exact timelines);
one end-to-end test changes a pod's image through a real API server and sees a node
agent on the process runtime replace the real process.
"""

from __future__ import annotations

from pathlib import Path

import trio

from actors.client import ApiClient
from node_agent.agent.containers import HASH_LABEL
from node_agent.pods.images import DEFAULT_PATH, Image, ImageCatalog
from node_agent.runtime.base import ContainerSpec
from node_agent.runtime.process import ProcessRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    container,
    events,
    get_pod,
    host_path_volume,
    lines,
    poll,
    start_agent,
)
from tests.node_agent.agent.kit import (
    Kit,
    ScriptedRuntime,
    container_status,
    eventually,
    make_pod,
    start_worker,
)


def with_image(pod: core_pb2.Pod, name: str, image: str) -> core_pb2.Pod:
    changed = core_pb2.Pod()
    changed.CopyFrom(pod)
    for c in (*changed.spec.init_containers, *changed.spec.containers):
        if c.name == name:
            c.image = image
    return changed


def killing(kit: Kit) -> list[str]:
    return [e[3] for e in kit.events.events if e[2] == "Killing"]


async def test_new_image_recreates_the_running_container_at_once(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    runtime = ScriptedRuntime()
    kit = Kit(tmp_path, runtime=runtime)
    pod = make_pod("sleep infinity", "sleep infinity", image="busybox:1.36", grace=20)
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["check", "prestop"])
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    first = container_status(kit.status_of(pod)).container_id
    changed = with_image(pod, "c0", "busybox:1.37")
    began = trio.current_time()
    worker.update(changed)
    await eventually(lambda: container_status(kit.status_of(pod)).restart_count == 1)
    assert trio.current_time() - began < 1  # no CrashLoopBackOff for a spec change
    c0 = container_status(kit.status_of(pod))
    assert c0.state.HasField("running") and c0.image == "busybox:1.37"
    assert c0.container_id != first
    assert c0.last_state.terminated.exit_code == 143  # stopped with SIGTERM
    assert killing(kit) == ["Container c0 definition changed, will be restarted"]
    assert [argv for _, argv in runtime.execs] == [("check", "prestop")]  # preStop ran
    # The other container is left alone; the new one records what it was made from.
    assert container_status(kit.status_of(pod), "c1").restart_count == 0
    (running,) = [
        i for i in await runtime.containers() if i.status.running and i.spec.container_name == "c0"
    ]
    assert running.spec.image == "busybox:1.37" and running.spec.labels[HASH_LABEL]
    # Nothing else changes afterwards: the spec and what runs agree.
    await trio.sleep(120)
    assert container_status(kit.status_of(pod)).restart_count == 1


async def test_new_image_skips_the_crash_loop_back_off(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep 1; exit 1")
    worker = await start_worker(nursery, kit, pod)
    await eventually(lambda: container_status(kit.status_of(pod)).restart_count == 3)
    await eventually(
        lambda: container_status(kit.status_of(pod)).state.waiting.reason == "CrashLoopBackOff"
    )
    began = trio.current_time()
    worker.update(with_image(pod, "c0", "busybox:fixed"))
    await eventually(lambda: container_status(kit.status_of(pod)).restart_count == 4)
    assert trio.current_time() - began < 1  # the 40 s back-off is not waited out
    assert container_status(kit.status_of(pod)).image == "busybox:fixed"


async def test_completed_and_finished_containers_are_not_run_again(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("true", "sleep infinity", init=("true",), restart_policy="Never")
    worker = await start_worker(nursery, kit, pod)
    await eventually(
        lambda: (
            container_status(kit.status_of(pod), "c0").state.HasField("terminated")
            and container_status(kit.status_of(pod), "c1").state.HasField("running")
        )
    )
    changed = with_image(with_image(pod, "init0", "busybox:2"), "c0", "busybox:2")
    worker.update(with_image(changed, "c1", "busybox:2"))
    # The running container is recreated even under restartPolicy Never ...
    await eventually(lambda: container_status(kit.status_of(pod), "c1").restart_count == 1)
    await trio.sleep(60)
    status = kit.status_of(pod)
    # ... but the completed init container and the exited app container stay as they were.
    init0 = container_status(status, "init0")
    assert init0.restart_count == 0 and init0.image == "busybox"
    assert init0.state.terminated.reason == "Completed"
    c0 = container_status(status, "c0")
    assert c0.restart_count == 0 and c0.state.terminated.reason == "Completed"
    assert killing(kit) == ["Container c1 definition changed, will be restarted"]
    assert status.phase == "Running"


async def test_restarted_agent_compares_with_what_runs(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", "sleep infinity")
    async with trio.open_nursery() as nursery:
        await start_worker(nursery, kit, pod)
        await eventually(lambda: kit.status_of(pod).phase == "Running")
        nursery.cancel_scope.cancel()  # the agent stops; the containers keep running
    # While no agent ran, c1's image was changed.
    changed = with_image(pod, "c1", "busybox:next")
    kit2 = Kit(tmp_path, runtime=kit.runtime)
    async with trio.open_nursery() as nursery:
        await start_worker(nursery, kit2, changed)
        await eventually(lambda: container_status(kit2.status_of(pod), "c1").restart_count == 1)
        await trio.sleep(30)
        assert container_status(kit2.status_of(pod), "c0").restart_count == 0
        assert container_status(kit2.status_of(pod), "c1").image == "busybox:next"
        assert killing(kit2) == ["Container c1 definition changed, will be restarted"]
        nursery.cancel_scope.cancel()


async def test_containers_from_before_the_hash_label_are_compared_by_image(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", image="busybox:1.36")
    meta = pod.metadata
    old_spec = ContainerSpec(
        pod_uid=meta.uid,
        pod_namespace=meta.namespace,
        pod_name=meta.name,
        container_name="c0",
        attempt=0,
        argv=("sh", "-c", "sleep infinity"),
        root_dir=tmp_path / "root",
        log_path=tmp_path / "c0.log",
        image="busybox:1.36",
        labels={"raftsman.io/node": "node-a"},
    )
    await kit.runtime.start(old_spec)
    await start_worker(nursery, kit, pod)
    await eventually(lambda: kit.status_of(pod).phase == "Running")
    await trio.sleep(30)
    assert container_status(kit.status_of(pod)).restart_count == 0
    assert killing(kit) == []


# --------------------------------------------------------------------------- end to end

GREETERS = ImageCatalog(
    {
        name: Image(
            name,
            command=("sh", "-c", f"echo {name} >> out/seen; exec sleep 3600"),
            env={"PATH": DEFAULT_PATH},
        )
        for name in ("greeter-one", "greeter-two")
    }
)


async def test_kubectl_set_image_replaces_the_process(
    api: ApiClient,
    nursery: trio.Nursery,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    agent = await start_agent(nursery, api, tmp_path, process_runtime, catalog=GREETERS)
    out = tmp_path / "out"
    pod = bound_pod("greeter", ns, agent.name, image="greeter-one", grace=5)
    del pod.spec.containers[0].command[:]  # the image's command runs
    host_path_volume(pod, "out", out, "/out")
    await api.create(pod)
    await poll(lambda: lines(out / "seen") == ["greeter-one"], timeout=20)
    current = await get_pod(api, ns, "greeter")
    assert current is not None
    first = (await process_runtime.containers())[0]
    current.spec.containers[0].image = "greeter-two"
    await api.update(current)
    await poll(lambda: lines(out / "seen") == ["greeter-one", "greeter-two"], timeout=20)

    async def restarted() -> core_pb2.ContainerStatus | None:
        c = container(await get_pod(api, ns, "greeter"))
        return c if c.restart_count == 1 and c.state.HasField("running") else None

    c = await poll(restarted, timeout=20)
    assert c.image == "greeter-two" and c.last_state.terminated.exit_code == 143
    old = await process_runtime.status(first.id)
    assert not old.running  # the first process is gone

    (event,) = await poll(lambda: events(api, ns, "Killing"))
    assert event.message == "Container c0 definition changed, will be restarted"
