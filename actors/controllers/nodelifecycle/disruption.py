"""How fast nodes may be tainted for eviction: zone states and token buckets.

Evicting the pods of a lost node is right when one node dies and wrong when the control
plane is cut off from every node: then *all* nodes look lost, and evicting everything
would empty a cluster whose workloads are running fine. Kubernetes guards against that
per zone (nodes grouped by ``topology.kubernetes.io/region`` + ``zone`` labels; nodes
without them form one zone, which is what a local cluster is):

Zone state (:func:`zone_state`), from the Ready conditions of the zone's nodes
    ``FULL`` disruption: no node Ready (and at least one not);
    ``PARTIAL``: more than 2 not Ready and at least ``unhealthy_zone_threshold`` of them;
    ``NORMAL`` otherwise.

Rate (:meth:`Disruption.rate_for`)
    Taints that evict (NoExecute) are added to a zone's nodes through one token bucket per
    zone (burst 1): ``node_eviction_rate`` nodes/s in a NORMAL zone;
    ``secondary_node_eviction_rate`` in a PARTIAL one -- or 0 when the zone has at most
    ``large_cluster_size_threshold`` nodes (a small zone that lost most of its nodes is
    more likely cut off than dead); a FULL zone evicts at the normal rate while another
    zone is healthy (that zone really is down) ...

Full disruption everywhere (:meth:`Disruption.update`)
    ... but when *every* zone is fully disrupted, nothing is evicted: all rates drop to 0
    and the caller removes the eviction taints from every node. When some node comes
    back, every node's grace period restarts (the caller resets its probe times) and the
    rates follow the zone states again.

A zone seen for the first time starts in ``INITIAL`` state at the normal rate. A rate
change swaps the bucket as Kubernetes' ``SwapLimiter`` does: the new bucket starts with
its one token unless the old one had none left.

Everything takes ``now`` (seconds on any monotonic clock) as an argument.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Disruption",
    "DisruptionChange",
    "RateLimitedQueue",
    "TokenBucket",
    "ZoneState",
    "zone_of",
    "zone_state",
]

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-disruption"


class ZoneState(enum.Enum):
    INITIAL = "Initial"
    NORMAL = "Normal"
    PARTIAL = "PartialDisruption"
    FULL = "FullDisruption"


def zone_of(labels: Mapping[str, str]) -> str:
    """A node's zone key: ``region:zone`` from the topology labels ("" without them)."""
    region, zone = labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(statuses: Sequence[str | None], threshold: float) -> ZoneState:
    """The state of a zone whose nodes' Ready statuses are ``statuses`` (None: no
    condition yet, which counts as not Ready)."""
    ready = sum(1 for s in statuses if s == "True")
    not_ready = len(statuses) - ready
    if ready == 0 and not_ready > 0:
        return ZoneState.FULL
    if not_ready > 2 and not_ready / len(statuses) >= threshold:
        return ZoneState.PARTIAL
    return ZoneState.NORMAL


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full. Rate 0 never gives one."""

    def __init__(self, rate: float, now: float, *, burst: int = 1) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst) if rate > 0 else 0.0
        self._last = now

    def _refill(self, now: float) -> None:
        if self.rate > 0 and now > self._last:
            self.tokens = min(float(self.burst), self.tokens + (now - self._last) * self.rate)
        self._last = max(self._last, now)

    def try_take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until a token is available (inf at rate 0)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1.0 - self.tokens) / self.rate

    def swapped(self, rate: float, now: float) -> TokenBucket:
        """A bucket at ``rate`` continuing this one (see the module doc)."""
        fresh = TokenBucket(rate, now, burst=self.burst)
        if rate > 0 and not self.try_take(now):
            fresh.try_take(now)
        return fresh


class RateLimitedQueue:
    """Node names waiting for an eviction taint, in arrival order, behind a bucket."""

    def __init__(self, rate: float, now: float) -> None:
        self.bucket = TokenBucket(rate, now)
        self._names: dict[str, None] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> list[str]:
        return list(self._names)

    def add(self, name: str) -> None:
        self._names.setdefault(name, None)

    def remove(self, name: str) -> None:
        self._names.pop(name, None)

    def swap_rate(self, rate: float, now: float) -> None:
        if rate != self.bucket.rate:
            self.bucket = self.bucket.swapped(rate, now)

    def take(self, now: float, still_needed: Callable[[str], bool]) -> list[str]:
        """Names to taint now: in order, one token each; names no longer needing a taint
        are dropped without spending one."""
        out = []
        for name in list(self._names):
            if not still_needed(name):
                self.remove(name)
                continue
            if not self.bucket.try_take(now):
                break
            self.remove(name)
            out.append(name)
        return out

    def wait(self, now: float) -> float | None:
        """Seconds until the next name may be taken; None when empty."""
        return self.bucket.wait(now) if self._names else None


@dataclass(frozen=True)
class DisruptionChange:
    entered_full: bool = False
    exited_full: bool = False


class Disruption:
    """Zone states, per-zone queues and the cluster-wide full-disruption mode."""

    def __init__(
        self,
        *,
        eviction_rate: float,
        secondary_rate: float,
        unhealthy_threshold: float,
        large_cluster_threshold: int,
    ) -> None:
        self.eviction_rate = eviction_rate
        self.secondary_rate = secondary_rate
        self.unhealthy_threshold = unhealthy_threshold
        self.large_cluster_threshold = large_cluster_threshold
        self.states: dict[str, ZoneState] = {}
        self.queues: dict[str, RateLimitedQueue] = {}

    @property
    def all_fully_disrupted(self) -> bool:
        """Every known zone is in full disruption (evictions stopped)."""
        return bool(self.states) and all(s is ZoneState.FULL for s in self.states.values())

    def rate_for(self, state: ZoneState, size: int) -> float:
        if state is ZoneState.PARTIAL:
            return 0.0 if size <= self.large_cluster_threshold else self.secondary_rate
        return self.eviction_rate

    def queue(self, zone: str, now: float) -> RateLimitedQueue:
        found = self.queues.get(zone)
        if found is None:
            rate = 0.0 if self.all_fully_disrupted else self.eviction_rate
            found = self.queues[zone] = RateLimitedQueue(rate, now)
        return found

    def mark(self, name: str, zone: str, now: float) -> None:
        """Queue ``name`` for an eviction taint in ``zone`` (and in no other zone)."""
        for other, queue in self.queues.items():
            if other != zone:
                queue.remove(name)
        self.queue(zone, now).add(name)

    def unmark(self, name: str) -> None:
        for queue in self.queues.values():
            queue.remove(name)

    def update(self, zones: Mapping[str, Sequence[str | None]], now: float) -> DisruptionChange:
        """Kubernetes' handleDisruption: new zone states from each zone's Ready statuses."""
        new = {
            zone: zone_state(statuses, self.unhealthy_threshold) for zone, statuses in zones.items()
        }
        for zone in new:
            self.states.setdefault(zone, ZoneState.INITIAL)
            self.queue(zone, now)
        for zone in [z for z in self.states if z not in new]:
            del self.states[zone]
            self.queues.pop(zone, None)
        all_now = bool(new) and all(s is ZoneState.FULL for s in new.values())
        all_before = bool(self.states) and all(s is ZoneState.FULL for s in self.states.values())
        if all_now and all_before:
            return DisruptionChange()
        if all_now:
            for queue in self.queues.values():
                queue.swap_rate(0.0, now)
            self.states = dict(new)
            return DisruptionChange(entered_full=True)
        exited = all_before
        for zone, state in new.items():
            if exited or self.states[zone] is not state:
                self.queues[zone].swap_rate(self.rate_for(state, len(zones[zone])), now)
                self.states[zone] = state
        return DisruptionChange(exited_full=exited)
