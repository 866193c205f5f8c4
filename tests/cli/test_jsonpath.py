"""kubectl's JSONPath templates, as ``-o jsonpath=`` and ``--sort-by`` use them."""

from __future__ import annotations

import pytest

from cli.kubectl.jsonpath import JsonPathError, render

POD_LIST = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {
                "containers": [
                    {"name": "c1", "image": "busybox"},
                    {"name": "c2", "image": "python"},
                ]
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "True"},
                ],
                "restarts": 2,
            },
        },
        {
            "metadata": {"name": "b"},
            "spec": {"containers": [{"name": "c1", "image": "nginx"}]},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"}],
                "restarts": 0,
            },
        },
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.kind}", "List"),
        ("{.items[*].metadata.name}", "a b"),
        ("{.items[0].spec.containers[-1].image}", "python"),
        ("{.items[0:1].metadata.name}", "a"),
        ("{.items[*].spec.containers[*].name}", "c1 c2 c1"),
        ('{.items[?(@.status.phase=="Pending")].metadata.name}', "b"),
        ("{.items[?(@.status.restarts>1)].metadata.name}", "a"),
        ("{.items[?(@.metadata.labels)].metadata.name}", "a"),
        ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
        ("{..image}", "busybox python nginx"),
        (r"{.items[0].metadata.labels['app\.kubernetes\.io/name']}", "web"),
        (
            '{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}',
            "a\tRunning\nb\tPending\n",
        ),
        ("name: {.items[1].metadata.name}!", "name: b!"),
        ("{.items[0].status.restarts}", "2"),
        ("{.items[0].metadata.labels}", '{"app.kubernetes.io/name":"web"}'),
        ("{.items[5].metadata.name}", ""),
        ("{.nothing.here}", ""),
        ("{$.kind}", "List"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, POD_LIST) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.items[*", "unclosed"),
        ("{range .items[*]}{.a}", "without {end}"),
        ("{end}", "without {range}"),
        ("{.items[x]}", "bad index"),
        ("{.items", "unclosed action"),
    ],
)
def test_errors_name_the_problem(template: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=message):
        render(template, POD_LIST)
