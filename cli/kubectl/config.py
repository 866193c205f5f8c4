"""Finding the API server: ``--server``, ``RAFTSMAN_SERVER``, or the cluster's client config.

Order, first match wins (as kubectl's ``--server`` beats its kubeconfig):

1. ``--server HOST:PORT`` (comma-separated for several);
2. ``RAFTSMAN_SERVER``;
3. the client config ``raftsman up`` wrote: ``DIR/config`` with ``--dir``, else
   ``~/.raftsman/NAME/config`` (``$HOME`` honoured), NAME from ``--name``,
   ``RAFTSMAN_CLUSTER``, else ``local``; its current
   context's cluster's ``servers`` (or ``server``).

:class:`ConfigError` when none applies, naming what was tried.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.launcher.layout import DEFAULT_NAME, default_dir

SERVER_ENV = "RAFTSMAN_SERVER"
CLUSTER_ENV = "RAFTSMAN_CLUSTER"


class ConfigError(Exception):
    """No API server address could be found; the message says where we looked."""


@dataclass(frozen=True)
class Target:
    addresses: tuple[str, ...]
    source: str
    """Where the addresses came from: ``--server``, ``$RAFTSMAN_SERVER`` or a file path."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(a.strip().removeprefix("http://") for a in value.split(",") if a.strip())


def config_path(name: str | None) -> Path:
    return default_dir(name or os.environ.get(CLUSTER_ENV) or DEFAULT_NAME) / "config"


def servers_in(config: Any) -> tuple[str, ...]:
    """The current context's cluster's API servers in a parsed client config."""
    if not isinstance(config, dict):
        return ()
    contexts = {c.get("name"): c.get("context", {}) for c in config.get("contexts") or []}
    context = contexts.get(config.get("current-context")) or {}
    clusters = {c.get("name"): c.get("cluster", {}) for c in config.get("clusters") or []}
    cluster = clusters.get(context.get("cluster", config.get("current-context"))) or {}
    servers = cluster.get("servers") or ([cluster["server"]] if cluster.get("server") else [])
    return tuple(str(s).removeprefix("http://") for s in servers)


def resolve(*, server: str | None, name: str | None, dir_: str | None = None) -> Target:
    if server:
        return Target(_split(server), "--server")
    env = os.environ.get(SERVER_ENV, "")
    if env.strip():
        return Target(_split(env), f"${SERVER_ENV}")
    path = Path(dir_) / "config" if dir_ else config_path(name)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no cluster config at {path} (and no --server or ${SERVER_ENV}); "
            "start a cluster with: raftsman up"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the cluster config {path}: {exc}") from None
    addresses = servers_in(config)
    if not addresses:
        raise ConfigError(
            f"the cluster config {path} names no API server; restart the cluster with: raftsman up"
        )
    return Target(addresses, str(path))
