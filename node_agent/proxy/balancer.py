"""Choosing an endpoint for a new connection: round robin, optionally sticky per client IP.

One :class:`Balancer` serves one Service port. It knows the port's ready backends and
answers, for each new connection, the order in which to try them: the first is the
choice, the others are the fallbacks when a backend refuses. It does no I/O and reads no
clock -- callers pass ``now`` -- so its behaviour is checked exactly in unit tests.

Round robin
    Each new connection starts one backend further than the previous one, wrapping
    around. A change of backends keeps the position (modulo the new count), so that an
    Endpoints update does not send a burst of connections to the first backend.

``sessionAffinity: ClientIP``
    After a connection from a client IP succeeds to a backend (:meth:`Balancer.connected`)
    every later connection from that IP tries that backend first, while it stays among
    the ready backends and while the client keeps connecting: the affinity expires
    ``timeout`` seconds (Kubernetes' default: 10800, three hours) after the client's last
    connection. When the backend leaves the ready set, or refuses, the client is
    assigned anew. Expired entries are dropped lazily, so the table stays bounded by the
    clients of the last ``timeout`` seconds.

    A client without a live entry is not assigned round robin but by *rendezvous
    hashing*: the backends are ordered by a hash of (client IP, backend), highest first.
    Several node agents on one host each run a proxy on the same ClusterIP:port and the
    kernel spreads a client's connections over them; with the same ready backends, every
    proxy then assigns a new client to the same backend, so the affinity holds across
    proxies too. (kube-proxy's iptables mode picks the first backend at random; any
    choice is allowed, the stickiness is what Kubernetes promises.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from node_agent.proxy.table import Backend

__all__ = ["DEFAULT_AFFINITY_TIMEOUT", "Balancer"]

DEFAULT_AFFINITY_TIMEOUT = 10800.0
_PRUNE_EVERY = 1024


@dataclass
class _Affinity:
    backend: Backend
    last_used: float


class Balancer:
    def __init__(
        self,
        backends: Sequence[Backend] = (),
        *,
        client_ip_affinity: bool = False,
        affinity_timeout: float = DEFAULT_AFFINITY_TIMEOUT,
    ) -> None:
        if affinity_timeout <= 0:
            raise ValueError(f"affinity_timeout must be positive, not {affinity_timeout!r}")
        self._backends: tuple[Backend, ...] = ()
        self._next = 0
        self._affinity_timeout = affinity_timeout
        self._client_ip_affinity = client_ip_affinity
        self._affinity: dict[str, _Affinity] = {}
        self._picks = 0
        self.set_backends(backends)

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self._backends

    @property
    def client_ip_affinity(self) -> bool:
        return self._client_ip_affinity

    def configure(self, *, client_ip_affinity: bool, affinity_timeout: float) -> None:
        """Change the affinity settings; turning affinity off forgets every client."""
        if affinity_timeout <= 0:
            raise ValueError(f"affinity_timeout must be positive, not {affinity_timeout!r}")
        self._client_ip_affinity = client_ip_affinity
        self._affinity_timeout = affinity_timeout
        if not client_ip_affinity:
            self._affinity.clear()

    def set_backends(self, backends: Sequence[Backend]) -> None:
        """Replace the ready backends; clients stuck to a backend that left are freed."""
        self._backends = tuple(dict.fromkeys(backends))
        self._next = self._next % len(self._backends) if self._backends else 0
        ready = set(self._backends)
        self._affinity = {c: a for c, a in self._affinity.items() if a.backend in ready}

    def pick(self, client_ip: str, *, now: float) -> list[Backend]:
        """Every backend, in the order a new connection from ``client_ip`` tries them."""
        if not self._backends:
            return []
        self._picks += 1
        if self._picks % _PRUNE_EVERY == 0:
            self._prune(now)
        if not self._client_ip_affinity:
            return self._round_robin()
        order = sorted(self._backends, key=lambda b: _score(client_ip, b), reverse=True)
        sticky = self.affinity_of(client_ip, now=now)
        if sticky is not None:
            order.remove(sticky)
            order.insert(0, sticky)
        return order

    def connected(self, client_ip: str, backend: Backend, *, now: float) -> None:
        """A connection from ``client_ip`` reached ``backend``: remember it (affinity)."""
        if self._client_ip_affinity and backend in self._backends:
            self._affinity[client_ip] = _Affinity(backend, now)

    def affinity_of(self, client_ip: str, *, now: float) -> Backend | None:
        """The backend ``client_ip`` is stuck to now, if any."""
        sticky = self._affinity.get(client_ip)
        if sticky is None or now - sticky.last_used >= self._affinity_timeout:
            return None
        return sticky.backend

    def _round_robin(self) -> list[Backend]:
        start = self._next
        self._next = (start + 1) % len(self._backends)
        return list(self._backends[start:] + self._backends[:start])

    def _prune(self, now: float) -> None:
        timeout = self._affinity_timeout
        self._affinity = {c: a for c, a in self._affinity.items() if now - a.last_used < timeout}


def _score(client_ip: str, backend: Backend) -> int:
    digest = hashlib.blake2b(f"{client_ip}|{backend}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
