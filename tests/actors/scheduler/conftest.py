"""Fixtures for the scheduler's integration tests: the shared store, API server and
namespace (:mod:`tests.support.apiserver_fixtures`), and an :class:`ApiClient` that leaves a clean slate of
Nodes and pods (shared by every test on the store: all deleted after each test, so that
no pod of one test holds resources on a node of the same name in the next)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actors.client import ApiClient, NotFound, open_api_client
from proto import rpc


@pytest.fixture
async def api(server: rpc.Server) -> AsyncIterator[ApiClient]:
    async with open_api_client(server.address, timeout=20) as client:
        yield client
        for pod in (await client.list("pods")).items:
            try:
                await client.delete(
                    "pods",
                    pod.metadata.name,
                    namespace=pod.metadata.namespace,
                    grace_period_seconds=0,
                )
            except NotFound:
                pass
        for node in (await client.list("nodes")).items:
            try:
                await client.delete("nodes", node.metadata.name)
            except NotFound:
                pass
