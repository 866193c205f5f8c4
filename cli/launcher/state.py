"""The cluster's state file: the plan (who runs, on which ports) and what is running now.

One JSON document, ``DIR/state.json``. ``raftsman up`` writes the plan (every process with
its role, name and ports; no pids); from then on the supervisor is its only writer while
it runs, recording pids, states and restart counts as they change, and ``down`` writes it
only once the supervisor is gone. Readers (``status``, ``up``, ``down``) may read at any
time: every write goes to a temporary file in the same directory that then replaces the
old one (``os.replace``), so a reader sees the old document or the new one, never half.

A recorded state is a claim made by the supervisor when it wrote it. Anyone who must know
whether a process really runs checks its pid (:func:`cli.launcher.pids.alive`), which
also catches a supervisor that was killed before it could record anything.

Format (version 1)::

    {
      "version": 1,
      "name": "local",
      "dir": "/home/me/.raftsman/local",
      "restart": true,                          # false: supervisor never restarts
      "supervisor": {"pid": 4711, "pid_start": 123456, "state": "running",
                     "error": null, "log": ".../logs/supervisor.log"},
      "processes": [
        {"role": "store", "name": "store-0", "ports": {"client": 40001, "peer": 40002},
         "pid": 4712, "pid_start": 123460, "state": "up", "restarts": 0,
         "exit_code": null, "log": ".../logs/store-0.log", "data": ".../data/store-0"},
        ...
      ]
    }

Process states: ``up`` (running), ``restarting`` (exited, waiting out its backoff),
``down`` (not running), ``failed`` (exited and will not be restarted). Supervisor states:
``starting``, ``running``, ``stopping``, ``stopped``, ``failed`` (gave up; see ``error``).
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1


class StateFileError(Exception):
    """The state file is missing, unreadable or from an unknown version; says which."""


class ProcessState(enum.StrEnum):
    UP = "up"
    RESTARTING = "restarting"
    DOWN = "down"
    FAILED = "failed"


class SupervisorState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class ProcessRecord:
    """One component process: fixed by the plan (role, name, ports, paths), then live."""

    role: str
    name: str
    ports: dict[str, int]
    log: str
    data: str | None = None
    pid: int | None = None
    pid_start: int | None = None
    state: ProcessState = ProcessState.DOWN
    restarts: int = 0
    exit_code: int | None = None

    def endpoint(self, port: str = "client") -> str:
        return f"127.0.0.1:{self.ports[port]}"


@dataclass
class SupervisorRecord:
    log: str
    pid: int | None = None
    pid_start: int | None = None
    state: SupervisorState = SupervisorState.STOPPED
    error: str | None = None


@dataclass
class ClusterState:
    name: str
    dir: str
    supervisor: SupervisorRecord
    processes: list[ProcessRecord] = field(default_factory=list)
    restart: bool = True
    runtime: str = "process"
    """The node agents' container runtime: ``process`` or ``sim``."""
    version: int = VERSION

    def by_role(self, role: str) -> list[ProcessRecord]:
        return [p for p in self.processes if p.role == role]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("version") != VERSION:
            raise StateFileError(f"state file version {raw.get('version')!r} is not {VERSION}")
        sup = dict(raw["supervisor"])
        sup["state"] = SupervisorState(sup["state"])
        procs = []
        for p in raw["processes"]:
            p = dict(p)
            p["state"] = ProcessState(p["state"])
            procs.append(ProcessRecord(**p))
        return cls(
            name=raw["name"],
            dir=raw["dir"],
            supervisor=SupervisorRecord(**sup),
            processes=procs,
            restart=bool(raw.get("restart", True)),
            runtime=str(raw.get("runtime", "process")),
        )


def load(path: Path) -> ClusterState:
    """Read the state file; :class:`StateFileError` names the file when that fails."""
    try:
        return ClusterState.from_json(path.read_text())
    except FileNotFoundError:
        raise StateFileError(f"no cluster at {path.parent} (no {path.name})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateFileError(f"{path}: unreadable state file: {exc}") from None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new content."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(path: Path, state: ClusterState) -> None:
    write_atomic(path, state.to_json())
