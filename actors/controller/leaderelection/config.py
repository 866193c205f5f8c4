"""How an elector campaigns: which Lease it contends for, who it is, and its three timings.

The timings are client-go's, with its defaults (15 s / 10 s / 2 s) and its rules:

``lease_duration``
    How long a candidate that sees no change to the Lease waits before it takes the Lease
    over. Written into the Lease as ``spec.leaseDurationSeconds`` -- rounded *up* to whole
    seconds, the field being an integer -- and other candidates honour the written value.
``renew_deadline``
    How long the leader keeps acting without a successful renewal. It must be shorter than
    ``lease_duration``: the leader stops before anyone else may start.
``retry_period``
    The pause between two attempts, to acquire or to renew. ``renew_deadline`` must exceed
    ``retry_period * 1.2`` (client-go's jitter factor) so that the leader gets more than
    one attempt to renew before it gives up.

client-go also requires each timing to be at least one second; here any positive, finite
number is accepted, so that tests and small local clusters can run on sub-second periods.
"""

from __future__ import annotations

import math
import secrets
import socket
from dataclasses import dataclass, field

from actors.apiserver.validation import is_dns1123_label, is_dns1123_subdomain

__all__ = ["JITTER_FACTOR", "LeaderElectionConfig", "default_identity"]

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: ``renew_deadline`` must exceed ``retry_period`` times this."""


def default_identity() -> str:
    """``<hostname>_<random suffix>``: unique per process, readable in ``holderIdentity``."""
    return f"{socket.gethostname()}_{secrets.token_hex(8)}"


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaderElectionConfig:
    """The Lease to contend for, this candidate's identity and the timings (seconds)."""

    lock_name: str
    """``metadata.name`` of the Lease, usually the component's name (``kube-scheduler``)."""
    lock_namespace: str = "kube-system"
    """``metadata.namespace`` of the Lease."""
    identity: str = field(default_factory=default_identity)
    """What this candidate writes as ``spec.holderIdentity``; unique among candidates."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True
    """On a clean shutdown, release the Lease so that a standby takes over at once."""

    def __post_init__(self) -> None:
        if not isinstance(self.lock_name, str) or not is_dns1123_subdomain(self.lock_name):
            raise ValueError(
                f"lock_name must be a DNS subdomain name (lowercase alphanumerics, '-' and "
                f"'.', at most 253 characters, e.g. 'kube-scheduler'), not {self.lock_name!r}"
            )
        if not isinstance(self.lock_namespace, str) or not is_dns1123_label(self.lock_namespace):
            raise ValueError(
                f"lock_namespace must be a DNS label (lowercase alphanumerics and '-', at "
                f"most 63 characters, e.g. 'kube-system'), not {self.lock_namespace!r}"
            )
        if not isinstance(self.identity, str) or not self.identity:
            raise ValueError(f"identity must be a non-empty string, not {self.identity!r}")
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, not {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(
                f"lease_duration ({self.lease_duration!r}) must be greater than "
                f"renew_deadline ({self.renew_deadline!r})"
            )
        if self.renew_deadline <= self.retry_period * JITTER_FACTOR:
            raise ValueError(
                f"renew_deadline ({self.renew_deadline!r}) must be greater than "
                f"retry_period * {JITTER_FACTOR} ({self.retry_period * JITTER_FACTOR:g})"
            )
        if not isinstance(self.release_on_cancel, bool):
            raise TypeError(f"release_on_cancel must be a bool, not {self.release_on_cancel!r}")

    @property
    def lease_duration_seconds(self) -> int:
        """``lease_duration`` as written into the Lease: whole seconds, rounded up."""
        return max(1, math.ceil(self.lease_duration))
