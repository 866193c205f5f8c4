"""Daemon pod placement, template hashes and maxUnavailable (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.daemonset import (
    daemon_tolerations,
    max_unavailable,
    placement,
    template_hash,
    tolerates,
)
from proto.k8s import core_pb2, kinds


def node(name: str = "n1", *taints: tuple[str, str, str], **labels: str) -> Any:
    out = kinds.by_kind("Node").new()
    out.metadata.name = name
    out.metadata.labels.update(labels)
    for key, value, effect in taints:
        out.spec.taints.add(key=key, value=value, effect=effect)
    return out


def spec(**labels: str) -> Any:
    out = core_pb2.PodSpec()
    out.node_selector.update(labels)
    out.containers.add(name="main", image="agent")
    return out


def toleration(key: str = "", value: str = "", effect: str = "", operator: str = "") -> Any:
    return core_pb2.Toleration(key=key, value=value, effect=effect, operator=operator)


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Any:
    return core_pb2.Taint(key=key, value=value, effect=effect)


@pytest.mark.parametrize(
    ("tol", "t", "expected"),
    [
        (toleration("gpu", "yes", "NoSchedule"), taint("gpu", "yes"), True),
        (toleration("gpu", "no", "NoSchedule"), taint("gpu", "yes"), False),
        (toleration("gpu", operator="Exists"), taint("gpu", "anything"), True),
        (toleration("gpu", "yes", "NoExecute"), taint("gpu", "yes"), False),
        (toleration(operator="Exists"), taint("whatever", "x", "NoExecute"), True),
        (toleration("other", operator="Exists"), taint("gpu"), False),
        (toleration("gpu", "yes", operator="Equal"), taint("gpu", "yes", "NoExecute"), True),
    ],
)
def test_toleration_matching(tol: Any, t: Any, expected: bool) -> None:
    assert tolerates(tol, t) is expected


def test_unknown_toleration_operator_is_named() -> None:
    with pytest.raises(ValueError, match="unknown toleration operator 'Maybe'"):
        tolerates(toleration("k", operator="Maybe"), taint("k"))


def test_node_selector_decides() -> None:
    assert placement(spec(disk="ssd"), node(disk="ssd")).should_run
    outside = placement(spec(disk="ssd"), node(disk="hdd"))
    assert (outside.should_run, outside.should_continue_running) == (False, False)


def test_required_node_affinity() -> None:
    s = spec()
    terms = s.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    term = terms.node_selector_terms.add()
    term.match_expressions.add(key="zone", operator="In", values=["a", "b"])
    term.match_expressions.add(key="cores", operator="Gt", values=["4"])
    assert placement(s, node(zone="a", cores="8")).should_run
    assert not placement(s, node(zone="c", cores="8")).should_run
    assert not placement(s, node(zone="a", cores="2")).should_run
    # Terms are alternatives.
    other = terms.node_selector_terms.add()
    other.match_fields.add(key="metadata.name", operator="In", values=["special"])
    assert placement(s, node("special")).should_run
    assert not placement(s, node("ordinary")).should_run


def test_template_node_name_pins_the_node() -> None:
    s = spec()
    s.node_name = "n2"
    assert not placement(s, node("n1")).should_run
    assert placement(s, node("n2")).should_run


def test_no_schedule_taint_keeps_new_pods_off_but_lets_old_ones_stay() -> None:
    tainted = node("n1", ("dedicated", "db", "NoSchedule"))
    p = placement(spec(), tainted)
    assert (p.should_run, p.should_continue_running) == (False, True)
    tolerant = spec()
    tolerant.tolerations.add(key="dedicated", operator="Equal", value="db", effect="NoSchedule")
    assert placement(tolerant, tainted).should_run


def test_no_execute_taint_evicts() -> None:
    p = placement(spec(), node("n1", ("maintenance", "", "NoExecute")))
    assert (p.should_run, p.should_continue_running) == (False, False)


def test_prefer_no_schedule_is_ignored() -> None:
    assert placement(spec(), node("n1", ("slow", "", "PreferNoSchedule"))).should_run


@pytest.mark.parametrize(
    ("key", "effect"),
    [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ],
)
def test_daemons_tolerate_node_trouble_and_cordons(key: str, effect: str) -> None:
    assert placement(spec(), node("n1", (key, "", effect))).should_run


def test_network_unavailable_only_with_host_network() -> None:
    trouble = node("n1", ("node.kubernetes.io/network-unavailable", "", "NoSchedule"))
    assert not placement(spec(), trouble).should_run
    host = spec()
    host.host_network = True
    assert placement(host, trouble).should_run


def test_automatic_tolerations_have_no_time_limit_and_are_not_doubled() -> None:
    s = spec()
    s.tolerations.add(
        key="node.kubernetes.io/unreachable",
        operator="Exists",
        effect="NoExecute",
        toleration_seconds=60,
    )
    tolerations = daemon_tolerations(s)
    unreachable = [t for t in tolerations if t.key == "node.kubernetes.io/unreachable"]
    assert len(unreachable) == 1 and unreachable[0].toleration_seconds == 60
    not_ready = [t for t in tolerations if t.key == "node.kubernetes.io/not-ready"]
    assert len(not_ready) == 1 and not not_ready[0].HasField("toleration_seconds")
    assert len(tolerations) == 6


def test_template_hash_is_stable_and_follows_changes() -> None:
    a = core_pb2.PodTemplateSpec()
    a.metadata.labels.update({"app": "agent", "tier": "node"})
    a.spec.containers.add(name="main", image="agent:1")
    b = core_pb2.PodTemplateSpec()
    b.metadata.labels.update({"tier": "node", "app": "agent"})  # same map, other order
    b.spec.containers.add(name="main", image="agent:1")
    assert template_hash(a) == template_hash(b)
    assert set(template_hash(a)) <= set("bcdfghjklmnpqrstvwxz2456789")
    b.spec.containers[0].image = "agent:2"
    assert template_hash(a) != template_hash(b)


@pytest.mark.parametrize(
    ("value", "desired", "expected"),
    [(None, 10, 1), (3, 10, 3), ("25%", 10, 3), ("10%", 5, 1), ("0%", 4, 1), ("50%", 0, 0)],
)
def test_max_unavailable(value: Any, desired: int, expected: int) -> None:
    ds = kinds.by_kind("DaemonSet").new()
    rolling = ds.spec.update_strategy.rolling_update
    if isinstance(value, int):
        rolling.max_unavailable.int_val = value
    elif isinstance(value, str):
        rolling.max_unavailable.str_val = value
    assert max_unavailable(ds, desired) == expected
