"""Fixtures shared by every test package."""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from proto import rpc

pytest_plugins = ["tests.support.apiserver_fixtures"]


def _trio_run_with_grpc_loop(fn: Callable[..., Any], *args: Any, **run_kwargs: Any) -> Any:
    """``trio.run`` for tests: the asyncio loop for gRPC opens before any fixture runs."""

    async def main() -> Any:
        async with rpc.open_loop():
            return await fn(*args)

    return trio.run(main, **run_kwargs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every async test runs in a trio run whose gRPC loop is open from the start, so its
    # fixtures, servers and clients share one loop (two in one run would both wait on
    # grpc's completion-queue fd).
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.trio(run=_trio_run_with_grpc_loop))


@pytest.fixture
async def rpc_loop() -> AsyncIterator[None]:
    """The test's gRPC loop (already open for every async test; kept for explicitness)."""
    async with rpc.open_loop():
        yield


# --------------------------------------------------------------------------- markers
#
# slow         runs only with RAFTSMAN_SLOW=1 (soaks; CI skips them)
# needs_etcd   needs `etcd` and `etcdctl` (Debian: etcd-server, etcd-client)
# needs_root   needs root (runc, network namespaces)
#
# A test whose tool is missing is skipped with the reason, unless RAFTSMAN_REQUIRE_ALL=1
# (set by .ci/run), where it fails instead: CI must never report a skip as a pass.

REQUIRE_ALL = os.environ.get("RAFTSMAN_REQUIRE_ALL") == "1"


def _missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("needs_etcd"):
        absent = [tool for tool in ("etcd", "etcdctl") if shutil.which(tool) is None]
        if absent:
            return f"needs {' and '.join(absent)} (apt-get install etcd-server etcd-client)"
    if item.get_closest_marker("needs_root") and os.geteuid() != 0:
        return "needs root"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slow") and os.environ.get("RAFTSMAN_SLOW") != "1":
        pytest.skip("slow: set RAFTSMAN_SLOW=1 to run")
    reason = _missing(item)
    if reason is not None:
        if REQUIRE_ALL:
            pytest.fail(f"RAFTSMAN_REQUIRE_ALL=1 but this test {reason}")
        pytest.skip(reason)
