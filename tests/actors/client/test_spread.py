"""Clients spread over the API servers: where a client starts, and that it still fails over."""

from __future__ import annotations

from functools import partial

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import open_api_client
from actors.client.spread import first_index
from proto import rpc
from tests.support.ports import free_port

from .conftest import make

NODES = [f"node-{i}" for i in range(20)]


def test_an_identity_always_starts_at_the_same_address() -> None:
    for count in (2, 3, 5):
        for name in NODES:
            assert first_index(count, identity=name) == first_index(count, identity=name)
            assert 0 <= first_index(count, identity=name) < count


def test_different_identities_spread_over_every_address() -> None:
    for count in (2, 3):
        starts = [first_index(count, identity=name) for name in NODES]
        assert set(starts) == set(range(count))
        # no address takes more than twice its share of twenty names
        assert max(starts.count(i) for i in range(count)) <= 2 * len(NODES) / count


def test_without_identity_the_start_is_random_and_in_order_is_the_first() -> None:
    assert {first_index(2) for _ in range(64)} == {0, 1}
    assert {first_index(3, in_order=True) for _ in range(16)} == {0}
    assert first_index(1, identity="node-0") == 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 address"):
        first_index(0)
    with pytest.raises(ValueError, match="identity or in_order"):
        first_index(2, identity="node-0", in_order=True)


def _starting_at(index: int, count: int) -> str:
    return next(name for name in NODES if first_index(count, identity=name) == index)


async def test_clients_with_different_identities_use_different_servers(
    nursery: trio.Nursery, server: rpc.Server, store: tuple[str, ...], ns: str
) -> None:
    second: rpc.Server = await nursery.start(partial(run_apiserver, etcd_endpoints=store))
    addresses = [server.address, second.address]
    used = set()
    for index in (0, 1):
        async with open_api_client(addresses, identity=_starting_at(index, 2), timeout=10) as api:
            assert (await api.get("namespaces", ns)).metadata.name == ns
            used.add(api.address)
    assert used == set(addresses)


async def test_a_client_whose_first_server_is_down_fails_over(server: rpc.Server, ns: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    addresses = [dead, server.address]
    name = _starting_at(0, 2)
    async with open_api_client(addresses, identity=name, timeout=10) as api:
        assert api.address == dead  # where this identity starts
        assert (await api.get("namespaces", ns)).metadata.name == ns
        assert api.address == server.address
    # A write whose first address is down never left: it goes to the live server.
    async with open_api_client(addresses, identity=name, timeout=10) as api:
        cm = await api.create(make("ConfigMap", "spread", ns))
        assert cm.metadata.uid and api.address == server.address
