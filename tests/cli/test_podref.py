"""Which pod ``logs``/``exec`` pick for ``KIND/NAME``: against a real apiserver process."""

from __future__ import annotations

import pytest

from actors.client import open_api_client
from cli.kubectl import podref, session
from proto.k8s import kinds
from tests.cli.conftest import Cli

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: pick}
spec:
  selector: {matchLabels: {app: pick}}
  template:
    metadata: {labels: {app: pick}}
    spec: {containers: [{name: main, image: busybox}]}
"""


def _pod(name: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: pick}}}}\nspec: {{containers: [{{name: main, image: busybox}}]}}\n"


async def test_workload_names_a_running_ready_pod(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=DEPLOY)
    for name in ("pick-a", "pick-b", "pick-c"):
        cli.ok("apply", "-f", "-", stdin=_pod(name))
    async with open_api_client(cli.server) as api:
        assert await podref.resolve_pod(api, "pick-a", "default") == "pick-a"
        assert await podref.resolve_pod(api, "po/pick-b", "default") == "pick-b"
        # None runs yet: the oldest.
        assert await podref.resolve_pod(api, "deploy/pick", "default") == "pick-a"
        pod = await api.get("pods", "pick-c", namespace="default")
        pod.status.phase = "Running"
        pod.status.conditions.add(type="Ready", status="True")
        await api.update_status(pod)
        assert await podref.resolve_pod(api, "deployment/pick", "default") == "pick-c"
        with pytest.raises(session.UsageProblem, match="configmap/x has no pod selector"):
            cm = kinds.by_kind("ConfigMap").new()
            cm.metadata.name = "x"
            cm.metadata.namespace = "default"
            await api.create(cm)
            await podref.resolve_pod(api, "cm/x", "default")
    for name in ("pick-a", "pick-b", "pick-c"):
        cli.ok("delete", "pod", name, "--grace-period=0")
    cli.ok("delete", "deploy", "pick")
    cli.ok("delete", "cm", "x")
