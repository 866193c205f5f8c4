"""``raftsman describe``'s layout, as kubectl lays it out: pure, against a fake API client.

Found by the end-to-end tour: a second label or annotation was printed as ``:  value``,
every line of a table (Conditions, Events, a node's pods) ended in a colon, and the
``last-applied-configuration`` annotation (which kubectl hides) filled the screen.
"""

from __future__ import annotations

from typing import Any

from actors.client import ObjectList
from cli.kubectl.describe import Writer, describe_object
from proto.k8s import codec


class NoRelatedObjects:
    """The seam describe reads related objects through: here, there are none."""

    async def list_all(self, kind: Any, **kw: Any) -> ObjectList:
        return ObjectList(items=[], resource_version="1", continue_="")


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {
            "deployment.kubernetes.io/revision": "2",
            "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Deployment"}',
            "team": "a",
        },
    },
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "python:3"}]},
        },
    },
    "status": {
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        ]
    },
}


def test_writer_continues_values_under_values_and_keeps_rows_as_they_are() -> None:
    w = Writer()
    w.item(0, "Name", "web")
    w.item(0, "Labels", "a=1")
    w.item(0, "", "b=2")
    w.item(0, "Conditions")
    w.row(1, "Type   Status  ")
    w.row(1, "Ready  True")
    assert w.text().splitlines() == [
        "Name:    web",
        "Labels:  a=1",
        "         b=2",
        "Conditions:",
        "  Type   Status",
        "  Ready  True",
    ]


async def test_describe_deployment_reads_like_kubectl() -> None:
    deployment = codec.decode(DEPLOYMENT).obj
    lines = (await describe_object(NoRelatedObjects(), deployment, "Deployment")).splitlines()  # type: ignore[arg-type]

    at = next(i for i, line in enumerate(lines) if line.startswith("Labels:"))
    column = lines[at].index("app=web")
    assert lines[at + 1] == " " * column + "tier=front"
    at = next(i for i, line in enumerate(lines) if line.startswith("Annotations:"))
    assert lines[at][column:] == "deployment.kubernetes.io/revision: 2"
    assert lines[at + 1] == " " * column + "team: a"
    assert not any("last-applied-configuration" in line for line in lines)
    assert not any(line.startswith(":") for line in lines)

    at = lines.index("Conditions:")
    assert lines[at + 1].split() == ["Type", "Status", "Reason"]
    assert lines[at + 3].split() == ["Available", "True", "MinimumReplicasAvailable"]
    assert lines[-1].split() == ["Events:", "<none>"]
