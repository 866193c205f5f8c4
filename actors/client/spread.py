"""Which API server a client talks to first: spread the clients, keep each one stable.

The problem. Every component is given the API servers' addresses in the same order (the
launcher's ``--server`` list, the client config's ``servers``), and a client that always
starts with the first address sends all of its traffic there until that server fails.
Measured on a local cluster during a 1,000-pod burst: apiserver-0 ran at 30-48 % CPU
while apiserver-1 idled at 3-6 %, and the busy one's queueing showed in every client's
latency. Kubernetes puts a load balancer in front of its API servers; a connection, once
made, stays with the server it reached, and the balancer spreads the connections.

The design. Each client picks its own first address and keeps using whichever address
last answered (failover is the client's, :mod:`.client`); only the starting point moves:

* with an ``identity`` (a node's or a component's name), the start is a stable hash of it
  (SHA-256, not Python's salted ``hash``): the same component starts at the same server
  after every restart, which keeps logs and load easy to reason about, and different
  components land on different servers;
* without one, a random address: processes that cannot name themselves still spread;
* ``in_order``: the first address, for a caller that ranks its addresses (tests, or a
  user who lists a preferred server first).

Rejected: round robin per request. It would balance better, but without health tracking
a server that hangs would cost every other request its deadline before the failover, and
watches (the long-lived, heavy part of a component's traffic) stay on one server anyway.
Sticking to the server that answered is what a Kubernetes client gets behind a load
balancer. Rejected too: rotating the lists in the launcher -- it helps only the processes
the launcher starts, while the CLI, the benchmarks and a user's programs would still pile
onto the first address.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["first_index"]


def first_index(count: int, *, identity: str | None = None, in_order: bool = False) -> int:
    """The index, in ``range(count)``, of the address a client tries first.

    ``in_order``: 0. ``identity``: a stable hash of it modulo ``count``. Neither: random.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1 address, not {count!r}")
    if in_order and identity is not None:
        raise ValueError("give identity or in_order, not both: in_order always starts at 0")
    if in_order or count == 1:
        return 0
    if identity is None:
        return random.randrange(count)
    digest = hashlib.sha256(identity.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
