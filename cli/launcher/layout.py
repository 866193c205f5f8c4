"""Where a cluster keeps its files: one directory per cluster.

::

    ~/.raftsman/<name>/          (or --dir DIR)
        state.json               the plan and the live state (see cli.launcher.state)
        config                   client config: current-context and endpoints
        lock                     held (flock) by `up` and `down` while they work
        logs/supervisor.log      the supervisor's own log
        logs/<process>.log       each component's stdout and stderr, appended
        data/<process>/          each store member's journal and snapshots

Paths are absolute, so a supervisor started from another working directory, and the
processes it starts, agree on them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "local"
DIR_ENV = "RAFTSMAN_DIR"
CLUSTER_ENV = "RAFTSMAN_CLUSTER"
SERVER_ENV = "RAFTSMAN_SERVER"
"""API server addresses that bypass the cluster directory (read by cli.kubectl.config)."""


def default_dir(name: str) -> Path:
    """``~/.raftsman/<name>``: where ``raftsman up --name NAME`` keeps a cluster."""
    return Path.home() / ".raftsman" / name


def cluster_dir(dir_: str | Path | None, name: str | None) -> tuple[Path, str]:
    """The cluster directory a command works on, and the cluster's name.

    First match wins: ``--dir``, ``--name``, ``$RAFTSMAN_DIR``, ``$RAFTSMAN_CLUSTER``, else
    ``local`` (so ``raftsman --dir X VERB`` -- which exports ``$RAFTSMAN_DIR`` -- and
    ``raftsman VERB --dir X`` mean the same). A directory's cluster is named after it
    unless ``--name`` says otherwise.
    """
    if dir_:
        return Path(dir_), name or Path(dir_).name
    if name:
        return default_dir(name), name
    env_dir = os.environ.get(DIR_ENV, "").strip()
    if env_dir:
        return Path(env_dir), Path(env_dir).name
    name = os.environ.get(CLUSTER_ENV, "").strip() or DEFAULT_NAME
    return default_dir(name), name


@dataclass(frozen=True)
class Layout:
    """The paths of one cluster directory (nothing is created until asked)."""

    root: Path

    @classmethod
    def at(cls, root: Path) -> Layout:
        return cls(root.expanduser().resolve())

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def config_file(self) -> Path:
        return self.root / "config"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def supervisor_log(self) -> Path:
        return self.logs_dir / "supervisor.log"

    def log_file(self, process: str) -> Path:
        return self.logs_dir / f"{process}.log"

    def data_dir(self, process: str) -> Path:
        return self.data_root / process

    def create(self) -> None:
        for path in (self.root, self.logs_dir, self.data_root):
            path.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cluster's lock: one ``up`` or ``down`` at a time works on a cluster."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
