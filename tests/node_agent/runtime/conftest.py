"""Fixtures for runtime tests: a process runtime in a temporary directory, always cleaned up."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from node_agent.runtime import procfs
from node_agent.runtime.base import ContainerSpec, ContainerState
from node_agent.runtime.process import ProcessRuntime

PATH = "/usr/local/bin:/usr/bin:/bin"

SpecFactory = Callable[..., ContainerSpec]


@pytest.fixture
def make_spec(tmp_path: Path) -> SpecFactory:
    """``make_spec(name, argv, **fields)``: a spec with its root and log under ``tmp_path``."""

    def make(name: str, argv: tuple[str, ...] | list[str], **fields: object) -> ContainerSpec:
        attempt = int(fields.pop("attempt", 0))  # type: ignore[call-overload]
        values: dict[str, object] = {
            "pod_uid": "uid-1",
            "pod_namespace": "default",
            "pod_name": "pod",
            "container_name": name,
            "attempt": attempt,
            "argv": tuple(argv),
            "root_dir": tmp_path / "pods" / name / "root",
            "log_path": tmp_path / "logs" / name / f"{attempt}.log",
            "env": {"PATH": PATH},
        }
        values.update(fields)
        return ContainerSpec(**values)  # type: ignore[arg-type]

    return make


def _kill_everything(state_dir: Path) -> None:
    """Last resort after a test: SIGKILL every container group and shim it left running."""
    import json

    if not state_dir.exists():
        return
    for entry in state_dir.iterdir():
        started = entry / "started.json"
        if not started.exists():
            continue
        data = json.loads(started.read_text())
        if procfs.is_running(data["pid"], data["pid_start"]):
            try:
                os.killpg(data["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        if procfs.is_running(data["shim_pid"], data["shim_start"]):
            os.kill(data["shim_pid"], signal.SIGKILL)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime (best enforcement available); its containers are stopped after."""
    state_dir = tmp_path / "containers"
    runtime = ProcessRuntime(state_dir=state_dir)
    try:
        yield runtime
    finally:
        try:
            survivor = ProcessRuntime(state_dir=state_dir, enforcement=runtime.enforcement)
            for info in await survivor.containers():
                if info.status.state is ContainerState.RUNNING:
                    await survivor.stop(info.id, grace=0)
                await survivor.remove(info.id)
        finally:
            _kill_everything(state_dir)
