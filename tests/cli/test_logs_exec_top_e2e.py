"""``raftsman logs / exec / top`` end to end: store, apiserver and node agent as processes.

A real ``raftsman node-agent`` (process runtime) registers its Node, runs a pod bound to
it, and serves its API; the CLI reaches it only through the API server. The pod is
deleted (its containers stopped by the agent) before the agent is stopped, and anything
left under the agent's data directory is killed last.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.cli.conftest import Cli
from tests.node_agent.runtime.conftest import _kill_everything
from tests.support import processes
from tests.support.apiserver import apiserver_process
from tests.support.raftstore import raftstore_cluster

ROOT = Path(__file__).resolve().parents[2]
NODE = "e2e-node"

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web-1
spec:
  nodeName: e2e-node
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo hello from web-1; while true; do sleep 1; done"]
"""


def _json(cli: Cli, *args: str) -> dict[str, Any] | None:
    result = cli.run(*args, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def _agent_published(cli: Cli) -> bool:
    node = _json(cli, "get", "node", NODE)
    status = node.get("status", {}) if node else {}
    port = status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
    return bool(port)


def _running(cli: Cli) -> bool:
    pod = _json(cli, "get", "pod", "web-1")
    return pod is not None and pod.get("status", {}).get("phase") == "Running"


def test_logs_exec_top_through_a_real_node_agent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "node"
    with (
        raftstore_cluster(tmp_path / "store", size=1) as store,
        apiserver_process(store.endpoints, tmp_path) as apiserver,
    ):
        cli = Cli(server=apiserver.address, home=home)
        argv = [sys.executable, "-m", "cli.main", "node-agent", "--name", NODE,
                "--server", apiserver.address, "--data-dir", str(data),
                "--lease-period", "1", "--node-status-update-frequency", "1"]  # fmt: skip
        try:
            with processes.running(argv, log_path=tmp_path / "agent.log", cwd=ROOT) as agent:
                processes.wait_for(
                    lambda: _agent_published(cli),
                    timeout=60,
                    interval=0.3,
                    message=lambda: f"the node agent to register:\n{agent.log_text()}",
                )
                cli.ok("apply", "-f", "-", stdin=POD)
                processes.wait_for(
                    lambda: _running(cli),
                    timeout=60,
                    interval=0.3,
                    message=lambda: f"web-1 to run:\n{agent.log_text()}",
                )
                processes.wait_for(
                    lambda: cli.run("logs", "web-1").stdout == "hello from web-1\n",
                    timeout=30,
                    interval=0.3,
                    message="the log line",
                )
                done = cli.run("exec", "web-1", "--", "sh", "-c", "echo from exec; exit 4")
                assert (done.returncode, done.stdout) == (4, "from exec\n"), done.stderr
                assert done.stderr == "command terminated with exit code 4\n"
                piped = cli.run("exec", "-i", "web-1", "-c", "app", "--", "cat", stdin="piped\n")
                assert (piped.returncode, piped.stdout) == (0, "piped\n"), piped.stderr
                top = cli.run("top", "pods")
                assert top.returncode == 0, top.stderr
                assert top.stdout.splitlines()[1].split()[0] == "web-1"

                cli.ok("delete", "pod", "web-1")
                processes.wait_for(
                    lambda: cli.run("get", "pod", "web-1").returncode == 1,
                    timeout=60,
                    interval=0.3,
                    message=lambda: f"web-1 to be removed:\n{agent.log_text()}",
                )
        finally:
            _kill_everything(data / "containers")
