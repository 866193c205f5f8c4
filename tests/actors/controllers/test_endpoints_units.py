"""Endpoints subsets from a Service and its pods: pure rules, no server."""

from __future__ import annotations

from typing import Any

from actors.controllers.endpoints import (
    MANAGED_ANNOTATION,
    build_subsets,
    desired_endpoints,
    resolve_port,
    same_content,
    selects,
    should_include,
)
from proto.k8s import core_pb2


def service(*ports: tuple[str, int, int | str], publish: bool = False, **selector: str) -> Any:
    svc = core_pb2.Service()
    svc.metadata.name = "web"
    svc.metadata.namespace = "ns"
    svc.spec.selector.update(selector or {"app": "web"})
    svc.spec.publish_not_ready_addresses = publish
    for name, port, target in ports:
        sp = svc.spec.ports.add(name=name, port=port, protocol="TCP")
        if isinstance(target, str):
            sp.target_port.str_val = target
        else:
            sp.target_port.int_val = target
    return svc


def pod(
    name: str,
    ip: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    ports: dict[str, int] | None = None,
    node: str = "n1",
    deleting: bool = False,
) -> Any:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = "ns"
    p.metadata.uid = f"uid-{name}"
    p.metadata.labels["app"] = "web"
    p.spec.node_name = node
    container = p.spec.containers.add(name="main", image="x")
    for port_name, number in (ports or {}).items():
        container.ports.add(name=port_name, container_port=number, protocol="TCP")
    p.status.phase = phase
    p.status.pod_ip = ip
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    if deleting:
        p.metadata.deletion_timestamp.GetCurrentTime()
    return p


def ips(addresses: Any) -> list[str]:
    return [a.ip for a in addresses]


def test_ready_and_not_ready_pods_are_split():
    svc = service(("http", 80, 8080))
    subsets = build_subsets(svc, [pod("b", "10.0.0.2", ready=False), pod("a", "10.0.0.1")])
    assert len(subsets) == 1
    (subset,) = subsets
    assert ips(subset.addresses) == ["10.0.0.1"]
    assert ips(subset.not_ready_addresses) == ["10.0.0.2"]
    assert [(p.name, p.port, p.protocol) for p in subset.ports] == [("http", 8080, "TCP")]
    address = subset.addresses[0]
    assert address.node_name == "n1"
    assert (address.target_ref.kind, address.target_ref.name, address.target_ref.uid) == (
        "Pod",
        "a",
        "uid-a",
    )


def test_named_target_ports_resolve_per_pod_and_group_subsets():
    svc = service(("http", 80, "web"))
    pods = [
        pod("a", "10.0.0.1", ports={"web": 8080}),
        pod("b", "10.0.0.2", ports={"web": 9090}),
        pod("c", "10.0.0.3", ports={"web": 8080}),
        pod("d", "10.0.0.4", ports={"other": 8080}),  # does not name the port: left out
    ]
    subsets = build_subsets(svc, pods)
    by_port = {s.ports[0].port: ips(s.addresses) for s in subsets}
    assert by_port == {8080: ["10.0.0.1", "10.0.0.3"], 9090: ["10.0.0.2"]}


def test_a_pod_missing_one_named_port_keeps_the_others():
    svc = service(("http", 80, "web"), ("metrics", 9100, "metrics"))
    full = pod("a", "10.0.0.1", ports={"web": 8080, "metrics": 9100})
    partial = pod("b", "10.0.0.2", ports={"web": 8080})
    subsets = build_subsets(svc, [full, partial])
    shapes = sorted((sorted(p.name for p in s.ports), ips(s.addresses)) for s in subsets)
    assert shapes == [(["http"], ["10.0.0.2"]), (["http", "metrics"], ["10.0.0.1"])]


def test_named_port_protocol_must_match():
    svc = service(("dns", 53, "dns"))
    svc.spec.ports[0].protocol = "UDP"
    p = pod("a", "10.0.0.1", ports={"dns": 5353})  # a TCP port of that name
    assert resolve_port(p, svc.spec.ports[0]) is None
    p.spec.containers[0].ports.add(name="dns", container_port=5354, protocol="UDP")
    assert resolve_port(p, svc.spec.ports[0]) == 5354


def test_pods_without_ip_terminated_or_terminating_are_skipped():
    svc = service(("http", 80, 8080))
    pods = [
        pod("noip", ""),
        pod("done", "10.0.0.2", phase="Succeeded"),
        pod("failed", "10.0.0.3", phase="Failed"),
        pod("going", "10.0.0.4", deleting=True),
        pod("ok", "10.0.0.5"),
    ]
    (subset,) = build_subsets(svc, pods)
    assert ips(subset.addresses) == ["10.0.0.5"]
    assert not subset.not_ready_addresses


def test_publish_not_ready_addresses_keeps_terminating_and_unready_pods_as_ready():
    svc = service(("http", 80, 8080), publish=True)
    pods = [pod("going", "10.0.0.4", deleting=True), pod("slow", "10.0.0.6", ready=False)]
    (subset,) = build_subsets(svc, pods)
    assert ips(subset.addresses) == ["10.0.0.4", "10.0.0.6"]
    assert should_include(pods[0], publish_not_ready=True)
    assert not should_include(pods[0], publish_not_ready=False)


def test_services_without_ports_have_no_subsets_unless_headless():
    svc = service()
    assert build_subsets(svc, [pod("a", "10.0.0.1")]) == []
    svc.spec.cluster_ip = "None"
    (subset,) = build_subsets(svc, [pod("a", "10.0.0.1")])
    assert ips(subset.addresses) == ["10.0.0.1"] and not subset.ports
    assert desired_endpoints(svc, [subset]).metadata.labels["service.kubernetes.io/headless"] == ""


def test_hostname_only_for_pods_in_the_service_subdomain():
    svc = service(("http", 80, 8080))
    a, b = pod("a", "10.0.0.1"), pod("b", "10.0.0.2")
    a.spec.hostname, a.spec.subdomain = "a-host", "web"
    b.spec.hostname, b.spec.subdomain = "b-host", "other"
    (subset,) = build_subsets(svc, [a, b])
    assert [(x.ip, x.hostname) for x in subset.addresses] == [
        ("10.0.0.1", "a-host"),
        ("10.0.0.2", ""),
    ]


def test_order_does_not_depend_on_input_order_and_equal_content_is_not_rewritten():
    svc = service(("http", 80, "web"))
    pods = [pod(f"p{i}", f"10.0.0.{i}", ports={"web": 8000 + i % 2}) for i in range(1, 7)]
    one = desired_endpoints(svc, build_subsets(svc, pods))
    two = desired_endpoints(svc, build_subsets(svc, list(reversed(pods))))
    assert list(one.subsets) == list(two.subsets)
    stored = type(one)()
    stored.CopyFrom(one)
    assert not same_content(stored, two)  # not marked as ours yet: write it once
    stored.metadata.annotations[MANAGED_ANNOTATION] = "2024-01-01T00:00:00Z"
    assert same_content(stored, two)
    pods[0].status.conditions[0].status = "False"
    three = desired_endpoints(svc, build_subsets(svc, pods))
    assert not same_content(stored, three)


def test_selector_matching():
    svc = service(app="web", tier="front")
    assert selects(svc, {"app": "web", "tier": "front", "x": "y"})
    assert not selects(svc, {"app": "web"})
    svc.spec.selector.clear()
    assert not selects(svc, {"app": "web"})  # no selector selects nothing
