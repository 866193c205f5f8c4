"""Real clusters for chaos scenarios: ``raftsman up`` in a subprocess, always ``down``.

:class:`Launched` runs the CLI (``python -m cli.main``) against one cluster directory
under ``tmp_path``; the fixtures stop what they started however the test ends:
``raftsman down`` (which stops every process by its recorded pid and start time), then
SIGKILL to any recorded pid that still runs with its recorded start time -- never
anything found by name.

Scenarios for components that do not exist yet skip with the reason (:func:`require`),
decided by whether ``raftsman <component> --help`` works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from chaos.cluster import Cluster
from cli.launcher import pids
from cli.launcher.pods import stop_node_pods

ROOT = Path(__file__).resolve().parents[2]
NO_CONTROL_PLANE = ("--schedulers=0", "--controller-managers=0", "--nodes=0")
"""Flags for a cluster of stores and API servers only (``up`` adds the rest by default)."""
CLI_TIMEOUT = 120.0


def cli(
    *args: str, check: bool = True, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"raftsman {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def require(*components: str) -> None:
    """Skip unless every ``raftsman <component>`` command exists."""
    missing = [c for c in components if cli(c, "--help", check=False, timeout=60).returncode]
    if missing:
        pytest.skip(f"`raftsman {' / '.join(missing)}` does not exist yet")


@dataclass
class Launched:
    """One cluster directory driven through the CLI."""

    dir: Path

    def up(self, *args: str) -> None:
        # A generous readiness timeout: on a loaded 2-core box four Python processes can
        # take well over `up`'s default 30 s to import and elect.
        try:
            cli("up", f"--dir={self.dir}", "--timeout=90", *args)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def down(self) -> None:
        cli("down", f"--dir={self.dir}", check=False)

    @property
    def cluster(self) -> Cluster:
        return Cluster(self.dir)

    def status(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(
            cli("status", f"--dir={self.dir}", "-o", "json").stdout
        )
        return rows

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(*args, f"--dir={self.dir}", check=check)

    def logs(self, tail: int = 2500) -> str:
        logs = self.dir / "logs"
        if not logs.is_dir():
            return ""
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-tail:]}"
            for path in sorted(logs.glob("*.log"))
        )

    def recorded(self) -> list[tuple[int, int | None]]:
        try:
            state = json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return []
        found = [state["supervisor"], *state["processes"]]
        return [(p["pid"], p.get("pid_start")) for p in found if p.get("pid")]

    def cleanup(self) -> None:
        before = self.recorded()
        try:
            if (self.dir / "state.json").exists():
                self.down()
        finally:
            for pid, start in before + self.recorded():
                if pids.alive(pid, start):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            # Containers whose node agent was killed mid-test, if `down` could not reach
            # them: stopped through the runtime's own records, never by name.
            for data in sorted((self.dir / "data").glob("node-*")):
                trio.run(partial(stop_node_pods, data, grace=1.0))


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    cluster = Launched(tmp_path / "cluster")
    try:
        yield cluster
    finally:
        cluster.cleanup()
