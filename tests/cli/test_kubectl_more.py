"""drain, edit, explain and completion (end to end against a real apiserver process
where they talk to one)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from cli.kubectl.explain import explain_text
from tests.cli.conftest import ROOT, Cli

NODE = "apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n"


def pod(name: str, node: str, *, owner: str = "", emptydir: bool = False) -> str:
    owners = (
        f"  ownerReferences: [{{apiVersion: apps/v1, kind: {owner}, name: o, uid: u-{name}, controller: true}}]\n"
        if owner
        else ""
    )
    volumes = "  volumes: [{name: scratch, emptyDir: {}}]\n" if emptydir else ""
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{owners}"
        f"spec:\n  nodeName: {node}\n  containers: [{{name: c, image: busybox}}]\n{volumes}"
    )


def test_drain_refuses_unsafe_pods_then_evicts(cli: Cli) -> None:
    cli.ok("apply", "-f", "-", stdin=NODE % "dn1")
    cli.ok("apply", "-f", "-", stdin=pod("managed", "dn1", owner="ReplicaSet"))
    cli.ok("apply", "-f", "-", stdin=pod("daemon", "dn1", owner="DaemonSet"))
    cli.ok("apply", "-f", "-", stdin=pod("bare", "dn1"))
    refused = cli.run("drain", "dn1")
    assert refused.returncode == 1
    assert (
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/daemon"
        in refused.stderr
    )
    assert (
        "cannot delete Pods that declare no controller (use --force to override): default/bare"
        in refused.stderr
    )
    assert refused.stdout == "node/dn1 cordoned\n"  # cordoned, nothing evicted
    names = cli.ok("get", "pods", "-o", "name").split()
    assert {"pod/managed", "pod/daemon", "pod/bare"} <= set(names)
    # Pods bound to a node wait for their agent; with no agent, grace 0 deletes at once.
    out = cli.ok(
        "drain", "dn1", "--ignore-daemonsets", "--force", "--grace-period=0", "--timeout=30"
    )
    lines = out.splitlines()
    assert "evicting pod default/managed" in lines and "evicting pod default/bare" in lines
    assert "pod/managed evicted" in lines and "pod/bare evicted" in lines
    assert lines[-1] == "node/dn1 drained"
    assert "pod/daemon" in cli.ok("get", "pods", "-o", "name").split()
    assert json.loads(cli.ok("get", "node", "dn1", "-o", "json"))["spec"]["unschedulable"] is True
    cli.ok("delete", "pod", "daemon", "--grace-period=0")
    cli.ok("delete", "node", "dn1")


def test_edit_applies_retries_on_error_and_cancels(cli: Cli, tmp_path: Path) -> None:
    cli.ok(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ed}\ndata: {a: x1}\n",
    )
    editor = tmp_path / "editor.py"
    # An "editor" that applies the n-th scripted change to the file it is given.
    editor.write_text(
        "import sys, pathlib\n"
        "state = pathlib.Path(sys.argv[1]).with_suffix('.n')\n"
        "n = int(state.read_text()) if state.exists() else 0\n"
        "state.write_text(str(n + 1))\n"
        "steps = sys.argv[2].split('|')\n"
        "path = pathlib.Path(sys.argv[3])\n"
        "if n < len(steps) and steps[n]:\n"
        "    old, new = steps[n].split('=>')\n"
        "    path.write_text(path.read_text().replace(old, new))\n"
    )

    def run(steps: str) -> subprocess.CompletedProcess[str]:
        marker = tmp_path / f"run-{abs(hash(steps))}"
        env_editor = shlex.join([sys.executable, str(editor), str(marker), steps])
        return cli.run("edit", "cm", "ed", env={"RAFTSMAN_EDITOR": env_editor})

    done = run("a: x1=>a: x2")
    assert done.returncode == 0 and done.stdout == "configmap/ed edited\n", done.stderr
    assert json.loads(cli.ok("get", "cm", "ed", "-o", "json"))["data"] == {"a": "x2"}
    assert run("").stdout == "Edit cancelled, no changes made.\n"
    # A bad edit re-opens the editor with the error; the second round fixes it.
    fixed = run("name: ed=>name: Bad_Name|name: Bad_Name=>name: ed\n  labels: {x: y}")
    assert fixed.returncode == 0 and fixed.stdout == "configmap/ed edited\n", fixed.stderr
    assert json.loads(cli.ok("get", "cm", "ed", "-o", "json"))["metadata"]["labels"] == {"x": "y"}
    # Giving up (saving the broken file unchanged) exits 1 and keeps a copy.
    failed = run("name: ed=>name: Bad_Name|")
    assert failed.returncode == 1 and "A copy of your changes has been stored to" in failed.stderr
    cli.ok("delete", "cm", "ed")


def test_explain() -> None:
    text = explain_text("deploy.spec.strategy")
    assert text.splitlines()[:2] == ["KIND:     Deployment", "VERSION:  apps/v1"]
    assert "FIELD:    strategy <DeploymentStrategy>" in text
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in text.splitlines()
    containers = explain_text("po.spec.containers")
    assert "FIELD:    containers <[]Container>" in containers
    assert "  env\t<[]EnvVar>" in containers.splitlines()
    assert "  labels\t<map[string]string>" in explain_text("pod.metadata").splitlines()
    deep = explain_text("pods.spec", recursive=True)
    assert "      containerPort\t<integer>" in deep.splitlines()


def test_explain_and_completion_commands() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    bad = run("explain", "pods.spec.bogus")
    assert bad.returncode == 1 and bad.stderr.startswith(
        "error: field 'bogus' does not exist in PodSpec (fields: "
    )
    assert run("explain", "nosuchkind").returncode == 1
    for shell in ("bash", "zsh", "fish"):
        script = run("completion", shell)
        assert script.returncode == 0 and "_RAFTSMAN_COMPLETE" in script.stdout
    # The bash script really completes: ask it for the commands starting with "ro".
    env = {
        "_RAFTSMAN_COMPLETE": "bash_complete",
        "COMP_WORDS": "raftsman ro",
        "COMP_CWORD": "1",
        "PATH": "/usr/bin:/bin",
    }
    words = subprocess.run(
        [sys.executable, "-m", "cli.main"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "rollout" in words.stdout


def test_replace_cluster_info_and_delete_wait(cli: Cli) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rep}\ndata: {a: '1', b: '2'}\n"
    missing = cli.run("replace", "-f", "-", stdin=cm)
    assert missing.returncode == 1 and 'configmaps "rep" not found' in missing.stderr
    cli.ok("create", "-f", "-", stdin=cm)
    assert (
        cli.ok("replace", "-f", "-", stdin=cm.replace("a: '1', b: '2'", "a: '9'"))
        == "configmap/rep replaced\n"
    )
    assert json.loads(cli.ok("get", "cm", "rep", "-o", "json"))["data"] == {"a": "9"}  # b is gone
    stale = cm.replace("name: rep}", "name: rep, resourceVersion: '1'}")
    conflict = cli.run("replace", "-f", "-", stdin=stale)
    assert conflict.returncode == 1 and conflict.stderr.startswith("Error from server (Conflict)")

    info = cli.ok("cluster-info").splitlines()
    assert info[0].startswith(f"API server is running at {cli.server} (")

    # A pod held by a grace period on a node without an agent: --wait times out naming it,
    # --no-wait returns at once.
    cli.ok("apply", "-f", "-", stdin=pod("held", "nowhere"))
    waited = cli.run("delete", "pod", "held", "--timeout=1")
    assert waited.returncode == 1 and 'waiting for pod "held" to be gone' in waited.stderr
    assert cli.ok("delete", "pod", "held", "--grace-period=0") == 'pod "held" deleted\n'
    cli.ok("delete", "cm", "rep", "--no-wait")
