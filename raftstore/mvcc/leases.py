"""The replicated half of etcd's leases: which leases exist, their TTL, their keys.

Time is not part of the state machine. The Raft leader keeps the expiry clocks (and serves
keep-alives); when a lease runs out it proposes a LeaseRevoke, which every replica applies
here identically. So this table only records, per lease, the TTL it was granted with and
the keys attached to it.

Choices, and how they relate to etcd:

* **TTL.** Like etcd's lessor, a TTL below the minimum is raised to the minimum and a TTL
  above 9,000,000,000 s is refused ("too large lease TTL"). etcd's minimum is
  ``ceil(1.5 * election timeout)``; with its default 1 s election timeout that is 2 s, our
  default ``min_ttl``. The response reports the TTL actually granted.
* **ID 0 = "pick one".** etcd picks a random ID in the server before proposing, which is not
  something a deterministic state machine can do. We pick the smallest unused ID at or
  above a counter that lives in the state (and in snapshots), so every replica picks the
  same one. Picked IDs are positive, like etcd's.
* Attachments are derived data: the key's latest record names its lease. The table keeps
  the reverse map so revoking and listing are cheap, and snapshots rebuild it from the
  records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raftstore.mvcc import errors

__all__ = ["DEFAULT_MIN_LEASE_TTL", "MAX_LEASE_TTL", "Lease", "LeaseTable"]

MAX_LEASE_TTL = 9_000_000_000
DEFAULT_MIN_LEASE_TTL = 2


@dataclass
class Lease:
    id: int
    ttl: int
    keys: set[bytes] = field(default_factory=set)


class LeaseTable:
    __slots__ = ("_leases", "min_ttl", "next_id")

    def __init__(self, *, min_ttl: int = DEFAULT_MIN_LEASE_TTL) -> None:
        self._leases: dict[int, Lease] = {}
        self.min_ttl = min_ttl
        self.next_id = 1  # the next ID to try when a grant asks us to pick

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def get(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def ids(self) -> list[int]:
        return sorted(self._leases)

    def check_grant(self, lease_id: int, ttl: int) -> None:
        """Raise what :meth:`grant` would raise, without changing anything."""
        if ttl > MAX_LEASE_TTL:
            raise errors.LeaseTTLTooLarge()
        if lease_id != 0 and lease_id in self._leases:
            raise errors.LeaseExists()

    def grant(self, lease_id: int, ttl: int) -> Lease:
        self.check_grant(lease_id, ttl)
        if lease_id == 0:
            lease_id = self.next_id
            while lease_id in self._leases:
                lease_id += 1
            self.next_id = lease_id + 1
        lease = Lease(lease_id, max(ttl, self.min_ttl))
        self._leases[lease_id] = lease
        return lease

    def add(self, lease_id: int, ttl: int) -> Lease:
        """Insert a lease exactly as given (snapshot restore)."""
        lease = self._leases[lease_id] = Lease(lease_id, ttl)
        return lease

    def remove(self, lease_id: int) -> Lease:
        return self._leases.pop(lease_id)

    def attach(self, lease_id: int, key: bytes) -> None:
        if lease_id:
            self._leases[lease_id].keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        if lease_id:
            lease = self._leases.get(lease_id)
            if lease is not None:
                lease.keys.discard(key)
