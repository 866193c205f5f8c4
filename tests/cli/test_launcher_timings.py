"""The launcher's local timings keep the relations their choice rests on (docs/launcher.md)."""

from __future__ import annotations

from pathlib import Path

from cli.launcher.layout import Layout
from cli.launcher.plan import plan_cluster
from cli.launcher.roles import LOCAL_TIMINGS, ROLES

T = LOCAL_TIMINGS


def test_several_node_lease_renewals_fit_in_the_grace_period() -> None:
    # Kubernetes renews every 10 s with a 40 s grace: a node is lost only after about four
    # renewals in a row did not get through, not after one late write.
    assert T["node-monitor-grace-period"] / T["node-lease-period"] >= 4


def test_pods_tolerate_a_lost_node_longer_than_nodes_take_to_fall_silent_together() -> None:
    # When the control plane is cut off from every node at once, the nodes are judged
    # stale over a spread of up to one renewal period plus one health check. The first
    # node's pods must still be tolerated when the last node is judged, so that the
    # controller sees a full disruption and evicts nothing.
    spread = T["node-lease-period"] + T["node-monitor-period"]
    assert T["default-toleration-seconds"] > spread


def test_leader_election_timings_are_ordered() -> None:
    assert T["retry-period"] < T["renew-deadline"] < T["lease-duration"]


def _argv(role: str, tmp_path: Path) -> list[str]:
    cluster = plan_cluster(
        Layout.at(tmp_path), name="t", stores=1, base_port=None, restart=True,
        apiservers=2, schedulers=1, controller_managers=1, nodes=1,
    )  # fmt: skip
    proc = next(p for p in cluster.processes if p.role == role)
    return ROLES[role].argv(proc, cluster)


def test_processes_are_started_with_the_local_timings(tmp_path: Path) -> None:
    agent = _argv("node-agent", tmp_path)
    assert f"--lease-period={T['node-lease-period']:g}" in agent
    manager = _argv("controller-manager", tmp_path)
    assert f"--node-monitor-grace-period={T['node-monitor-grace-period']:g}" in manager
    assert f"--node-monitor-period={T['node-monitor-period']:g}" in manager
