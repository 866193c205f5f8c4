"""The client config file, ``DIR/config``: how clients reach the cluster.

Shaped like a kubeconfig so that it can grow the same way (several clusters and contexts
in one file, credentials later). Today a cluster entry carries the store endpoints; the
API server's address joins it as ``server`` when the API server exists::

    apiVersion: v1
    kind: Config
    current-context: local
    clusters:
    - name: local
      cluster:
        store-endpoints:
        - http://127.0.0.1:40001
        - http://127.0.0.1:40003
        - http://127.0.0.1:40005
    contexts:
    - name: local
      context:
        cluster: local
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .state import ClusterState, write_atomic


def client_config(state: ClusterState) -> dict[str, Any]:
    endpoints = [f"http://{p.endpoint('client')}" for p in state.by_role("store")]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": state.name,
        "clusters": [{"name": state.name, "cluster": {"store-endpoints": endpoints}}],
        "contexts": [{"name": state.name, "context": {"cluster": state.name}}],
    }


def write_client_config(path: Path, state: ClusterState) -> None:
    write_atomic(path, yaml.safe_dump(client_config(state), sort_keys=False))
