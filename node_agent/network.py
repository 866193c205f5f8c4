"""Pod IPs: one loopback address per pod, drawn from its node's pod CIDR.

The problem: without root there are no network namespaces, yet every pod must have an
address of its own that its containers share, that other pods (on any node of this host)
can reach, and that does not clash with another pod's ports. Linux answers every address
of 127.0.0.0/8 on the loopback interface, so a pod can simply *be* 127.64.3.7: its
containers bind that address, and anything on the host connects to it. The cluster pod
CIDR defaults to :data:`DEFAULT_CLUSTER_POD_CIDR` (127.64.0.0/12); the API server gives
each Node a /24 of it in ``spec.podCIDR`` and the node agent hands out addresses of that
/24 with :class:`PodIPAllocator`.

Which addresses are handed out
    Every address of the CIDR except the network address, the broadcast address and the
    first host address (``.1`` of a /24): by convention ``.1`` is the node's own address
    on its pod network (the gateway in a real CNI bridge), so it never names a pod. A /24
    therefore holds 253 pods (Kubernetes' default ``maxPods`` is 110). The allocator
    walks the range *after the last address it handed out* and wraps around, as the CNI
    ``host-local`` plugin does, so an address a deleted pod just released is reused last:
    a client or an Endpoints object that still points at the old pod does not reach a
    new, unrelated one.

Guarantees
    * **Idempotent.** ``allocate(uid)`` for a uid that holds an address returns that
      address; ``release`` of a uid that holds none does nothing.
    * **Persistent.** Every change is written to ``state_file`` (a small JSON document)
      before the call returns, atomically (temporary file, fsync, rename). An agent that
      restarts with the same file re-adopts its running pods at the addresses they have.
    * **Typed failures.** A CIDR that is not a network inside 127.0.0.0/8, or too small
      to hold a pod, raises :class:`InvalidPodCIDR`; a full range raises
      :class:`PodIPsExhausted`; an unreadable or corrupt state file raises
      :class:`PodIPStateError` naming the file and what to do.
    * If the node's CIDR changed between runs (Kubernetes never changes ``podCIDR`` of a
      Node, but a Node deleted and registered again may get another one), allocations
      outside the new CIDR are dropped with a warning; the rest are kept.

One allocator owns one state file: it is not safe to share a file between processes.

:func:`check_bindable` tells whether this host can bind an address at all, with a message
that explains the fix where it cannot (e.g. macOS answers only 127.0.0.1 unless aliases
are added to ``lo0``).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import socket
import tempfile
from pathlib import Path

__all__ = [
    "DEFAULT_CLUSTER_POD_CIDR",
    "AddressNotBindable",
    "InvalidPodCIDR",
    "PodIPAllocator",
    "PodIPError",
    "PodIPStateError",
    "PodIPsExhausted",
    "check_bindable",
    "parse_pod_cidr",
]

logger = logging.getLogger(__name__)

DEFAULT_CLUSTER_POD_CIDR = "127.64.0.0/12"
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_STATE_VERSION = 1


class PodIPError(Exception):
    """Base class of the errors of this module."""


class InvalidPodCIDR(PodIPError, ValueError):
    """The pod CIDR is malformed, outside 127.0.0.0/8, or too small."""


class PodIPsExhausted(PodIPError):
    """Every usable address of the pod CIDR is held by a pod."""


class PodIPStateError(PodIPError):
    """The allocator's state file cannot be read or written."""


class AddressNotBindable(PodIPError):
    """This host cannot bind the address (it is not local here)."""


def parse_pod_cidr(cidr: str) -> ipaddress.IPv4Network:
    """``cidr`` as a network; :class:`InvalidPodCIDR` unless it is an IPv4 network
    inside 127.0.0.0/8 with at least one address for a pod (a /30 or larger)."""
    if not isinstance(cidr, str):
        raise InvalidPodCIDR(f"pod CIDR must be a string like '127.64.3.0/24', not {cidr!r}")
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise InvalidPodCIDR(f"invalid pod CIDR {cidr!r}: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(LOOPBACK):
        raise InvalidPodCIDR(
            f"pod CIDR {cidr} must lie inside {LOOPBACK} (pods live on loopback addresses)"
        )
    if network.prefixlen > 30:
        raise InvalidPodCIDR(
            f"pod CIDR {cidr} is too small: network, broadcast and the node's .1 leave no "
            "address for a pod; use a /30 or larger (a /24 per node is the default)"
        )
    return network


class PodIPAllocator:
    """Hands out the addresses of ``cidr`` to pods, by pod uid, persisted in ``state_file``.

    ``state_file``'s directory is created if missing. Not thread-safe; one process owns a
    state file.
    """

    def __init__(self, cidr: str, state_file: Path) -> None:
        self._network = parse_pod_cidr(cidr)
        self._state_file = Path(state_file)
        # First usable pod address: network + 2 (network + 1 is the node's own address);
        # last: broadcast - 1.
        self._first = int(self._network.network_address) + 2
        self._last = int(self._network.broadcast_address) - 1
        self._by_uid: dict[str, str] = {}
        self._last_allocated: int | None = None
        self._load()

    @property
    def cidr(self) -> str:
        return str(self._network)

    @property
    def capacity(self) -> int:
        """How many pods the CIDR holds."""
        return self._last - self._first + 1

    @property
    def gateway(self) -> str:
        """The reserved first host address (the node's own address on its pod network)."""
        return str(self._network.network_address + 1)

    def allocations(self) -> dict[str, str]:
        """A copy of the current allocations: pod uid -> address."""
        return dict(self._by_uid)

    def lookup(self, pod_uid: str) -> str | None:
        """The address ``pod_uid`` holds, or None."""
        return self._by_uid.get(pod_uid)

    def allocate(self, pod_uid: str) -> str:
        """The address of ``pod_uid``: the one it holds, else the next free one (persisted).

        Raises :class:`PodIPsExhausted` when every address is taken, ``ValueError`` for an
        empty uid, :class:`PodIPStateError` when the state cannot be saved (the allocation
        is then not made).
        """
        if not isinstance(pod_uid, str) or not pod_uid:
            raise ValueError(f"pod uid must be a non-empty string, not {pod_uid!r}")
        held = self._by_uid.get(pod_uid)
        if held is not None:
            return held
        taken = {int(ipaddress.IPv4Address(ip)) for ip in self._by_uid.values()}
        start = self._first if self._last_allocated is None else self._last_allocated + 1
        for offset in range(self.capacity):
            candidate = self._first + (start - self._first + offset) % self.capacity
            if candidate not in taken:
                break
        else:
            raise PodIPsExhausted(
                f"pod CIDR {self._network} is full: all {self.capacity} pod addresses are "
                "in use; delete pods from this node or give it a larger podCIDR"
            )
        ip = str(ipaddress.IPv4Address(candidate))
        previous_last = self._last_allocated
        self._by_uid[pod_uid] = ip
        self._last_allocated = candidate
        try:
            self._save()
        except PodIPStateError:
            del self._by_uid[pod_uid]
            self._last_allocated = previous_last
            raise
        return ip

    def release(self, pod_uid: str) -> None:
        """Give back the address of ``pod_uid`` (persisted); nothing if it holds none."""
        ip = self._by_uid.pop(pod_uid, None)
        if ip is None:
            return
        try:
            self._save()
        except PodIPStateError:
            self._by_uid[pod_uid] = ip
            raise

    # ------------------------------------------------------------------ persistence

    def _load(self) -> None:
        path = self._state_file
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise PodIPStateError(f"cannot read pod IP state {path}: {exc}") from exc
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("version") != _STATE_VERSION:
                raise ValueError(f"expected an object with version {_STATE_VERSION}")
            allocations = document["allocations"]
            last = document.get("lastAllocated")
            if not isinstance(allocations, dict):
                raise ValueError("allocations must be an object of pod uid -> address")
            parsed = {str(uid): ipaddress.IPv4Address(str(ip)) for uid, ip in allocations.items()}
            last_ip = None if last is None else ipaddress.IPv4Address(str(last))
        except (ValueError, KeyError, TypeError) as exc:
            raise PodIPStateError(
                f"pod IP state {path} is corrupt ({exc}); if no pods of this node are "
                "running, delete the file to start over"
            ) from exc
        seen: set[ipaddress.IPv4Address] = set()
        for uid, ip in parsed.items():
            if not self._first <= int(ip) <= self._last:
                logger.warning(
                    "pod %s held %s, outside the node's pod CIDR %s (range %s..%s); dropped",
                    uid,
                    ip,
                    self._network,
                    ipaddress.IPv4Address(self._first),
                    ipaddress.IPv4Address(self._last),
                )
                continue
            if ip in seen:
                raise PodIPStateError(
                    f"pod IP state {path} is corrupt: {ip} is held by two pods; if no pods "
                    "of this node are running, delete the file to start over"
                )
            seen.add(ip)
            self._by_uid[uid] = str(ip)
        if last_ip is not None and self._first <= int(last_ip) <= self._last:
            self._last_allocated = int(last_ip)

    def _save(self) -> None:
        path = self._state_file
        document = {
            "version": _STATE_VERSION,
            "cidr": str(self._network),
            "lastAllocated": (
                None
                if self._last_allocated is None
                else str(ipaddress.IPv4Address(self._last_allocated))
            ),
            "allocations": dict(sorted(self._by_uid.items())),
        }
        data = json.dumps(document, indent=2).encode("utf-8") + b"\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise PodIPStateError(f"cannot save pod IP state {path}: {exc}") from exc


def check_bindable(ip: str) -> None:
    """Raise :class:`AddressNotBindable` unless this host can bind a TCP socket on ``ip``.

    Binds a socket to ``(ip, 0)`` and closes it at once. On Linux every 127.x address
    works; elsewhere (macOS, the BSDs) only addresses configured on ``lo0`` do, and the
    message says how to add one. ``ValueError`` if ``ip`` is not an IPv4 address.
    """
    try:
        ipaddress.IPv4Address(ip)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 address: {ip!r} ({exc})") from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise AddressNotBindable(
                    f"cannot bind {ip}: the address is not configured on this host. Pod "
                    "and Service addresses live in 127.0.0.0/8, all of which Linux answers "
                    f"on loopback; on other systems add an alias first (macOS: sudo "
                    f"ifconfig lo0 alias {ip})"
                ) from exc
            raise AddressNotBindable(f"cannot bind {ip}: {exc}") from exc
