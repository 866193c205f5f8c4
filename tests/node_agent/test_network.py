"""Pod IP allocation: range rules, idempotence, persistence, exhaustion, bindability."""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import socket
from pathlib import Path

import pytest

from node_agent.network import (
    AddressNotBindable,
    InvalidPodCIDR,
    PodIPAllocator,
    PodIPsExhausted,
    PodIPStateError,
    check_bindable,
    parse_pod_cidr,
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "agent" / "pod-ips.json"


def test_skips_network_gateway_and_broadcast(state: Path) -> None:
    alloc = PodIPAllocator("127.64.3.0/24", state)
    assert alloc.capacity == 253
    assert alloc.gateway == "127.64.3.1"
    ips = [alloc.allocate(f"pod-{i}") for i in range(alloc.capacity)]
    assert ips[0] == "127.64.3.2"
    assert ips[-1] == "127.64.3.254"
    assert len(set(ips)) == 253
    assert not {"127.64.3.0", "127.64.3.1", "127.64.3.255"} & set(ips)
    assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("127.64.3.0/24") for ip in ips)


def test_allocate_is_idempotent_and_release_frees(state: Path) -> None:
    alloc = PodIPAllocator("127.64.3.0/24", state)
    first = alloc.allocate("a")
    assert alloc.allocate("a") == first
    assert alloc.lookup("a") == first
    alloc.release("a")
    assert alloc.lookup("a") is None
    alloc.release("a")  # nothing held: no error
    alloc.release("never-allocated")
    assert alloc.allocations() == {}


def test_released_address_is_reused_last(state: Path) -> None:
    alloc = PodIPAllocator("127.64.3.0/29", state)  # .2 .. .6: five pods
    a, b = alloc.allocate("a"), alloc.allocate("b")
    alloc.release("a")
    later = [alloc.allocate(uid) for uid in ("c", "d", "e")]
    assert a not in later and b not in later
    # Only a's old address is left; it comes back once the range wrapped around.
    assert alloc.allocate("f") == a


def test_exhausted_range_raises_typed_error(state: Path) -> None:
    alloc = PodIPAllocator("127.64.3.0/30", state)
    assert alloc.capacity == 1
    assert alloc.allocate("a") == "127.64.3.2"
    with pytest.raises(PodIPsExhausted, match=r"127\.64\.3\.0/30 is full: all 1 pod"):
        alloc.allocate("b")
    assert alloc.lookup("b") is None
    alloc.release("a")
    assert alloc.allocate("b") == "127.64.3.2"


def test_state_survives_restart(state: Path) -> None:
    alloc = PodIPAllocator("127.64.7.0/24", state)
    held = {uid: alloc.allocate(uid) for uid in ("a", "b", "c")}
    alloc.release("b")
    del held["b"]

    again = PodIPAllocator("127.64.7.0/24", state)
    assert again.allocations() == held
    assert again.allocate("a") == held["a"]
    # The walk continues after the last address handed out, not from the start.
    assert again.allocate("d") == "127.64.7.5"


def test_changed_cidr_drops_addresses_outside_it(
    state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = PodIPAllocator("127.64.7.0/24", state)
    old.allocate("a")
    with caplog.at_level(logging.WARNING):
        new = PodIPAllocator("127.64.8.0/24", state)
    assert new.allocations() == {}
    assert "pod a held 127.64.7.2, outside the node's pod CIDR 127.64.8.0/24" in caplog.text
    assert new.allocate("a") == "127.64.8.2"


def test_corrupt_state_file_is_a_clear_error(state: Path) -> None:
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    with pytest.raises(PodIPStateError, match="is corrupt .*delete the file to start over"):
        PodIPAllocator("127.64.7.0/24", state)
    state.write_text(json.dumps({"version": 1, "allocations": {"a": "banana"}}))
    with pytest.raises(PodIPStateError, match="is corrupt"):
        PodIPAllocator("127.64.7.0/24", state)
    both = {"a": "127.64.7.2", "b": "127.64.7.2"}
    state.write_text(json.dumps({"version": 1, "allocations": both}))
    with pytest.raises(PodIPStateError, match=r"127\.64\.7\.2 is held by two pods"):
        PodIPAllocator("127.64.7.0/24", state)


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("127.64.3.0/33", "invalid pod CIDR"),
        ("127.64.3.5/24", "has host bits set"),
        ("10.0.0.0/24", r"must lie inside 127\.0\.0\.0/8"),
        ("::1/128", r"must lie inside 127\.0\.0\.0/8"),
        ("127.64.3.0/31", "too small"),
    ],
)
def test_bad_cidr_is_rejected(cidr: str, message: str, state: Path) -> None:
    with pytest.raises(InvalidPodCIDR, match=message):
        PodIPAllocator(cidr, state)
    assert not state.exists()


def test_parse_default_cluster_cidr() -> None:
    assert parse_pod_cidr("127.64.0.0/12").num_addresses == 2**20


def test_empty_uid_is_rejected(state: Path) -> None:
    with pytest.raises(ValueError, match="pod uid must be a non-empty string"):
        PodIPAllocator("127.64.3.0/24", state).allocate("")


def test_allocated_address_is_bindable_and_reachable(state: Path) -> None:
    third = random.randrange(0, 256)
    ip = PodIPAllocator(f"127.64.{third}.0/24", state).allocate("web")
    check_bindable(ip)
    with socket.create_server((ip, 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection((ip, port), timeout=5):
            conn, peer = server.accept()
            conn.close()


def test_non_local_address_is_not_bindable() -> None:
    with pytest.raises(AddressNotBindable, match=r"cannot bind 192\.0\.2\.1: .*not configured"):
        check_bindable("192.0.2.1")
    with pytest.raises(ValueError, match="not an IPv4 address"):
        check_bindable("pod-a")
