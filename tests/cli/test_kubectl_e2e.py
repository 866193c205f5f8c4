"""The CLI verbs end to end: ``python -m cli.main ...`` subprocesses against a real
raftstore member and a real ``raftsman apiserver`` process, both on free ports and both
stopped by the fixture. HOME is a temporary directory, so no real config is read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_apply_get_edit_roundtrip_delete(cli: Cli, tmp_path: Path) -> None:
    created = cli.ok("apply", "-f", str(EXAMPLES))
    assert created.splitlines() == [
        "configmap/game-demo created",
        "job.batch/pi created",
        "deployment.apps/web created",
        "service/web created",
    ]
    again = cli.ok("apply", "-f", str(EXAMPLES))
    assert again.count(" unchanged") == 4, again

    edited = (EXAMPLES / "web-deployment.yaml").read_text().replace("replicas: 3", "replicas: 2")
    assert cli.ok("apply", "-f", "-", stdin=edited) == "deployment.apps/web configured\n"

    table = cli.ok("get", "deploy").splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:2] == ["web", "0/2"]
    services = cli.ok("get", "svc", "web").splitlines()
    assert services[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1].split()[1] == "ClusterIP" and "8080/TCP" in services[1]
    assert "game-demo" in cli.ok("get", "cm", "--show-labels")
    everything = cli.ok("get", "all")
    assert "service/web" in everything and "deployment.apps/web" in everything
    assert "job.batch/pi" in everything
    spaces = cli.ok("get", "ns").splitlines()
    assert spaces[0].split() == ["NAME", "STATUS", "AGE"] and any("default" in s for s in spaces)
    assert cli.ok("get", "cm", "-A").splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert cli.ok("get", "deploy,svc", "-o", "name").split() == [
        "deployment.apps/web",
        "service/web",
    ]
    assert cli.ok("get", "deploy", "-l", "app=web", "-o", "name").strip() == "deployment.apps/web"
    assert cli.ok("get", "deploy", "-l", "app=nope", "-o", "name") == ""
    selected = cli.ok("get", "cm", "--field-selector", "metadata.name=game-demo", "-o", "name")
    assert selected.strip() == "configmap/game-demo"

    one = json.loads(cli.ok("get", "deploy/web", "-o", "json"))
    assert one["kind"] == "Deployment" and one["spec"]["replicas"] == 2
    several = json.loads(cli.ok("get", "deploy", "-o", "json"))
    assert several["kind"] == "List" and [i["metadata"]["name"] for i in several["items"]] == [
        "web"
    ]

    dumped = tmp_path / "all.yaml"
    dumped.write_text(cli.ok("get", "all", "-o", "yaml"))
    assert cli.ok("apply", "-f", str(dumped)).count(" unchanged") == 3

    assert cli.ok("delete", "-f", str(EXAMPLES / "game-configmap.yaml")) == (
        'configmap "game-demo" deleted\n'
    )
    assert cli.ok("delete", "svc", "web") == 'service "web" deleted\n'
    assert cli.ok("delete", "deploy", "-l", "app=web") == 'deployment.apps "web" deleted\n'
    assert cli.ok("delete", "jobs", "--all") == 'job.batch "pi" deleted\n'
    empty = cli.run("get", "cm")
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == "No resources found in default namespace."


def test_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    missing = cli.run("get", "po", "nope")
    assert missing.returncode == 1
    assert missing.stderr == 'Error from server (NotFound): pods "nope" not found\n'
    gone = cli.run("delete", "deploy", "nope")
    assert gone.returncode == 1
    assert gone.stderr == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    assert cli.run("delete", "deploy", "nope", "--ignore-not-found").returncode == 0

    unknown = cli.run("get", "flurbs")
    assert unknown.returncode == 1
    assert unknown.stderr == 'error: the server doesn\'t have a resource type "flurbs"\n'

    cli.ok("create", "-f", str(EXAMPLES / "game-configmap.yaml"))
    twice = cli.run("create", "-f", str(EXAMPLES / "game-configmap.yaml"))
    assert twice.returncode == 1 and twice.stderr.startswith("Error from server (AlreadyExists):")
    cli.ok("delete", "cm", "game-demo")

    invalid = cli.run(
        "apply", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"
    )
    assert invalid.returncode == 1 and invalid.stderr.startswith("Error from server (Invalid):")
    assert invalid.stderr.count("\n") == 1

    dead = f"127.0.0.1:{free_port()}"
    unreachable = cli.run("get", "pods", server=dead)
    assert unreachable.returncode == 1
    assert unreachable.stderr == (
        f"error: cannot reach the API server at {dead} (from $RAFTSMAN_SERVER); "
        "start a cluster with: raftsman up\n"
    )
    flag = cli.run("get", "pods", "--server", dead, "--verbose")
    assert flag.returncode == 1 and "Traceback" in flag.stderr and "(from --server)" in flag.stderr

    noconfig = cli.run("get", "pods", server=" ")
    assert noconfig.returncode == 1
    assert noconfig.stderr.startswith(
        f"error: no cluster config at {cli.home}/.raftsman/local/config"
    )
    assert "start a cluster with: raftsman up" in noconfig.stderr
    assert cli.run("version").stdout.startswith("raftsman ")


CORPUS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: corpus-config}
data:
  game.properties: |
    enemies=aliens
    lives=3
---
apiVersion: v1
kind: Pod
metadata:
  name: corpus-pod
  labels: {app: corpus}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 3600"]
    ports: [{name: http, containerPort: 8080}]
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      initialDelaySeconds: 3
      periodSeconds: 3
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 5
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: "0.5", memory: 128Mi}
    volumeMounts:
    - {name: config, mountPath: /etc/config, readOnly: true}
  volumes:
  - name: config
    configMap:
      name: corpus-config
      items: [{key: game.properties, path: game.properties}]
"""


def test_documentation_shaped_manifests_round_trip(cli: Cli, tmp_path: Path) -> None:
    """A ConfigMap mounted as a volume and a Pod with probes: apply, read back as YAML,
    re-apply the YAML unchanged."""
    assert cli.ok("apply", "-f", "-", stdin=CORPUS).splitlines() == [
        "configmap/corpus-config created",
        "pod/corpus-pod created",
    ]
    dumped = tmp_path / "corpus.yaml"
    dumped.write_text(cli.ok("get", "cm/corpus-config", "pod/corpus-pod", "-o", "yaml"))
    again = cli.ok("apply", "-f", str(dumped))
    assert again.splitlines() == ["configmap/corpus-config unchanged", "pod/corpus-pod unchanged"]
    pod = json.loads(cli.ok("get", "pod", "corpus-pod", "-o", "json"))
    probe = pod["spec"]["containers"][0]["livenessProbe"]
    assert probe["httpGet"]["port"] == "http" and probe["timeoutSeconds"] == 1  # defaulted
    assert pod["spec"]["volumes"][0]["configMap"]["defaultMode"] == 420
    cli.ok("delete", "pod", "corpus-pod", "--grace-period=0")
    cli.ok("delete", "cm", "corpus-config")
