"""The client config file, ``DIR/config``: how clients reach the cluster.

Shaped like a kubeconfig so that it can grow the same way (several clusters and contexts
in one file, credentials later). A cluster entry carries the API server's address as
``server`` (HOST:PORT, gRPC), every API server under ``servers`` (the CLI fails over
between them for reads), and the store endpoints::

    apiVersion: v1
    kind: Config
    current-context: local
    clusters:
    - name: local
      cluster:
        server: 127.0.0.1:40007
        servers:
        - 127.0.0.1:40007
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
    servers = [p.endpoint("api") for p in state.by_role("apiserver")]
    cluster: dict[str, Any] = {}
    if servers:
        cluster["server"] = servers[0]
        cluster["servers"] = servers
    cluster["store-endpoints"] = endpoints
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": state.name,
        "clusters": [{"name": state.name, "cluster": cluster}],
        "contexts": [{"name": state.name, "context": {"cluster": state.name}}],
    }


def write_client_config(path: Path, state: ClusterState) -> None:
    write_atomic(path, yaml.safe_dump(client_config(state), sort_keys=False))
