"""Fixtures for the node agent tests in this folder: a process runtime whose containers
are killed when the test ends. The store, API server, client and namespace come from
:mod:`tests.support.apiserver_fixtures`; helpers that use them are in
:mod:`tests.node_agent.agent.apikit`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from node_agent.runtime.process import ProcessRuntime


@pytest.fixture
async def process_runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime under ``tmp_path/node/containers``; every container it still runs
    after the test is killed (by process group, through the runtime)."""
    runtime = ProcessRuntime(state_dir=tmp_path / "node" / "containers")
    try:
        yield runtime
    finally:
        with trio.CancelScope(shield=True):
            for info in await runtime.containers():
                if info.status.running:
                    await runtime.stop(info.id, grace=0)
