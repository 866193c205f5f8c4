"""When did each node last show signs of life -- by this controller's own clock.

A node agent proves it is alive two ways: it renews its Lease (``kube-node-lease/<node>``)
and it posts its Ready condition with a fresh ``lastHeartbeatTime``. The times written in
those objects come from the node's clock, which may be wrong, so -- like Kubernetes'
``nodeHealthData.probeTimestamp`` -- they are only compared for *change*: the moment this
controller observes a change is the node's *probe time*, on the controller's monotonic
clock. A node whose probe time is older than the grace period is stale (its agent
stopped), however its own timestamps read.

A node seen for the first time gets the current time as probe time (a controller that
just took over gives every node a full grace period). A node that never posted a Ready
condition gets the longer startup grace period.

:class:`HealthTracker` is plain bookkeeping with ``now`` passed in, so tests drive it with
any clock; the controller feeds it from the informers' handlers (as events arrive) and
from each pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["HealthTracker", "Verdict", "ready_condition"]


def ready_condition(node: Any) -> Any | None:
    for condition in node.status.conditions:
        if condition.type == "Ready":
            return condition
    return None


def _heartbeat(node: Any) -> bytes | None:
    ready = ready_condition(node)
    if ready is None:
        return None
    return bytes(ready.last_heartbeat_time.SerializeToString(deterministic=True))


def _renewal(lease: Any | None) -> bytes | None:
    if lease is None:
        return None
    return bytes(lease.spec.renew_time.SerializeToString(deterministic=True))


@dataclass
class _Probe:
    probe: float
    heartbeat: bytes | None
    renewal: bytes | None


@dataclass(frozen=True)
class Verdict:
    """``stale``: past the grace period; ``remaining``: seconds of grace left (<= 0 when
    stale); ``grace``: the period that applied."""

    stale: bool
    remaining: float
    grace: float


class HealthTracker:
    """Probe times per node name (see the module doc)."""

    def __init__(self, *, grace: float, startup_grace: float) -> None:
        self.grace = grace
        self.startup_grace = startup_grace
        self._probes: dict[str, _Probe] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._probes

    def probe_time(self, name: str) -> float | None:
        probe = self._probes.get(name)
        return None if probe is None else probe.probe

    def observe_node(self, node: Any, now: float) -> None:
        """A node event: a new Ready heartbeat is a sign of life (known nodes only)."""
        probe = self._probes.get(node.metadata.name)
        if probe is not None:
            heartbeat = _heartbeat(node)
            if heartbeat is not None and heartbeat != probe.heartbeat:
                probe.heartbeat = heartbeat
                probe.probe = now

    def observe_lease(self, lease: Any, now: float) -> None:
        """A lease event: a changed renewTime is a sign of life (known nodes only)."""
        probe = self._probes.get(lease.metadata.name)
        if probe is not None:
            renewal = _renewal(lease)
            if renewal != probe.renewal:
                probe.renewal = renewal
                probe.probe = now

    def check(self, node: Any, lease: Any | None, now: float) -> Verdict:
        """Record what ``node`` and its ``lease`` show now and judge the node."""
        name = node.metadata.name
        probe = self._probes.get(name)
        if probe is None:
            probe = self._probes[name] = _Probe(now, _heartbeat(node), _renewal(lease))
        else:
            self.observe_node(node, now)
            if lease is not None:
                self.observe_lease(lease, now)
        grace = self.grace if ready_condition(node) is not None else self.startup_grace
        remaining = probe.probe + grace - now
        return Verdict(stale=remaining < 0, remaining=remaining, grace=grace)

    def forget(self, name: str) -> None:
        self._probes.pop(name, None)

    def names(self) -> list[str]:
        return list(self._probes)

    def reset_all(self, now: float) -> None:
        """Every node gets a fresh grace period (leaving a full disruption: the silence
        was the control plane's, not the nodes')."""
        for probe in self._probes.values():
            probe.probe = now
