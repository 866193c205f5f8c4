"""label, annotate, patch, scale, cordon/uncordon, taint and api-resources end to end
(``python -m cli.main`` against a real raftstore member and a real apiserver process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.cli.conftest import ROOT, Cli
from tests.support.processes import wait_for

CM = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: web}}
data: {a: "1"}
"""

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: main, image: busybox}]}
"""

NODE = """
apiVersion: v1
kind: Node
metadata: {name: %s}
"""


@contextmanager
def _watching(cli: Cli, *args: str) -> Iterator[Callable[[], str]]:
    """Run ``raftsman ARGS`` (a watching verb) in the background; yields a reader of its
    output so far; the process group is interrupted on exit."""
    env = {**os.environ, "HOME": str(cli.home), "RAFTSMAN_SERVER": cli.server}
    out_path = cli.home / "watch.out"
    with open(out_path, "w") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield out_path.read_text
    finally:
        os.killpg(watcher.pid, 15)
        watcher.wait(timeout=10)


def _get(cli: Cli, *args: str) -> dict:
    return json.loads(cli.ok("get", *args, "-o", "json"))


def test_label_and_annotate(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=CM)
    assert cli.ok("label", "cm", "settings", "tier=front") == "configmap/settings labeled\n"
    assert _get(cli, "cm", "settings")["metadata"]["labels"] == {"app": "web", "tier": "front"}
    # Same value again: nothing to do.
    assert cli.ok("label", "cm/settings", "tier=front") == "configmap/settings not labeled\n"
    # A different value needs --overwrite; the object is untouched without it.
    refused = cli.run("label", "cm", "settings", "app=api")
    assert refused.returncode == 1
    assert refused.stderr == "error: 'app' already has a value (web), and --overwrite is false\n"
    assert (
        cli.ok("label", "cm", "settings", "app=api", "tier-", "--overwrite")
        == "configmap/settings labeled\n"
    )
    assert _get(cli, "cm", "settings")["metadata"]["labels"] == {"app": "api"}
    assert (
        cli.ok("annotate", "cm", "-l", "app=api", "owner=team-a")
        == "configmap/settings annotated\n"
    )
    assert _get(cli, "cm", "settings")["metadata"]["annotations"]["owner"] == "team-a"
    bad = cli.run("label", "cm", "settings", "no spaces=x")
    assert bad.returncode == 1 and "invalid label" in bad.stderr
    stale = cli.run("label", "cm", "settings", "x=y", "--resource-version=1")
    assert stale.returncode == 1 and stale.stderr.startswith("Error from server (Conflict)")
    cli.ok("delete", "cm", "settings")


def test_patch_and_scale(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=DEPLOY)
    assert cli.ok("scale", "deploy/api", "--replicas=4") == "deployment.apps/api scaled\n"
    assert _get(cli, "deploy", "api")["spec"]["replicas"] == 4
    wrong = cli.run("scale", "deploy", "api", "--replicas=2", "--current-replicas=3")
    assert wrong.returncode == 1 and wrong.stderr == "error: expected replicas to be 3, was 4\n"
    assert (
        cli.ok("patch", "deploy", "api", "-p", '{"spec":{"replicas":2}}')
        == "deployment.apps/api patched\n"
    )
    assert _get(cli, "deploy", "api")["spec"]["replicas"] == 2
    same = cli.ok("patch", "deploy", "api", "-p", "spec: {replicas: 2}")
    assert same == "deployment.apps/api patched (no change)\n"
    notscalable = cli.run("scale", "cm", "x", "--replicas=1")
    assert notscalable.returncode == 1 and "cannot scale configmap/x" in notscalable.stderr
    badpatch = cli.run("patch", "deploy", "api", "-p", "[1, 2]")
    assert badpatch.returncode == 1 and "the patch must be a JSON object" in badpatch.stderr
    cli.ok("delete", "deploy", "api")


def test_cordon_uncordon_taint(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=NODE % "n-mut")
    assert cli.ok("cordon", "n-mut") == "node/n-mut cordoned\n"
    assert _get(cli, "node", "n-mut")["spec"]["unschedulable"] is True
    assert cli.ok("cordon", "n-mut") == "node/n-mut already cordoned\n"
    assert cli.ok("uncordon", "n-mut") == "node/n-mut uncordoned\n"
    assert "unschedulable" not in _get(cli, "node", "n-mut")["spec"]
    assert cli.ok("taint", "nodes", "n-mut", "dedicated=gpu:NoSchedule") == "node/n-mut tainted\n"
    taints = _get(cli, "node", "n-mut")["spec"]["taints"]
    assert [(t["key"], t["value"], t["effect"]) for t in taints] == [
        ("dedicated", "gpu", "NoSchedule")
    ]
    clash = cli.run("taint", "nodes", "n-mut", "dedicated=cpu:NoSchedule")
    assert clash.returncode == 1 and "--overwrite is false" in clash.stderr
    bad = cli.run("taint", "nodes", "n-mut", "k=v:Sometimes")
    assert bad.returncode == 1 and "invalid taint effect: Sometimes" in bad.stderr
    assert cli.ok("taint", "nodes", "n-mut", "dedicated:NoSchedule-") == "node/n-mut untainted\n"
    assert "taints" not in _get(cli, "node", "n-mut")["spec"]
    missing = cli.run("taint", "nodes", "n-mut", "dedicated-")
    assert missing.returncode == 1 and 'taint "dedicated" not found' in missing.stderr
    cli.ok("delete", "node", "n-mut")


def test_api_resources(cli: Cli) -> None:
    lines = cli.ok("api-resources").splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    pods = next(line.split() for line in lines if line.startswith("pods "))
    assert pods == ["pods", "po", "v1", "true", "Pod"]
    deploy = next(line.split() for line in lines if line.startswith("deployments "))
    assert deploy == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert "nodes" in cli.ok("api-resources", "--namespaced=false", "-o", "name").split()


def test_get_jsonpath_sort_by_and_watch(cli: Cli) -> None:
    for name, lives in (("zeta", "1"), ("alpha", "3"), ("mid", "2")):
        cli.ok(
            "apply",
            "-f",
            "-",
            stdin=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{lives: '{lives}'}}\n",
        )
    names = cli.ok("get", "cm", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert names == sorted(names)
    by_lives = cli.ok("get", "cm", "--sort-by=.data.lives", "-o", "name").split()
    assert by_lives[-3:] == ["configmap/zeta", "configmap/mid", "configmap/alpha"]
    one = cli.ok("get", "cm", "mid", "-o", 'jsonpath={.metadata.name}={.data.lives}{"\\n"}')
    assert one == "mid=2\n"
    bad = cli.run("get", "cm", "-o", "jsonpath={.items[")
    assert bad.returncode == 1 and "error parsing jsonpath" in bad.stderr

    # -w: the current object first, then one line per change, until interrupted.
    with _watching(cli, "get", "cm", "mid", "-w", "--output-watch-events", "-o", "name") as out:
        wait_for(lambda: "configmap/mid" in out(), timeout=30, message="the initial listing")
        cli.ok("label", "cm", "mid", "seen=yes")
        wait_for(lambda: out().count("configmap/mid") >= 2, timeout=30, message="the change")
    for name in ("zeta", "alpha", "mid"):
        cli.ok("delete", "cm", name)


EVENT = """
apiVersion: v1
kind: Event
metadata: {name: %(name)s}
involvedObject: {kind: Pod, name: %(pod)s, namespace: default}
reason: %(reason)s
message: %(message)s
type: %(type)s
count: 1
"""


def test_events_table_and_filters(cli: Cli) -> None:
    cli.ok(
        "apply",
        "-f",
        "-",
        stdin=EVENT
        % dict(name="e1", pod="web-1", reason="Scheduled", message="assigned", type="Normal"),
    )
    cli.ok(
        "apply",
        "-f",
        "-",
        stdin=EVENT
        % dict(name="e2", pod="web-2", reason="BackOff", message="restarting", type="Warning"),
    )
    lines = cli.ok("events").splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [line.split()[2:4] for line in lines[1:]] == [
        ["Scheduled", "pod/web-1"],
        ["BackOff", "pod/web-2"],
    ]
    assert "BackOff" not in cli.ok("events", "--for", "pod/web-1")
    only = cli.ok("events", "--types", "Warning").splitlines()
    assert len(only) == 2 and "BackOff" in only[1]
    assert cli.ok("get", "events").splitlines()[0].split()[:3] == ["LAST", "SEEN", "TYPE"]
    bad = cli.run("events", "--types", "Loud")
    assert bad.returncode == 2 and "Event types are Normal and Warning" in bad.stderr

    # -w: the listing, then a row per new event that passes the filters.
    with _watching(cli, "events", "-w", "--types", "Warning") as out:
        wait_for(lambda: "pod/web-2" in out(), timeout=30, message="the initial listing")
        for name, kind in (("e3", "Normal"), ("e4", "Warning")):
            event = dict(name=name, pod="web-3", reason="Late", message=kind, type=kind)
            cli.ok("apply", "-f", "-", stdin=EVENT % event)
        wait_for(lambda: "pod/web-3" in out(), timeout=30, message="the new Warning")
    rows = out().splitlines()
    assert rows[0].split()[:3] == ["LAST", "SEEN", "TYPE"]
    assert [row.split()[-1] for row in rows[1:]] == ["restarting", "Warning"]
    cli.ok("delete", "events", "--all")


POD = """
apiVersion: v1
kind: Pod
metadata: {name: desc-pod, labels: {app: desc}}
spec:
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "sleep 1000"]
    ports: [{containerPort: 8080}]
    env: [{name: MODE, value: fast}]
    resources: {requests: {cpu: 100m}}
    readinessProbe: {tcpSocket: {port: 8080}}
"""


def test_describe(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=POD)
    cli.ok(
        "apply",
        "-f",
        "-",
        stdin=EVENT
        % dict(name="d1", pod="desc-pod", reason="Scheduled", message="placed", type="Normal"),
    )
    text = cli.ok("describe", "pod", "desc-pod")
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "desc-pod"]
    assert any(line.split() == ["Labels:", "app=desc"] for line in lines)
    assert "Containers:" in lines and "  main:" in lines
    assert any("Command:" in line and "sh -c sleep 1000" in line for line in lines)
    assert any(line.split() == ["MODE:", "fast"] for line in lines)
    assert any("Readiness:" in line and "tcp-socket :8080" in line for line in lines)
    assert "Events:" in lines and any("Scheduled" in line and "placed" in line for line in lines)
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: desc}\nspec: {selector: {app: desc}, ports: [{port: 80, targetPort: 8080}]}\n"
    cli.ok("apply", "-f", "-", stdin=svc)
    service = cli.ok("describe", "svc/desc").splitlines()
    assert any(line.split()[:2] == ["Type:", "ClusterIP"] for line in service)
    assert any(line.split() == ["TargetPort:", "8080/TCP"] for line in service)
    assert service[-1].split() == ["Events:", "<none>"]
    cm = cli.ok("describe", "cm", "-l", "nothing=here")
    assert cm == "" or cm == "\n"
    missing = cli.run("describe", "pod", "nope")
    assert (
        missing.returncode == 1
        and missing.stderr == 'Error from server (NotFound): pods "nope" not found\n'
    )
    cli.ok("delete", "pod", "desc-pod", "--grace-period=0")
    cli.ok("delete", "svc", "desc")
    cli.ok("delete", "events", "--all")
