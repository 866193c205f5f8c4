"""A store member's configuration, named after etcd's flags.

``raftsman store`` takes etcd's flag names (``--name``, ``--data-dir``,
``--listen-client-urls``, ``--advertise-client-urls``, ``--listen-peer-urls``,
``--initial-advertise-peer-urls``, ``--initial-cluster``, ``--initial-cluster-state``) with
etcd's defaults: alone, a member named ``default`` serves clients on 127.0.0.1:2379 and
peers on 127.0.0.1:2380.

Identity: a member's ID is derived from its peer address, and the cluster's ID from
the whole initial cluster, so every member computes the same IDs without talking.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_CLIENT_URL = "http://127.0.0.1:2379"
DEFAULT_PEER_URL = "http://127.0.0.1:2380"


class ConfigError(ValueError):
    """A flag value that cannot work; the message names the flag."""


def host_port(url: str, *, flag: str) -> tuple[str, int]:
    """``http://127.0.0.1:2379`` (or ``127.0.0.1:2379``) → ``("127.0.0.1", 2379)``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        raise ConfigError(f"{flag}: {url!r} is not a URL like http://127.0.0.1:2379")
    return parts.hostname, parts.port


def parse_initial_cluster(value: str) -> dict[str, str]:
    """``a=http://127.0.0.1:2380,b=http://127.0.0.1:2381`` → ``{name: peer URL}``."""
    cluster: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--initial-cluster: {item!r} is not NAME=PEER-URL")
        host_port(url, flag="--initial-cluster")
        if name in cluster:
            raise ConfigError(f"--initial-cluster: member {name!r} is listed twice")
        cluster[name] = url
    return cluster


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def member_id(raft_address: str) -> int:
    """A member's ID, from its Raft address ("host:port"), as every member computes it."""
    return _hash64(f"member|{raft_address}")


@dataclass(frozen=True)
class StoreConfig:
    name: str = "default"
    data_dir: Path = Path("default.raftstore")
    listen_client_urls: tuple[str, ...] = (DEFAULT_CLIENT_URL,)
    advertise_client_urls: tuple[str, ...] = (DEFAULT_CLIENT_URL,)
    listen_peer_urls: tuple[str, ...] = (DEFAULT_PEER_URL,)
    initial_advertise_peer_urls: tuple[str, ...] = (DEFAULT_PEER_URL,)
    initial_cluster: dict[str, str] = field(default_factory=dict)
    initial_cluster_state: str = "new"

    def __post_init__(self) -> None:
        if self.initial_cluster_state not in ("new", "existing"):
            raise ConfigError(
                f"--initial-cluster-state: {self.initial_cluster_state!r} must be new or existing"
            )
        if not self.initial_cluster:
            object.__setattr__(
                self, "initial_cluster", {self.name: self.initial_advertise_peer_urls[0]}
            )
        if self.name not in self.initial_cluster:
            raise ConfigError(
                f"--initial-cluster: has no entry for this member's --name {self.name!r}"
            )
        for flag, urls in (
            ("--listen-client-urls", self.listen_client_urls),
            ("--advertise-client-urls", self.advertise_client_urls),
            ("--listen-peer-urls", self.listen_peer_urls),
        ):
            if not urls:
                raise ConfigError(f"{flag}: needs at least one URL")
            for url in urls:
                host_port(url, flag=flag)

    @property
    def peer_url(self) -> str:
        return self.initial_cluster[self.name]

    @property
    def raft_address(self) -> str:
        host, port = host_port(self.peer_url, flag="--initial-cluster")
        return f"{host}:{port}"

    @property
    def raft_bind_address(self) -> str:
        host, port = host_port(self.listen_peer_urls[0], flag="--listen-peer-urls")
        return f"{host}:{port}"

    @property
    def partner_addresses(self) -> list[str]:
        out = []
        for name, url in sorted(self.initial_cluster.items()):
            if name != self.name:
                host, port = host_port(url, flag="--initial-cluster")
                out.append(f"{host}:{port}")
        return out

    @property
    def member_id(self) -> int:
        return member_id(self.raft_address)

    @property
    def cluster_id(self) -> int:
        members = ",".join(f"{n}={u}" for n, u in sorted(self.initial_cluster.items()))
        return _hash64(f"cluster|{members}")
