"""ClusterIPs and nodePorts: drawn, honoured, refused, released; unique across servers."""

from __future__ import annotations

import ipaddress

import pytest
import trio

from actors.apiserver import allocation
from actors.apiserver.allocation import keep_allocated, parse_range
from proto import rpc
from tests.actors.apiserver.conftest import connect, make

DEFAULT = ipaddress.ip_network("127.96.0.0/16")


def service(name, ns, *, cluster_ip="", type="", node_port=0, port=80):
    svc = make("Service", name, ns)
    svc.spec.selector["app"] = name
    svc.spec.ports.add(port=port, node_port=node_port)
    svc.spec.cluster_ip = cluster_ip
    svc.spec.type = type
    return svc


# ------------------------------------------------------------------ pure


def test_parse_range():
    assert parse_range("127.96.0.0/16") == DEFAULT
    with pytest.raises(ValueError, match="must lie inside 127.0.0.0/8"):
        parse_range("10.0.0.0/16")
    with pytest.raises(ValueError, match="too small"):
        parse_range("127.1.1.1/32")
    with pytest.raises(ValueError, match="invalid service IP range"):
        parse_range("127.96.0.1/16")


def test_keep_allocated_on_update():
    old = service("s", "n", cluster_ip="127.96.0.9", type="NodePort", node_port=30001)
    old.spec.cluster_ips.append("127.96.0.9")
    new = service("s", "n", type="NodePort")
    keep_allocated(new, old)
    assert new.spec.cluster_ip == "127.96.0.9" and new.spec.ports[0].node_port == 30001
    to_cluster_ip = service("s", "n", type="ClusterIP", node_port=30001)
    keep_allocated(to_cluster_ip, old)
    assert to_cluster_ip.spec.ports[0].node_port == 0
    external = service("s", "n", type="ExternalName")
    keep_allocated(external, old)
    assert external.spec.cluster_ip == ""


# ------------------------------------------------------------------ on a store


async def test_cluster_ip_drawn_in_range_and_released(api, ns):
    created = await api.create(service("a", ns))
    ip = created.spec.cluster_ip
    assert ipaddress.ip_address(ip) in DEFAULT and list(created.spec.cluster_ips) == [ip]
    with pytest.raises(
        rpc.InvalidArgument,
        match=f'Service "b" is invalid: spec.clusterIP: Invalid value: "{ip}": '
        "provided IP is already allocated",
    ):
        await api.create(service("b", ns, cluster_ip=ip))
    await api.delete("svc", "a", ns)
    again = await api.create(service("b", ns, cluster_ip=ip))
    assert again.spec.cluster_ip == ip
    # An update that leaves clusterIP out keeps it; changing it is refused.
    again.spec.cluster_ip = ""
    del again.spec.cluster_ips[:]
    updated = await api.update(again)
    assert updated.spec.cluster_ip == ip
    updated.spec.cluster_ip = "127.96.7.7"
    with pytest.raises(rpc.InvalidArgument, match="spec.clusterIP: field is immutable"):
        await api.update(updated)


async def test_requested_ip_out_of_range_refused(api, ns):
    with pytest.raises(rpc.InvalidArgument) as caught:
        await api.create(service("far", ns, cluster_ip="10.0.0.1"))
    assert str(caught.value.args[0] if caught.value.args else caught.value).endswith(
        'spec.clusterIP: Invalid value: "10.0.0.1": provided IP is not in the valid range. '
        "The range of valid IPs is 127.96.0.0/16"
    )
    with pytest.raises(rpc.InvalidArgument, match="not in the valid range"):
        await api.create(service("net", ns, cluster_ip="127.96.0.0"))


async def test_headless_and_external_name_hold_no_ip(api, ns):
    headless = await api.create(service("h", ns, cluster_ip="None"))
    assert headless.spec.cluster_ip == "None" and list(headless.spec.cluster_ips) == ["None"]
    ext = make("Service", "e", ns)
    ext.spec.type = "ExternalName"
    ext.spec.external_name = "example.com"
    assert (await api.create(ext)).spec.cluster_ip == ""


async def test_node_ports_drawn_requested_and_released(api, ns):
    drawn = await api.create(service("np", ns, type="NodePort"))
    port = drawn.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    with pytest.raises(
        rpc.InvalidArgument,
        match=f"spec.ports\\[0\\].nodePort: Invalid value: {port}: provided port is already allocated",
    ):
        await api.create(service("np2", ns, type="NodePort", node_port=port))
    # Back to ClusterIP: the nodePort is released (and the clusterIP kept).
    back = await api.patch("svc", "np", '{"spec": {"type": "ClusterIP"}}', ns)
    assert back.spec.ports[0].node_port == 0 and back.spec.cluster_ip == drawn.spec.cluster_ip
    taken = await api.create(service("np2", ns, type="NodePort", node_port=port))
    assert taken.spec.ports[0].node_port == port
    # Deleting releases it too.
    await api.delete("svc", "np2", ns)
    assert (await api.create(service("np3", ns, type="NodePort", node_port=port))).spec.ports[
        0
    ].node_port == port


async def test_two_servers_race_for_one_requested_ip(start_apiserver, api, ns):
    other = await start_apiserver()
    async with connect(other) as api2:
        for round in range(3):
            ip = f"127.96.200.{10 + round}"
            outcomes: list[object] = []

            async def create(client, name, ip=ip, outcomes=outcomes):
                try:
                    outcomes.append(await client.create(service(name, ns, cluster_ip=ip)))
                except rpc.InvalidArgument as exc:
                    outcomes.append(exc)

            async with trio.open_nursery() as n:
                n.start_soon(create, api, f"x{round}")
                n.start_soon(create, api2, f"y{round}")
            won = [o for o in outcomes if not isinstance(o, Exception)]
            lost = [o for o in outcomes if isinstance(o, Exception)]
            assert len(won) == 1 and len(lost) == 1
            assert won[0].spec.cluster_ip == ip
            assert "provided IP is already allocated" in str(lost[0])


async def test_burst_gets_distinct_ips_across_servers(start_apiserver, ns, unique):
    # A /27 (30 addresses) and 24 Services from two servers: draws collide and redraw.
    octet = int(unique[1:3], 16) % 200 + 20
    cidr = f"127.{octet}.{int(unique[3:5], 16)}.0/27"
    servers = [await start_apiserver(service_cluster_ip_range=cidr) for _ in range(2)]
    created: list[object] = []
    async with connect(servers[0]) as a, connect(servers[1]) as b:

        async def make_one(client, i):
            created.append(await client.create(service(f"s{i}", ns)))

        async with trio.open_nursery() as n:
            for i in range(24):
                n.start_soon(make_one, (a, b)[i % 2], i)
        ips = [s.spec.cluster_ip for s in created]
        assert len(set(ips)) == 24
        assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(cidr) for ip in ips)
        for i in range(24, 30):
            await a.create(service(f"s{i}", ns))
        with pytest.raises(rpc.ResourceExhausted, match="range .* is full"):
            await b.create(service("s30", ns))


def test_claims_only_for_services():
    from proto.k8s import kinds

    cm = make("ConfigMap", "c", "n")
    assert allocation.claims(kinds.by_kind("ConfigMap"), cm) == frozenset()
    svc = service("s", "n", cluster_ip="127.96.0.5", type="NodePort", node_port=30005)
    assert allocation.claims(kinds.by_kind("Service"), svc) == {
        b"/registry/ranges/serviceips/127.96.0.5",
        b"/registry/ranges/servicenodeports/30005",
    }


# ------------------------------------------------------------------ node pod CIDRs


async def test_nodes_get_distinct_pod_cidrs_kept_on_update_and_freed(api, unique):
    cluster = ipaddress.ip_network("127.64.0.0/12")
    first = await api.create(make("Node", f"{unique}-a"))
    second = await api.create(make("Node", f"{unique}-b"))
    cidrs = [ipaddress.ip_network(n.spec.pod_cidr) for n in (first, second)]
    assert all(c.subnet_of(cluster) and c.prefixlen == 24 for c in cidrs)
    assert cidrs[0] != cidrs[1]
    assert list(first.spec.pod_cidrs) == [first.spec.pod_cidr]
    # Asking for a CIDR another node holds is refused with the field named.
    with pytest.raises(
        rpc.InvalidArgument, match=r"spec.podCIDR: Invalid value: .*already allocated"
    ):
        taken = make("Node", f"{unique}-c")
        taken.spec.pod_cidr = first.spec.pod_cidr
        await api.create(taken)
    # An update that leaves podCIDR out keeps it.
    first.spec.pod_cidr = ""
    del first.spec.pod_cidrs[:]
    first.metadata.labels["zone"] = "z1"
    updated = await api.update(first)
    assert updated.spec.pod_cidr == str(cidrs[0])
    # Deleting the node frees its CIDR for a node that asks for it.
    await api.delete("node", f"{unique}-a")
    again = make("Node", f"{unique}-c")
    again.spec.pod_cidr = str(cidrs[0])
    assert (await api.create(again)).spec.pod_cidr == str(cidrs[0])
    for name in ("b", "c"):
        await api.delete("node", f"{unique}-{name}")


async def test_bind_sets_pod_scheduled(api, ns):
    from tests.actors.apiserver.conftest import pod

    await api.create(pod("p", ns))
    bound = await api.bind("p", "node-1", ns)
    assert bound.spec.node_name == "node-1"
    [condition] = [c for c in bound.status.conditions if c.type == "PodScheduled"]
    assert condition.status == "True" and condition.last_transition_time.seconds > 0


async def test_nodes_registering_together_all_get_distinct_cidrs(api, unique):
    created = []

    async def register(i):
        created.append(await api.create(make("Node", f"{unique}-n{i}")))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(register, i)
    cidrs = [n.spec.pod_cidr for n in created]
    assert len(cidrs) == 20 and len(set(cidrs)) == 20
    for n in created:
        await api.delete("node", n.metadata.name)
