"""``raftsman up/down/status``: real clusters of real processes, driven through the CLI.

Every test runs the CLI as ``python -m cli.main ...`` in a subprocess against a cluster
directory under ``tmp_path`` on free ports, and the ``launcher`` fixture always stops
what the test started: ``raftsman down``, then SIGKILL to any pid the state file still
names. Waiting is polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from cli.launcher import pids
from cli.launcher.layout import Layout
from cli.launcher.plan import PlanError, plan_cluster
from cli.launcher.state import (
    ClusterState,
    ProcessState,
    StateFileError,
    load,
    save,
)
from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.support import processes
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60.0


def _gone(pid: int) -> bool:
    """No such process, or only a zombie: checked without the launcher's own helpers."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


@dataclass
class Launcher:
    """The CLI pointed at one cluster directory."""

    dir: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args, f"--dir={self.dir}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"raftsman {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{self.logs()}"
            )
        return result

    def status(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.run("status", "-o", "json").stdout)
        return rows

    def stores(self) -> list[dict[str, Any]]:
        return [r for r in self.status() if r["role"] == "store"]

    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{r['ports']['client']}" for r in self.stores()]

    def recorded_pids(self) -> list[int]:
        try:
            state = json.loads((self.dir / "state.json").read_text())
        except FileNotFoundError:
            return []
        found = [state["supervisor"]["pid"], *(p["pid"] for p in state["processes"])]
        return [pid for pid in found if pid]

    def logs(self) -> str:
        logs = self.dir / "logs"
        if not logs.is_dir():
            return ""
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(logs.glob("*.log"))
        )

    def cleanup(self) -> None:
        """``down``; then SIGKILL whatever the state file names that still runs."""
        pids_before = self.recorded_pids()
        try:
            if (self.dir / "state.json").exists():
                self.run("down", check=False)
        finally:
            for pid in pids_before + self.recorded_pids():
                if not _gone(pid):
                    for kill in (os.killpg, os.kill):
                        try:
                            kill(pid, signal.SIGKILL)
                        except (ProcessLookupError, PermissionError):
                            pass


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path / "cluster")
    try:
        yield launcher
    finally:
        launcher.cleanup()


def _put(endpoint: str, key: bytes, value: bytes) -> None:
    with grpc.insecure_channel(endpoint) as channel:
        rpc_pb2_grpc.KVStub(channel).Put(rpc_pb2.PutRequest(key=key, value=value), timeout=5)


def _get(endpoint: str, key: bytes) -> bytes | None:
    with grpc.insecure_channel(endpoint) as channel:
        reply = rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=key), timeout=5)
    return reply.kvs[0].value if reply.kvs else None


def _serving(endpoint: str) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


SMALL = ("--apiservers=1", "--schedulers=0", "--controller-managers=0", "--nodes=0")
"""A cluster of stores and one API server, for the tests about the launcher's mechanics."""


def _store_by_name(launcher: Launcher, name: str) -> dict[str, Any]:
    return next(r for r in launcher.stores() if r["name"] == name)


# ------------------------------------------------------------------ end to end


def test_up_kill_restart_down_up_purge(launcher: Launcher) -> None:
    up = launcher.run("up")
    assert "ready in" in up.stdout and "etcdctl --endpoints=" in up.stdout

    rows = launcher.status()
    assert [r["role"] for r in rows].count("supervisor") == 1
    stores = [r for r in rows if r["role"] == "store"]
    assert len(stores) == 3
    assert all(r["state"] == "up" and r["restarts"] == 0 for r in stores)
    assert sum(r["leader"] for r in stores) == 1
    # The default cluster: every role, the elected ones with exactly one leader each.
    by_role = {role: [r for r in rows if r["role"] == role] for role in {r["role"] for r in rows}}
    assert {role: len(v) for role, v in by_role.items()} == {
        "supervisor": 1,
        "store": 3,
        "apiserver": 2,
        "scheduler": 2,
        "controller-manager": 2,
        "node-agent": 3,
    }
    assert all(r["state"] == "up" for r in rows)
    processes.wait_for(
        lambda: all(
            sum(r["leader"] for r in launcher.status() if r["role"] == role) == 1
            for role in ("scheduler", "controller-manager")
        ),
        timeout=20,
        message="one scheduler leader and one controller-manager leader",
    )
    assert [r["name"] for r in by_role["node-agent"]] == ["node-0", "node-1", "node-2"]
    api = by_role["apiserver"][0]
    assert api["state"] == "up" and api["endpoint"] == f"127.0.0.1:{api['ports']['api']}"
    assert not api["leader"]
    config = (launcher.dir / "config").read_text()
    assert config.count("http://127.0.0.1:") == 3
    assert f"server: {api['endpoint']}" in config
    assert _serving(api["endpoint"])
    table = launcher.run("status").stdout
    assert "apiserver" in table and f"api={api['ports']['api']}" in table
    nodes = launcher.run("get", "nodes").stdout.splitlines()
    assert [line.split()[:2] for line in nodes[1:]] == [[f"node-{i}", "Ready"] for i in range(3)]

    endpoints = launcher.endpoints()
    _put(endpoints[0], b"/kept", b"across restarts")
    assert _get(endpoints[1], b"/kept") == b"across restarts"

    # SIGKILL one store: the supervisor restarts it.
    victim = stores[1]
    os.kill(victim["pid"], signal.SIGKILL)
    restarted = processes.wait_for(
        lambda: (
            (row := _store_by_name(launcher, victim["name"]))["state"] == "up"
            and row["restarts"] == 1
            and row["pid"] != victim["pid"]
            and row
        ),
        timeout=15,
        message=lambda: f"{victim['name']} to be restarted\n{launcher.logs()}",
    )
    assert _gone(victim["pid"])
    processes.wait_for(
        lambda: sum(r["leader"] for r in launcher.stores()) == 1,
        timeout=10,
        message="one leader after the restart",
    )

    # up on a running cluster: says so, changes nothing.
    supervisor_pid = rows[0]["pid"]
    again = launcher.run("up")
    assert "already running" in again.stdout
    after = launcher.status()
    assert after[0]["pid"] == supervisor_pid
    assert _store_by_name(launcher, victim["name"])["pid"] == restarted["pid"]

    # down: everything stops, data stays.
    running = [supervisor_pid, *(r["pid"] for r in launcher.status()[1:] if r["pid"])]
    down = launcher.run("down")
    assert "stopped" in down.stdout
    assert all(r["state"] == "down" and r["pid"] is None for r in launcher.status())
    assert all(_gone(pid) for pid in running), running
    assert (launcher.dir / "data").is_dir()

    # up again: same ports, the data is still there.
    launcher.run("up")
    assert launcher.endpoints() == endpoints
    assert all(r["state"] == "up" and r["restarts"] == 0 for r in launcher.stores())
    assert _get(endpoints[2], b"/kept") == b"across restarts"

    launcher.run("down", "--purge")
    assert not launcher.dir.exists()


@pytest.mark.needs_etcd
def test_etcdctl_put_get(launcher: Launcher) -> None:
    launcher.run("up", *SMALL)
    env = {**os.environ, "ETCDCTL_API": "3"}
    endpoints = f"--endpoints={','.join(launcher.endpoints())}"
    etcdctl = shutil.which("etcdctl")
    assert etcdctl is not None
    put = subprocess.run(
        [etcdctl, endpoints, "put", "greeting", "hello"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert put.returncode == 0 and put.stdout.strip() == "OK", put.stderr
    get = subprocess.run(
        [etcdctl, endpoints, "get", "greeting", "--print-value-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert get.stdout.strip() == "hello", get.stderr


def test_base_port_and_store_count(launcher: Launcher) -> None:
    base = _free_run(5)
    launcher.run("up", *SMALL, "--stores=2", f"--base-port={base}")
    stores = launcher.stores()
    assert [r["ports"] for r in stores] == [
        {"client": base, "peer": base + 1},
        {"client": base + 2, "peer": base + 3},
    ]
    assert [r["ports"] for r in launcher.status() if r["role"] == "apiserver"] == [
        {"api": base + 4}
    ]
    launcher.run("down")
    refused = launcher.run("up", *SMALL, "--stores=3", check=False)
    assert refused.returncode == 1
    assert "has 2 stores, not 3" in refused.stderr
    assert refused.stderr.count("\n") == 1  # one line, no traceback
    refused = launcher.run("up", *SMALL, "--apiservers=2", check=False)
    assert refused.returncode == 1 and "has 1 apiservers, not 2" in refused.stderr


def test_no_restart_leaves_a_killed_store_failed(launcher: Launcher) -> None:
    launcher.run("up", *SMALL, "--no-restart")
    victim = launcher.stores()[0]
    os.kill(victim["pid"], signal.SIGKILL)
    row = processes.wait_for(
        lambda: (r := _store_by_name(launcher, victim["name"]))["state"] == "failed" and r,
        timeout=10,
        message="the killed store to be recorded failed",
    )
    assert row["restarts"] == 0 and row["pid"] is None
    assert [r["state"] for r in launcher.stores()[1:]] == ["up", "up"]


def test_down_after_the_supervisor_was_killed(launcher: Launcher) -> None:
    launcher.run("up", *SMALL, "--stores=1")
    rows = launcher.status()
    supervisor, store = rows[0]["pid"], rows[1]["pid"]
    os.kill(supervisor, signal.SIGKILL)
    processes.wait_for(lambda: _gone(supervisor), timeout=5, message="the supervisor to die")
    orphan = launcher.status()
    assert orphan[0]["state"] == "down" and orphan[1]["state"] == "up"

    launcher.run("down")
    processes.wait_for(lambda: _gone(store), timeout=5, message="the orphaned store to stop")
    assert all(r["state"] == "down" for r in launcher.status())


def test_foreground_prefixes_logs_and_stops_on_ctrl_c(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "foreground.log"
    argv = [sys.executable, "-m", "cli.main", "up", "--foreground", "--stores=1", *SMALL]
    with processes.running([*argv, f"--dir={launcher.dir}"], log_path=log, cwd=ROOT) as up:
        processes.wait_for(
            lambda: "ready in" in up.log_text(),
            timeout=20,
            message=lambda: f"the foreground cluster to be ready:\n{up.log_text()}",
        )
        assert "store-0   | " in up.log_text()
        store = launcher.stores()[0]
        assert store["state"] == "up"
        os.kill(up.pid, signal.SIGINT)
        assert up.popen.wait(timeout=20) == 0
    assert _gone(store["pid"])
    assert all(r["state"] == "down" for r in launcher.status())


def test_down_and_status_without_a_cluster(launcher: Launcher) -> None:
    assert "nothing to stop" in launcher.run("down").stdout
    status = launcher.run("status", check=False)
    assert status.returncode == 1 and status.stderr.startswith("error: no cluster at")


# ------------------------------------------------------------------ units


def _free_run(count: int) -> int:
    """The first of ``count`` consecutive free ports (retried until a run is free)."""
    from cli.launcher.plan import busy_ports

    for _ in range(50):
        base = free_ports(1)[0]
        if base + count < 65535 and not busy_ports(range(base, base + count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports")


def test_state_file_round_trip(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path)
    layout.create()
    state = plan_cluster(layout, name="t", stores=3, base_port=None, restart=False)
    state.processes[0].state = ProcessState.RESTARTING
    save(layout.state_file, state)
    loaded = load(layout.state_file)
    assert loaded == state
    assert isinstance(loaded, ClusterState) and not loaded.restart
    assert len({p for proc in loaded.processes for p in proc.ports.values()}) == 7
    assert [p.role for p in loaded.processes] == ["store"] * 3 + ["apiserver"]
    assert loaded.processes[-1].data is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_state_file_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="no cluster at"):
        load(tmp_path / "state.json")
    (tmp_path / "state.json").write_text('{"version": 99}')
    with pytest.raises(StateFileError, match="version 99"):
        load(tmp_path / "state.json")


def test_busy_base_port_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PlanError, match=f"port\\(s\\) {port} in use"):
            plan_cluster(Layout.at(tmp_path), name="t", stores=1, base_port=port, restart=True)


def test_pid_alive_checks_the_start_time() -> None:
    me = os.getpid()
    start = pids.start_ticks(me)
    assert start is not None
    assert pids.alive(me, start)
    assert not pids.alive(me, start + 1)  # same pid, another process
    assert not pids.alive(None, None)
