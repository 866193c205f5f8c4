"""Pods as real processes: a node agent on the process runtime, a real API server.

Each test's containers write what they see into a hostPath directory of the test, which
the test reads; every container is killed when the test ends (``process_runtime``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.client import ApiClient
from node_agent.agent.agent import NodeAgent
from node_agent.runtime.process import ProcessRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    container,
    events,
    get_pod,
    gone,
    host_path_volume,
    in_phase,
    lines,
    poll,
    start_agent,
)


@pytest.fixture
async def agent(
    nursery: trio.Nursery, api: ApiClient, tmp_path: Path, process_runtime: ProcessRuntime
) -> NodeAgent:
    """A node agent on the process runtime that also updates its Node status every second."""
    return await start_agent(
        nursery, api, tmp_path, process_runtime, node_status_update_frequency=1.0
    )


async def test_shell_pod_writes_exits_and_restarts_with_backoff(
    api: ApiClient, agent: NodeAgent, tmp_path: Path, ns: str
) -> None:
    out = tmp_path / "out"
    pod = bound_pod(
        "writer", ns, agent.name, 'echo "$POD_IP $HOSTNAME" >> out/lines; sleep 0.2; exit 3'
    )
    host_path_volume(pod, "out", out, "/out")
    await api.create(pod)

    async def restarted_twice() -> bool:
        c = container(await get_pod(api, ns, "writer"))
        return len(lines(out / "lines")) >= 3 and c.restart_count >= 2

    await poll(restarted_twice, timeout=60)

    async def backed_off() -> bool:
        return any(e.involved_object.name == "writer" for e in await events(api, ns, "BackOff"))

    await poll(backed_off, timeout=20)
    current = await get_pod(api, ns, "writer")
    assert current is not None
    ip = current.status.pod_ip
    assert ip.startswith("127.")
    assert all(line == f"{ip} writer" for line in lines(out / "lines"))
    last = container(current).last_state.terminated
    assert (last.exit_code, last.reason) == (3, "Error")
    assert current.status.phase == "Running"
    # The current attempt's log is where the runtime writes it.
    log = agent.logs_dir / f"{ns}_writer_{current.metadata.uid}" / "c0"
    assert log.is_dir()


async def test_env_from_config_map_and_secret_waits_for_them(
    api: ApiClient, agent: NodeAgent, tmp_path: Path, ns: str
) -> None:
    out = tmp_path / "out"
    pod = bound_pod(
        "envy", ns, agent.name, 'echo "$LEVEL/$TOKEN/$NODE/$GREETING" > out/env; sleep infinity'
    )
    c = pod.spec.containers[0]
    ref = c.env.add(name="LEVEL").value_from.config_map_key_ref
    ref.name, ref.key = "settings", "level"
    sref = c.env.add(name="TOKEN").value_from.secret_key_ref
    sref.name, sref.key = "creds", "token"
    c.env.add(name="NODE").value_from.field_ref.field_path = "spec.nodeName"
    c.env.add(name="GREETING", value="level $(LEVEL)")
    host_path_volume(pod, "out", out, "/out")
    await api.create(pod)

    async def config_error(message: str) -> bool:
        current = await get_pod(api, ns, "envy")
        waiting = container(current).state.waiting
        return (waiting.reason, waiting.message) == ("CreateContainerConfigError", message)

    await poll(lambda: config_error('configmap "settings" not found'))
    config_map = core_pb2.ConfigMap(api_version="v1", kind="ConfigMap")
    config_map.metadata.name, config_map.metadata.namespace = "settings", ns
    config_map.data["level"] = "9"
    await api.create(config_map)
    await poll(lambda: config_error('secret "creds" not found'))
    secret = core_pb2.Secret(api_version="v1", kind="Secret")
    secret.metadata.name, secret.metadata.namespace = "creds", ns
    secret.data["token"] = b"s3cret"
    await api.create(secret)
    await poll(lambda: lines(out / "env"), timeout=20)
    assert lines(out / "env") == [f"9/s3cret/{agent.name}/level 9"]


async def test_config_map_volume_follows_updates(
    api: ApiClient, agent: NodeAgent, tmp_path: Path, ns: str
) -> None:
    out = tmp_path / "out"
    config_map = core_pb2.ConfigMap(api_version="v1", kind="ConfigMap")
    config_map.metadata.name, config_map.metadata.namespace = "web", ns
    config_map.data["color"] = "blue"
    config_map = await api.create(config_map)
    pod = bound_pod(
        "reader", ns, agent.name, "while true; do cat etc/web/color > out/seen; sleep 0.05; done"
    )
    volume = pod.spec.volumes.add(name="config")
    volume.config_map.name = "web"
    pod.spec.containers[0].volume_mounts.add(name="config", mount_path="/etc/web", read_only=True)
    host_path_volume(pod, "out", out, "/out")
    await api.create(pod)
    await poll(lambda: lines(out / "seen") == ["blue"], timeout=20)
    config_map.data["color"] = "green"
    await api.update(config_map)
    await poll(lambda: lines(out / "seen") == ["green"], timeout=20)
    current = await get_pod(api, ns, "reader")
    assert container(current).restart_count == 0


async def test_init_containers_prepare_an_empty_dir_for_the_app(
    api: ApiClient, agent: NodeAgent, tmp_path: Path, ns: str
) -> None:
    out = tmp_path / "out"
    pod = bound_pod("app", ns, agent.name, "cat work/steps > out/steps; sleep infinity")
    pod.spec.init_containers.add(
        name="first", image="busybox", command=["sh", "-c", "echo one >> work/steps"]
    )
    pod.spec.init_containers.add(
        name="second", image="busybox", command=["sh", "-c", "echo two >> work/steps"]
    )
    pod.spec.volumes.add(name="work").empty_dir.SetInParent()
    for c in (*pod.spec.init_containers, *pod.spec.containers):
        c.volume_mounts.add(name="work", mount_path="/work")
    host_path_volume(pod, "out", out, "/out")
    await api.create(pod)
    await poll(lambda: lines(out / "steps"), timeout=20)
    assert lines(out / "steps") == ["one", "two"]
    current = await poll(lambda: in_phase(api, ns, "app"))
    assert [s.state.terminated.reason for s in current.status.init_container_statuses] == [
        "Completed"
    ] * 2
    # Deleting the pod removes its emptyDir with it.
    uid = current.metadata.uid
    await api.delete(core_pb2.Pod, "app", namespace=ns, grace_period_seconds=1)
    await poll(lambda: gone(api, ns, "app"), timeout=20)
    assert not (agent.data_dir / "pods" / uid).exists()


async def test_a_pod_that_cannot_start_does_not_disturb_others(
    api: ApiClient, agent: NodeAgent, ns: str
) -> None:
    bad = bound_pod("bad", ns, agent.name, ["/no/such/program"], restart_policy="Never")
    await api.create(bad)
    dir_bad = bound_pod("baddir", ns, agent.name, "sleep infinity")
    dir_bad.spec.containers[0].working_dir = "/no/such/dir"
    await api.create(dir_bad)
    await api.create(bound_pod("good", ns, agent.name, "sleep infinity"))
    await poll(lambda: in_phase(api, ns, "good"))
    failed = await poll(lambda: in_phase(api, ns, "bad", "Failed"))
    terminated = container(failed).state.terminated
    assert (terminated.reason, terminated.exit_code) == ("StartError", 128)
    assert 'exec: "/no/such/program"' in terminated.message

    async def start_error() -> core_pb2.ContainerStatus | None:
        c = container(await get_pod(api, ns, "baddir"))
        return c if c.last_state.terminated.reason == "StartError" else None

    c = await poll(start_error)
    assert "/no/such/dir" in c.last_state.terminated.message
