"""Finding the API server: ``--server``, ``RAFTSMAN_SERVER``, or the cluster's client config.

Order, first match wins (as kubectl's ``--server`` beats its kubeconfig):

1. ``--server HOST:PORT`` (comma-separated for several);
2. ``RAFTSMAN_SERVER``;
3. the client config ``raftsman up`` wrote in the cluster's directory: ``--dir``, else
   ``~/.raftsman/NAME`` for ``--name``, else ``$RAFTSMAN_DIR``, else
   ``~/.raftsman/$RAFTSMAN_CLUSTER``, else ``~/.raftsman/local`` (``$HOME`` honoured;
   :func:`cli.launcher.layout.cluster_dir`); its current context's cluster's ``servers``
   (or ``server``).

:class:`ConfigError` when none applies, naming what was tried.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.launcher.layout import CLUSTER_ENV, SERVER_ENV, cluster_dir

__all__ = ["CLUSTER_ENV", "SERVER_ENV", "ConfigError", "Target", "config_path", "resolve"]


class ConfigError(Exception):
    """No API server address could be found; the message says where we looked."""


@dataclass(frozen=True)
class Target:
    addresses: tuple[str, ...]
    source: str
    """Where the addresses came from: ``--server``, ``$RAFTSMAN_SERVER`` or a file path."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(a.strip().removeprefix("http://") for a in value.split(",") if a.strip())


def config_path(name: str | None, dir_: str | None = None) -> Path:
    return cluster_dir(dir_, name)[0] / "config"


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
    path = config_path(name, dir_)
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
