"""Fixtures for the CLI suites: ``cli``, a module-scoped real raftstore member and a real
``raftsman apiserver`` process, driven through ``python -m cli.main`` subprocesses with a
temporary HOME (so no real config is read)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.launcher.readiness import apiserver_ready
from tests.support import processes
from tests.support.ports import free_port
from tests.support.raftstore import raftstore_cluster

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    server: str
    home: Path

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        server: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "HOME": str(self.home), "RAFTSMAN_SERVER": server or self.server}
        environ.pop("RAFTSMAN_CLUSTER", None)
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=environ,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result.stdout


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    base = tmp_path_factory.mktemp("kubectl")
    with raftstore_cluster(base / "store", size=1) as store:
        address = f"127.0.0.1:{free_port()}"
        argv = [sys.executable, "-m", "cli.main", "apiserver",
                f"--etcd-servers={','.join(store.endpoints)}", f"--listen={address}"]  # fmt: skip
        with processes.running(argv, log_path=base / "apiserver.log", cwd=ROOT) as server:
            processes.wait_for(
                lambda: apiserver_ready(address),
                timeout=30,
                message=lambda: f"the apiserver to serve:\n{server.log_text()}",
            )
            (base / "home").mkdir()
            yield Cli(server=address, home=base / "home")
