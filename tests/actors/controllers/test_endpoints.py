"""The Endpoints controller against a real API server on raftstore."""

from __future__ import annotations

from typing import Any

import trio

from actors.client import ApiClient, Conflict, NotFound
from actors.controllers import endpoints
from tests.actors.controllers.conftest import Harness, make, pod, wait_until


async def set_pod_status(
    api: ApiClient, ns: str, name: str, *, ip: str, ready: bool, node: str = "n1"
) -> Any:
    """What a node agent reports: bound, Running, an IP, Ready or not."""
    current: Any = await api.get("Pod", name, namespace=ns)
    if not current.spec.node_name:
        await api.bind(name, node, namespace=ns)
    while True:
        current = await api.get("Pod", name, namespace=ns)
        current.status.phase = "Running"
        current.status.pod_ip = ip
        del current.status.conditions[:]
        current.status.conditions.add(type="Ready", status=str(ready))
        try:
            return await api.update_status(current)
        except Conflict:
            continue


def web_pod(name: str, ns: str, **ports: int) -> Any:
    p = pod(name, ns, app="web")
    for port_name, number in ports.items():
        p.spec.containers[0].ports.add(name=port_name, container_port=number)
    return p


def web_service(ns: str) -> Any:
    svc = make("Service", "web", ns)
    svc.spec.selector["app"] = "web"
    http = svc.spec.ports.add(name="http", port=80)
    http.target_port.str_val = "web"
    svc.spec.ports.add(name="metrics", port=9100)  # targetPort defaults to 9100
    return svc


def shape(ep: Any) -> list[tuple[list[tuple[str, int]], list[str], list[str]]]:
    return [
        (
            [(p.name, p.port) for p in s.ports],
            [a.target_ref.name for a in s.addresses],
            [a.target_ref.name for a in s.not_ready_addresses],
        )
        for s in ep.subsets
    ]


async def get_endpoints(api: ApiClient, ns: str, name: str = "web") -> Any | None:
    try:
        return await api.get("Endpoints", name, namespace=ns)
    except NotFound:
        return None


async def test_service_pods_become_endpoints_and_follow_readiness(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(endpoints.new_controller)
    for p in (
        web_pod("a", ns, web=8080),
        web_pod("b", ns, web=8080),
        web_pod("c", ns, web=9090),
        web_pod("noip", ns, web=8080),
        pod("other", ns, app="other"),
    ):
        await api.create(p)
    await set_pod_status(api, ns, "a", ip="127.10.0.1", ready=True)
    await set_pod_status(api, ns, "b", ip="127.10.0.2", ready=False)
    await set_pod_status(api, ns, "c", ip="127.10.0.3", ready=True)
    await set_pod_status(api, ns, "other", ip="127.10.0.9", ready=True)
    await api.create(web_service(ns))

    expected: list[Any] = [
        ([("http", 8080), ("metrics", 9100)], ["a"], ["b"]),
        ([("http", 9090), ("metrics", 9100)], ["c"], []),
    ]

    async def converged(want: Any) -> bool:
        ep = await get_endpoints(api, ns)
        return ep is not None and sorted(shape(ep)) == sorted(want)

    await wait_until(lambda: converged(expected), timeout=10)
    ep = await get_endpoints(api, ns)
    assert ep is not None
    address = next(a for s in ep.subsets for a in s.addresses if a.target_ref.name == "a")
    assert (address.ip, address.node_name) == ("127.10.0.1", "n1")
    assert endpoints.MANAGED_ANNOTATION in ep.metadata.annotations
    # What was stored compares equal to what the controller computes: no rewrite loop.
    svc = await api.get("Service", "web", namespace=ns)
    pods = (await api.list("Pod", namespace=ns)).items
    selected = [p for p in pods if endpoints.selects(svc, p.metadata.labels)]
    desired = endpoints.desired_endpoints(svc, endpoints.build_subsets(svc, selected))
    assert endpoints.same_content(ep, desired)

    # A readiness flip shows within a second.
    await set_pod_status(api, ns, "b", ip="127.10.0.2", ready=True)
    flipped: list[Any] = [
        ([("http", 8080), ("metrics", 9100)], ["a", "b"], []),
        ([("http", 9090), ("metrics", 9100)], ["c"], []),
    ]
    with trio.fail_after(1.0):
        await wait_until(lambda: converged(flipped), every=0.02)

    # A deleted pod leaves; its port set's subset goes with it.
    await api.delete("Pod", "c", namespace=ns, grace_period_seconds=0)
    await wait_until(lambda: converged(flipped[:1]))

    # Deleting the Service deletes its Endpoints.
    await api.delete("Service", "web", namespace=ns)
    await wait_until(lambda: _gone(api, ns))


async def _gone(api: ApiClient, ns: str) -> bool:
    return await get_endpoints(api, ns) is None


async def test_endpoints_of_services_without_selector_are_left_alone(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(endpoints.new_controller)
    svc = make("Service", "external", ns)
    svc.spec.ports.add(name="db", port=5432)
    await api.create(svc)
    manual = make("Endpoints", "external", ns)
    subset = manual.subsets.add()
    subset.addresses.add(ip="127.20.0.1")
    subset.ports.add(name="db", port=5432)
    await api.create(manual)
    # A selected service created after it shows the controller is running and caught up.
    await api.create(web_pod("a", ns, web=8080))
    await set_pod_status(api, ns, "a", ip="127.10.0.1", ready=True)
    await api.create(web_service(ns))
    await wait_until(lambda: get_endpoints(api, ns))
    kept = await get_endpoints(api, ns, "external")
    assert kept is not None and [a.ip for a in kept.subsets[0].addresses] == ["127.20.0.1"]
    assert endpoints.MANAGED_ANNOTATION not in kept.metadata.annotations
    # ... and deleting that service leaves the user's Endpoints too.
    await api.delete("Service", "external", namespace=ns)
    await api.delete("Service", "web", namespace=ns)
    await wait_until(lambda: _gone(api, ns))
    assert await get_endpoints(api, ns, "external") is not None
