"""rollout and set image: progress wording (pure) and the verbs that need no controller
(end to end against a real apiserver process)."""

from __future__ import annotations

import json

import pytest

from cli.kubectl import session
from cli.kubectl.rollout import rollout_state
from proto.k8s import kinds
from tests.cli.conftest import Cli

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 3
  selector: {matchLabels: {app: roll}}
  template:
    metadata: {labels: {app: roll}}
    spec:
      initContainers: [{name: init, image: busybox}]
      containers: [{name: main, image: busybox}, {name: side, image: python}]
"""


def _deployment(
    *,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    replicas: int = 3,
    available: int = 3,
):
    d = kinds.by_kind("Deployment").new()
    d.metadata.name = "web"
    d.metadata.generation = generation
    d.spec.replicas = 3
    d.status.observed_generation = observed
    d.status.updated_replicas = updated
    d.status.replicas = replicas
    d.status.available_replicas = available
    return d


@pytest.mark.parametrize(
    ("fields", "done", "message"),
    [
        ({"observed": 1}, False, "Waiting for deployment spec update to be observed..."),
        (
            {"updated": 1, "replicas": 4},
            False,
            'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
        ),
        (
            {"replicas": 4},
            False,
            'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
        ),
        (
            {"available": 2},
            False,
            'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
        ),
        ({}, True, 'deployment "web" successfully rolled out'),
    ],
)
def test_rollout_status_wording(fields: dict[str, int], done: bool, message: str) -> None:
    assert rollout_state(_deployment(**fields)) == (done, message)


def test_progress_deadline_is_an_error() -> None:
    d = _deployment(available=1)
    d.status.conditions.add(type="Progressing", status="False", reason="ProgressDeadlineExceeded")
    with pytest.raises(
        session.UsageProblem, match='deployment "web" exceeded its progress deadline'
    ):
        rollout_state(d)


def test_set_image_pause_resume_restart(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=DEPLOY)
    assert (
        cli.ok("set", "image", "deploy/roll", "main=busybox:1.36")
        == "deployment.apps/roll image updated\n"
    )
    spec = json.loads(cli.ok("get", "deploy", "roll", "-o", "json"))["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["containers"]] == ["busybox:1.36", "python"]
    cli.ok("set", "image", "deployment", "roll", "*=debian")
    spec = json.loads(cli.ok("get", "deploy", "roll", "-o", "json"))["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["initContainers"] + spec["containers"]] == ["debian"] * 3
    missing = cli.run("set", "image", "deploy/roll", "nope=x")
    assert missing.returncode == 1
    assert (
        missing.stderr
        == "error: unable to find container named 'nope' (containers: init, main, side)\n"
    )

    assert cli.ok("rollout", "pause", "deploy/roll") == "deployment.apps/roll paused\n"
    again = cli.run("rollout", "pause", "deploy/roll")
    assert again.returncode == 1 and "is already paused" in again.stderr
    assert cli.ok("rollout", "resume", "deploy/roll") == "deployment.apps/roll resumed\n"
    assert cli.ok("rollout", "restart", "deploy/roll") == "deployment.apps/roll restarted\n"
    template = json.loads(cli.ok("get", "deploy", "roll", "-o", "json"))["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    wrong = cli.run("rollout", "status", "cm/x")
    assert wrong.returncode == 1 and "rollout works on deployments" in wrong.stderr
    # Without a controller the spec change is never observed: --no-watch reports and exits.
    pending = cli.run("rollout", "status", "deploy/roll", "--no-watch")
    assert pending.stdout == "Waiting for deployment spec update to be observed...\n"
    cli.ok("delete", "deploy", "roll")


ENV_SOURCE = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {log-level: debug, region.name: eu}
"""


def test_set_env(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=DEPLOY + "---" + ENV_SOURCE)

    def env_of(container: str) -> list[dict[str, object]]:
        spec = json.loads(cli.ok("get", "deploy", "roll", "-o", "json"))["spec"]["template"]
        found = spec["spec"]["initContainers"] + spec["spec"]["containers"]
        return next(c for c in found if c["name"] == container).get("env", [])

    assert (
        cli.ok("set", "env", "deploy/roll", "-c", "main", "A=1", "B=two")
        == "deployment.apps/roll env updated\n"
    )
    assert env_of("main") == [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}]
    assert env_of("side") == []
    cli.ok("set", "env", "deploy/roll", "-c", "main", "A-", "B=2")
    assert env_of("main") == [{"name": "B", "value": "2"}]
    refused = cli.run("set", "env", "deploy/roll", "-c", "main", "B=3", "--no-overwrite")
    assert refused.returncode == 1
    assert "container 'main' already has B; use --overwrite" in refused.stderr
    assert env_of("main") == [{"name": "B", "value": "2"}]

    cli.ok("set", "env", "deploy/roll", "--from", "configmap/settings", "--prefix", "APP_")
    ref = {
        "name": "APP_LOG_LEVEL",
        "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "log-level"}},
    }
    assert ref in env_of("side") and ref in env_of("init")
    listing = cli.ok("set", "env", "deploy/roll", "-c", "main", "--list")
    assert listing.splitlines() == [
        "# deployment.apps/roll, container main",
        "B=2",
        "# APP_LOG_LEVEL from configmap settings, key log-level",
        "# APP_REGION_NAME from configmap settings, key region.name",
    ]

    bad = cli.run("set", "env", "deploy/roll", "-c", "nope", "X=1")
    assert bad.returncode == 1
    assert bad.stderr == "error: no container matches 'nope' (containers: init, main, side)\n"
    missing = cli.run("set", "env", "deploy/roll", "--from", "secret/absent")
    assert missing.returncode == 1
    assert 'secret "absent" not found in namespace "default"' in missing.stderr
    cli.ok("delete", "deploy", "roll")
    cli.ok("delete", "cm", "settings")
