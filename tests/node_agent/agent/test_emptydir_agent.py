"""emptyDir ``medium: Memory`` and ``sizeLimit`` through a real node agent: real processes
on the process runtime, a real API server on a real raftstore member."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from actors.client import ApiClient
from node_agent.agent.agent import NodeAgent
from node_agent.pods.volumes import MEMORY_ROOT, filesystem_type
from node_agent.runtime.process import ProcessRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import bound_pod, events, get_pod, in_phase, poll, start_agent


@pytest.fixture
async def agent(
    nursery: trio.Nursery, api: ApiClient, tmp_path: Path, process_runtime: ProcessRuntime
) -> AsyncIterator[NodeAgent]:
    """A node agent on the process runtime; its memory volumes are removed after the test."""
    started = await start_agent(
        nursery,
        api,
        tmp_path,
        process_runtime,
        node_status_update_frequency=1.0,
        eviction_period=0.5,
    )
    try:
        yield started
    finally:
        if started.volumes is not None:
            location = started.volumes.memory_location()
            if location is not None:
                shutil.rmtree(location, ignore_errors=True)


def empty_dir(pod: core_pb2.Pod, name: str, mount_path: str, **fields: str) -> None:
    volume = pod.spec.volumes.add(name=name)
    volume.empty_dir.SetInParent()
    for key, value in fields.items():
        setattr(volume.empty_dir, key, value)
    for c in pod.spec.containers:
        c.volume_mounts.add(name=name, mount_path=mount_path)


async def test_a_pod_writing_past_its_emptydir_size_limit_is_evicted(
    api: ApiClient, agent: NodeAgent, ns: str, process_runtime: ProcessRuntime
) -> None:
    pod = bound_pod(
        "filler",
        ns,
        agent.name,
        "head -c 2097152 /dev/zero > data/blob && echo written > data/done; sleep infinity",
        grace=1,
    )
    empty_dir(pod, "scratch", "/data", size_limit="1Mi")
    await api.create(pod)

    current = await poll(lambda: in_phase(api, ns, "filler", "Failed"), timeout=30)
    assert current.status.reason == "Evicted"
    assert current.status.message == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    uid = current.metadata.uid

    async def stopped() -> bool:
        return not any(
            info.status.running and info.spec.pod_uid == uid
            for info in await process_runtime.containers()
        )

    await poll(stopped, timeout=20)
    assert any(
        e.type == "Warning" and e.involved_object.name == "filler"
        for e in await events(api, ns, "Evicted")
    )
    assert agent.eviction is not None
    assert [(o.pod, o.volume, o.limit) for o in agent.eviction.evicted] == [
        (f"{ns}/filler", "scratch", "1Mi")
    ]
    assert agent.eviction.evicted[0].used > 1024 * 1024


async def test_a_memory_medium_emptydir_is_on_tmpfs_and_goes_with_the_pod(
    api: ApiClient, agent: NodeAgent, ns: str
) -> None:
    if filesystem_type(MEMORY_ROOT) != "tmpfs":
        pytest.skip(f"{MEMORY_ROOT} is not a tmpfs here")
    pod = bound_pod("ram", ns, agent.name, "echo hello > cache/greeting; sleep infinity", grace=1)
    empty_dir(pod, "cache", "/cache", medium="Memory")
    await api.create(pod)
    current = await poll(lambda: get_pod(api, ns, "ram"))
    assert agent.volumes is not None
    path = agent.volumes.emptydir_path(current, "cache")
    assert path is not None and path.is_relative_to(MEMORY_ROOT)
    greeting = path / "greeting"
    await poll(lambda: greeting.exists() and greeting.read_text() == "hello\n")
    assert filesystem_type(greeting) == "tmpfs"
    await api.delete(core_pb2.Pod, "ram", namespace=ns)
    await poll(lambda: not path.parent.exists(), timeout=20)
