"""build_plan: which addresses a Service port listens on and which endpoints it uses."""

from __future__ import annotations

from node_agent.proxy.table import Backend, Frontend, FrontendKind, ServicePortName, build_plan
from tests.node_agent.proxy.objects import Port, Subset, endpoints, service

NODE = "127.0.0.1"
CIP = FrontendKind.CLUSTER_IP


def test_cluster_ip_port_with_ready_endpoints_only() -> None:
    svc = service("web", "127.96.0.10", [Port("", 80, target_port=8080)])
    eps = endpoints(
        "web",
        [Subset(["127.64.0.2", "127.64.0.3"], [("", 8080)], not_ready=["127.64.0.4"])],
    )
    [plan] = build_plan([svc], [eps], node_address=NODE)
    assert plan.name == ServicePortName("default", "web", "")
    assert str(plan.name) == "default/web"
    assert plan.frontends == (Frontend("127.96.0.10", 80, CIP),)
    assert plan.backends == (Backend("127.64.0.2", 8080), Backend("127.64.0.3", 8080))
    assert plan.skipped is None
    assert not plan.client_ip_affinity


def test_named_ports_match_endpoint_ports_by_name_per_subset() -> None:
    svc = service(
        "web",
        "127.96.0.10",
        [Port("http", 80, target_port="web"), Port("metrics", 9100, target_port="metrics")],
        affinity="ClientIP",
    )
    eps = endpoints(
        "web",
        [
            # Pods whose container port named "web" differs: two subsets.
            Subset(["127.64.0.2"], [("metrics", 9090), ("http", 8080)]),
            Subset(["127.64.0.3"], [("http", 8081), ("metrics", 9090)]),
        ],
    )
    http, metrics = build_plan([svc], [eps], node_address=NODE)
    assert str(http.name) == "default/web:http"
    assert http.backends == (Backend("127.64.0.2", 8080), Backend("127.64.0.3", 8081))
    assert metrics.backends == (Backend("127.64.0.2", 9090), Backend("127.64.0.3", 9090))
    assert http.client_ip_affinity and metrics.client_ip_affinity


def test_single_port_service_uses_single_unnamed_endpoint_port() -> None:
    svc = service("web", "127.96.0.10", [Port("http", 80)])
    eps = endpoints("web", [Subset(["127.64.0.2"], [("", 8080)])])
    [plan] = build_plan([svc], [eps], node_address=NODE)
    assert plan.backends == (Backend("127.64.0.2", 8080),)
    # With two Service ports the names must match.
    two = service("web", "127.96.0.10", [Port("http", 80), Port("other", 81)])
    plans = build_plan([two], [eps], node_address=NODE)
    assert [p.backends for p in plans] == [(), ()]


def test_missing_endpoints_give_no_backends() -> None:
    svc = service("web", "127.96.0.10", [Port("", 80)])
    other = endpoints("api", [Subset(["127.64.0.2"], [("", 8080)])])
    [plan] = build_plan([svc], [other], node_address=NODE)
    assert plan.backends == ()
    other_ns = endpoints("web", [Subset(["127.64.0.2"], [("", 8080)])], namespace="prod")
    [plan] = build_plan([svc], [other_ns], node_address=NODE)
    assert plan.backends == ()


def test_duplicate_addresses_counted_once() -> None:
    svc = service("web", "127.96.0.10", [Port("", 80)])
    eps = endpoints(
        "web",
        [
            Subset(["127.64.0.2", "127.64.0.2"], [("", 8080)]),
            Subset(["127.64.0.2"], [("", 8080)]),
        ],
    )
    [plan] = build_plan([svc], [eps], node_address=NODE)
    assert plan.backends == (Backend("127.64.0.2", 8080),)


def test_node_port_listens_on_node_address_too() -> None:
    svc = service("web", "127.96.0.10", [Port("", 80, node_port=30080)], type="NodePort")
    lb = service("lb", "127.96.0.11", [Port("", 80, node_port=30081)], type="LoadBalancer")
    plans = build_plan([svc, lb], [], node_address="127.64.5.1")
    assert [p.frontends for p in plans] == [
        (Frontend("127.96.0.11", 80, CIP), Frontend("127.64.5.1", 30081, FrontendKind.NODE_PORT)),
        (Frontend("127.96.0.10", 80, CIP), Frontend("127.64.5.1", 30080, FrontendKind.NODE_PORT)),
    ]
    # A nodePort left on a ClusterIP Service (not yet cleared) is not listened on.
    plain = service("web", "127.96.0.10", [Port("", 80, node_port=30080)])
    [plan] = build_plan([plain], [], node_address="127.64.5.1")
    assert plan.frontends == (Frontend("127.96.0.10", 80, CIP),)


def test_headless_and_external_name_services_are_not_proxied() -> None:
    headless = service("db", "None", [Port("", 5432)])
    pending = service("new", "", [Port("", 80)])
    external = service("ext", "", [Port("", 80)], type="ExternalName")
    eps = endpoints("db", [Subset(["127.64.0.2"], [("", 5432)])])
    assert build_plan([headless, pending, external], [eps], node_address=NODE) == []


def test_udp_and_bad_values_are_skipped_with_reason() -> None:
    svc = service(
        "dns",
        "127.96.0.10",
        [Port("dns", 53, protocol="UDP"), Port("dns-tcp", 53), Port("bad", 70000)],
    )
    eps = endpoints(
        "dns",
        [
            Subset(["127.64.0.2"], [("dns", 53)], protocol="UDP"),
            Subset(["127.64.0.2"], [("dns-tcp", 53)]),
        ],
    )
    bad, udp, tcp = build_plan([svc], [eps], node_address=NODE)
    assert udp.skipped == "protocol UDP is not proxied (only TCP is)"
    assert udp.backends == ()
    assert udp.frontends == (Frontend("127.96.0.10", 53, CIP),)
    assert tcp.skipped is None and tcp.backends == (Backend("127.64.0.2", 53),)
    assert bad.skipped == "port 70000 is not in 1..65535"
    weird = service("weird", "10.0.0.300", [Port("", 80)])
    [plan] = build_plan([weird], [], node_address=NODE)
    assert plan.skipped == "clusterIP '10.0.0.300' is not an IPv4 address"
