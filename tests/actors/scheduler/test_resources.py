"""A pod's request: containers summed, init containers as a floor, sidecars added."""

from __future__ import annotations

from typing import Any

import pytest

from actors.scheduler.resources import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    Resources,
    node_allocatable,
    pod_requests,
)
from tests.actors.scheduler.objects import node, pod

MI = 1024 * 1024


def container(name: str, cpu: str | None = None, memory: str | None = None, **kw: Any) -> Any:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "image": "i", "resources": {"requests": requests}, **kw}


def with_containers(containers: list[Any], init: list[Any] | None = None) -> Any:
    return pod("p", containers=containers, spec={"initContainers": init or []})


def test_containers_are_summed() -> None:
    p = with_containers([container("a", "250m", "64Mi"), container("b", "0.5", "1Gi")])
    assert pod_requests(p) == Resources(750, 64 * MI + 1024 * MI)


@pytest.mark.parametrize(
    ("init", "expected_cpu"),
    [
        ([container("i", "2")], 2000),  # a big init container raises the floor
        ([container("i", "100m")], 500),  # a small one does not
        ([container("i", "1"), container("j", "3")], 3000),  # the largest counts, not the sum
    ],
)
def test_init_containers_are_a_floor(init: list[Any], expected_cpu: int) -> None:
    p = with_containers([container("a", "500m")], init)
    assert pod_requests(p).milli_cpu == expected_cpu


def test_sidecars_run_beside_the_containers_and_later_init_containers() -> None:
    sidecar = container("proxy", "200m", restartPolicy="Always")
    p = with_containers([container("a", "500m")], [sidecar, container("migrate", "1")])
    # containers 500m + sidecar 200m = 700m; the migration ran beside the sidecar: 1200m
    assert pod_requests(p).milli_cpu == 1200
    q = with_containers([container("a", "500m")], [sidecar, container("tiny", "100m")])
    assert pod_requests(q).milli_cpu == 700


def test_non_zero_view_fills_in_kubernetes_defaults() -> None:
    p = with_containers([container("a"), container("b", "1")])
    assert pod_requests(p) == Resources(1000, 0)
    assert pod_requests(p, non_zero=True) == Resources(
        1000 + DEFAULT_MILLI_CPU_REQUEST, 2 * DEFAULT_MEMORY_REQUEST
    )
    assert DEFAULT_MILLI_CPU_REQUEST == 100 and DEFAULT_MEMORY_REQUEST == 200 * MI


def test_quantities_round_up_and_bad_ones_are_named() -> None:
    assert pod_requests(with_containers([container("a", "0.1m", "1.5")])) == Resources(1, 2)
    with pytest.raises(ValueError, match="resource 'cpu'"):
        Resources.parse({"cpu": "lots"})


def test_node_allocatable() -> None:
    resources, pods = node_allocatable(node("n", cpu="32", memory="64Gi", pods="110"))
    assert (resources.milli_cpu, resources.memory, pods) == (32000, 64 * 1024 * MI, 110)
    _, none = node_allocatable(node("m", allocatable={"cpu": "1"}))
    assert none == 0
