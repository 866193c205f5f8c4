"""Every filter, table-driven, with Kubernetes' exact reason strings."""

from __future__ import annotations

from typing import Any

import pytest

from actors.scheduler.plugins import filters
from actors.scheduler.plugins.nodeaffinity import requirement_matches
from actors.scheduler.plugins.taints import tolerates
from proto.k8s import core_pb2
from tests.actors.scheduler.objects import info, node, node_info, pod

GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def with_spec(**spec: Any) -> Any:
    return info(pod("p", spec=spec))


# --------------------------------------------------------------------------- cordon, Ready


@pytest.mark.parametrize(
    ("unschedulable", "tolerations", "expected"),
    [
        (False, [], ()),
        (True, [], ("node(s) were unschedulable",)),
        (
            True,
            [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}],
            (),
        ),
        (True, [{"operator": "Exists"}], ()),
        (True, [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}],
         ("node(s) were unschedulable",)),
    ],
)  # fmt: skip
def test_node_unschedulable(unschedulable: bool, tolerations: list[Any], expected: tuple) -> None:
    n = node_info(node("n", unschedulable=unschedulable))
    assert filters.node_unschedulable(with_spec(tolerations=tolerations), n) == expected


@pytest.mark.parametrize(
    ("conditions", "tolerations", "expected"),
    [
        ([{"type": "Ready", "status": "True"}], [], ()),
        ([{"type": "Ready", "status": "False"}], [], ("node(s) were not ready",)),
        ([{"type": "Ready", "status": "Unknown"}], [], ("node(s) were not ready",)),
        ([], [], ("node(s) were not ready",)),
        ([{"type": "MemoryPressure", "status": "False"}], [], ("node(s) were not ready",)),
        ([], [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}], ()),
    ],
)
def test_node_ready(conditions: list[Any], tolerations: list[Any], expected: tuple) -> None:
    n = node_info(node("n", conditions=conditions))
    assert filters.node_ready(with_spec(tolerations=tolerations), n) == expected


def test_node_name() -> None:
    p = info(pod("p", node_name="a"))
    assert filters.node_name(p, node_info(node("a"))) == ()
    assert filters.node_name(p, node_info(node("b"))) == (
        "node(s) didn't match the requested node name",
    )
    assert filters.node_name(info(pod("q")), node_info(node("b"))) == ()


# --------------------------------------------------------------------------- taints


def toleration(**kw: Any) -> core_pb2.Toleration:
    return core_pb2.Toleration(**kw)


def taint(**kw: Any) -> core_pb2.Taint:
    return core_pb2.Taint(**kw)


@pytest.mark.parametrize(
    ("tol", "expected"),
    [
        (toleration(key="k", operator="Equal", value="v", effect="NoSchedule"), True),
        (toleration(key="k", value="v", effect="NoSchedule"), True),  # empty operator: Equal
        (toleration(key="k", operator="Equal", value="w", effect="NoSchedule"), False),
        (toleration(key="k", operator="Exists", effect="NoSchedule"), True),
        (toleration(key="other", operator="Exists"), False),
        (toleration(operator="Exists"), True),  # empty key + Exists: everything
        (toleration(key="k", operator="Exists", effect="NoExecute"), False),
        (toleration(key="k", operator="Exists"), True),  # empty effect: every effect
        (toleration(key="k", operator="Gt", value="v"), False),  # unknown operator
    ],
)
def test_toleration_matching(tol: core_pb2.Toleration, expected: bool) -> None:
    assert tolerates(tol, taint(key="k", value="v", effect="NoSchedule")) is expected


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        ([], [], ()),
        ([GPU_TAINT], [], ("node(s) had untolerated taint {dedicated: gpu}",)),
        ([GPU_TAINT], [{"key": "dedicated", "operator": "Equal", "value": "gpu"}], ()),
        ([GPU_TAINT], [{"key": "dedicated", "operator": "Equal", "value": "cpu"}],
         ("node(s) had untolerated taint {dedicated: gpu}",)),
        ([{"key": "evict", "value": "", "effect": "NoExecute"}], [],
         ("node(s) had untolerated taint {evict: }",)),
        ([{"key": "soft", "value": "x", "effect": "PreferNoSchedule"}], [], ()),
        ([{"key": "a", "value": "1", "effect": "NoSchedule"}, {"key": "b", "value": "2", "effect": "NoSchedule"}],
         [{"key": "a", "operator": "Exists"}], ("node(s) had untolerated taint {b: 2}",)),
        ([GPU_TAINT, {"key": "b", "value": "2", "effect": "NoExecute"}], [{"operator": "Exists"}], ()),
    ],
)  # fmt: skip
def test_taint_toleration(taints: list[Any], tolerations: list[Any], expected: tuple) -> None:
    n = node_info(node("n", taints=taints))
    assert filters.taint_toleration(with_spec(tolerations=tolerations), n) == expected


# --------------------------------------------------------------------------- node affinity


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ["a", "b"], {"k": "a"}, True),
        ("In", ["a", "b"], {"k": "c"}, False),
        ("In", ["a"], {}, False),
        ("NotIn", ["a"], {"k": "b"}, True),
        ("NotIn", ["a"], {"k": "a"}, False),
        ("NotIn", ["a"], {}, True),
        ("Exists", [], {"k": ""}, True),
        ("Exists", [], {}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"k": "x"}, False),
        ("Gt", ["5"], {"k": "6"}, True),
        ("Gt", ["5"], {"k": "5"}, False),
        ("Gt", ["5"], {"k": "x"}, False),
        ("Gt", ["5"], {}, False),
        ("Lt", ["5"], {"k": "4"}, True),
        ("Lt", ["5"], {"k": "-10"}, True),
        ("Lt", ["5"], {"k": "5"}, False),
        ("Lt", ["x"], {"k": "4"}, False),
        ("Near", ["a"], {"k": "a"}, False),
    ],
)
def test_node_selector_operators(
    operator: str, values: list[str], labels: dict[str, str], expected: bool
) -> None:
    req = core_pb2.NodeSelectorRequirement(key="k", operator=operator, values=values)
    assert requirement_matches(req, labels) is expected


def affinity(*terms: list[dict[str, Any]], fields: list[dict[str, Any]] | None = None) -> Any:
    node_terms = [{"matchExpressions": exprs} for exprs in terms]
    if fields is not None:
        node_terms.append({"matchFields": fields})
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": node_terms}
            }
        }
    }


AFFINITY_MISS = ("node(s) didn't match Pod's node affinity/selector",)
ZONE_A = {"key": "zone", "operator": "In", "values": ["a"]}
SSD = {"key": "disk", "operator": "In", "values": ["ssd"]}


@pytest.mark.parametrize(
    ("spec", "labels", "expected"),
    [
        ({}, {}, ()),
        ({"nodeSelector": {"zone": "a"}}, {"zone": "a"}, ()),
        ({"nodeSelector": {"zone": "a"}}, {"zone": "b"}, AFFINITY_MISS),
        ({"nodeSelector": {"zone": "a", "disk": "ssd"}}, {"zone": "a"}, AFFINITY_MISS),
        (affinity([ZONE_A]), {"zone": "a"}, ()),
        (affinity([ZONE_A, SSD]), {"zone": "a"}, AFFINITY_MISS),  # expressions ANDed
        (affinity([ZONE_A, SSD]), {"zone": "a", "disk": "ssd"}, ()),
        (affinity([ZONE_A], [SSD]), {"disk": "ssd"}, ()),  # terms ORed
        (affinity([ZONE_A], [SSD]), {"zone": "b"}, AFFINITY_MISS),
        (affinity([]), {"zone": "a"}, AFFINITY_MISS),  # an empty term matches nothing
        (affinity(), {"zone": "a"}, AFFINITY_MISS),  # no terms: nothing
        ({"nodeSelector": {"zone": "a"}, **affinity([SSD])}, {"disk": "ssd"}, AFFINITY_MISS),
        (affinity(fields=[{"key": "metadata.name", "operator": "In", "values": ["n"]}]), {}, ()),
        (affinity(fields=[{"key": "metadata.name", "operator": "NotIn", "values": ["n"]}]), {},
         AFFINITY_MISS),
    ],
)  # fmt: skip
def test_node_affinity(spec: dict[str, Any], labels: dict[str, str], expected: tuple) -> None:
    assert filters.node_affinity(with_spec(**spec), node_info(node("n", labels=labels))) == expected


# --------------------------------------------------------------------------- ports


def ports_pod(name: str, *ports: dict[str, Any]) -> Any:
    return pod(name, containers=[{"name": "c", "image": "i", "ports": list(ports)}])


PORTS_BUSY = ("node(s) didn't have free ports for the requested pod ports",)


@pytest.mark.parametrize(
    ("existing", "wanted", "expected"),
    [
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8080}, PORTS_BUSY),
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}, ()),
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80}, ()),
        ({"containerPort": 80, "hostPort": 8080, "protocol": "UDP"},
         {"containerPort": 80, "hostPort": 8080}, ()),
        ({"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
         {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}, ()),
        ({"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
         {"containerPort": 80, "hostPort": 8080}, PORTS_BUSY),
        ({"containerPort": 80, "hostPort": 8080},
         {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}, PORTS_BUSY),
    ],
)  # fmt: skip
def test_node_ports(existing: dict[str, Any], wanted: dict[str, Any], expected: tuple) -> None:
    n = node_info(node("n"), ports_pod("old", existing))
    assert filters.node_ports(info(ports_pod("new", wanted)), n) == expected


def test_ports_are_freed_when_the_pod_leaves() -> None:
    n = node_info(node("n"), ports_pod("old", {"containerPort": 80, "hostPort": 8080}))
    n.remove_pod("default/old")
    assert (
        filters.node_ports(info(ports_pod("new", {"containerPort": 1, "hostPort": 8080})), n) == ()
    )


# --------------------------------------------------------------------------- resources


@pytest.mark.parametrize(
    ("existing", "wanted", "expected"),
    [
        ([("1", "1Gi")], ("2", "1Gi"), ()),
        ([("3", "1Gi")], ("1", "1Gi"), ()),  # exactly full
        ([("3", "1Gi")], ("1001m", "1Gi"), ("Insufficient cpu",)),
        ([("1", "7Gi")], ("1", "2Gi"), ("Insufficient memory",)),
        ([("3500m", "7Gi")], ("1", "2Gi"), ("Insufficient cpu", "Insufficient memory")),
        ([("4", "8Gi")], (None, None), ()),  # requests nothing: only the pod count matters
    ],
)
def test_node_resources_fit(
    existing: list[tuple[str, str]], wanted: tuple[str | None, str | None], expected: tuple
) -> None:
    placed = [pod(f"e{i}", cpu=c, memory=m) for i, (c, m) in enumerate(existing)]
    n = node_info(node("n", cpu="4", memory="8Gi"), *placed)
    assert (
        filters.node_resources_fit(info(pod("p", cpu=wanted[0], memory=wanted[1])), n) == expected
    )


def test_too_many_pods_comes_first() -> None:
    n = node_info(node("n", cpu="1", pods="2"), pod("a", cpu="1"), pod("b"))
    assert filters.node_resources_fit(info(pod("p", cpu="1")), n) == (
        "Too many pods",
        "Insufficient cpu",
    )
    no_pods_reported = node_info(node("m", allocatable={"cpu": "4", "memory": "1Gi"}))
    assert filters.node_resources_fit(info(pod("p")), no_pods_reported) == ("Too many pods",)


def test_extended_resources() -> None:
    gpu_pod = pod(
        "p",
        containers=[
            {"name": "c", "image": "i", "resources": {"requests": {"nvidia.com/gpu": "1"}}}
        ],
    )
    plain = node_info(node("n"))
    gpu = node_info(node("g", allocatable={"cpu": "4", "pods": "10", "nvidia.com/gpu": "2"}))
    assert filters.node_resources_fit(info(gpu_pod), plain) == ("Insufficient nvidia.com/gpu",)
    assert filters.node_resources_fit(info(gpu_pod), gpu) == ()
