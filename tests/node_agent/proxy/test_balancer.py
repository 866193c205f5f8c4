"""Balancer: round robin, ClientIP affinity with its timeout, consistency across proxies."""

from __future__ import annotations

import pytest

from node_agent.proxy.balancer import DEFAULT_AFFINITY_TIMEOUT, Balancer
from node_agent.proxy.table import Backend

A, B, C, D = (Backend(f"127.64.0.{i}", 8080) for i in (2, 3, 4, 5))


def firsts(balancer: Balancer, n: int, client: str = "127.0.0.1", now: float = 0.0) -> list:
    return [balancer.pick(client, now=now)[0] for _ in range(n)]


def test_round_robin_with_fallback_order() -> None:
    balancer = Balancer([A, B, C])
    assert balancer.pick("127.0.0.1", now=0) == [A, B, C]
    assert balancer.pick("127.0.0.1", now=0) == [B, C, A]
    assert balancer.pick("127.0.0.9", now=0) == [C, A, B]
    assert firsts(balancer, 3) == [A, B, C]


def test_new_backends_keep_position_and_removed_ones_are_never_picked() -> None:
    balancer = Balancer([A, B, C])
    assert firsts(balancer, 2) == [A, B]
    balancer.set_backends([A, C])
    assert firsts(balancer, 4) == [A, C, A, C]
    balancer.set_backends([A, C, D])
    assert set(firsts(balancer, 3)) == {A, C, D}
    balancer.set_backends([])
    assert balancer.pick("127.0.0.1", now=0) == []


def test_client_ip_affinity_sticks_until_timeout() -> None:
    balancer = Balancer([A, B, C], client_ip_affinity=True, affinity_timeout=100)
    first = balancer.pick("127.5.0.1", now=0)[0]
    balancer.connected("127.5.0.1", first, now=0)
    # Each connection refreshes the affinity: 99 s apart, for a long time.
    for t in range(99, 1000, 99):
        assert balancer.pick("127.5.0.1", now=t)[0] == first
        balancer.connected("127.5.0.1", first, now=t)
    assert balancer.affinity_of("127.5.0.1", now=990 + 99.9) == first
    assert balancer.affinity_of("127.5.0.1", now=990 + 100) is None


def test_affinity_released_when_backend_leaves_or_refuses() -> None:
    balancer = Balancer([A, B, C], client_ip_affinity=True)
    first = balancer.pick("127.5.0.1", now=0)[0]
    balancer.connected("127.5.0.1", first, now=0)
    rest = [b for b in (A, B, C) if b != first]
    balancer.set_backends(rest)
    assert balancer.affinity_of("127.5.0.1", now=1) is None
    second = balancer.pick("127.5.0.1", now=1)
    assert set(second) == set(rest)
    # The first choice refused, the proxy got through to the next one: stick to that.
    balancer.connected("127.5.0.1", second[1], now=1)
    assert balancer.pick("127.5.0.1", now=2)[0] == second[1]
    # The backend it left coming back does not move it.
    balancer.set_backends([A, B, C])
    assert balancer.pick("127.5.0.1", now=3)[0] == second[1]


def test_new_clients_are_assigned_alike_by_every_proxy() -> None:
    # Two proxies (each with its own balancer and history) see the same ready backends.
    one = Balancer([A, B, C, D], client_ip_affinity=True)
    two = Balancer([D, C, B, A], client_ip_affinity=True)
    one.pick("127.9.9.9", now=0)  # unrelated history
    clients = [f"127.5.{i}.{j}" for i in range(4) for j in range(1, 9)]
    assert [one.pick(c, now=0)[0] for c in clients] == [two.pick(c, now=0)[0] for c in clients]
    # ... and spread them over all backends.
    assert {one.pick(c, now=0)[0] for c in clients} == {A, B, C, D}


def test_turning_affinity_off_forgets_clients() -> None:
    balancer = Balancer([A, B], client_ip_affinity=True)
    balancer.connected("127.5.0.1", B, now=0)
    balancer.configure(client_ip_affinity=False, affinity_timeout=DEFAULT_AFFINITY_TIMEOUT)
    assert balancer.affinity_of("127.5.0.1", now=0) is None
    assert {balancer.pick("127.5.0.1", now=0)[0] for _ in range(2)} == {A, B}


def test_default_timeout_is_kubernetes() -> None:
    assert DEFAULT_AFFINITY_TIMEOUT == 10800
    balancer = Balancer([A, B], client_ip_affinity=True)
    balancer.connected("127.5.0.1", B, now=0)
    assert balancer.affinity_of("127.5.0.1", now=10799) == B
    assert balancer.affinity_of("127.5.0.1", now=10800) is None


def test_bad_timeout_rejected() -> None:
    with pytest.raises(ValueError, match="affinity_timeout must be positive, not 0"):
        Balancer([A], affinity_timeout=0)
