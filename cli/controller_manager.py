"""``raftsman controller-manager``: run the cluster's controllers, leader-elected."""

from __future__ import annotations

import click

from cli.process import run_until_signalled, setup_logging


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in value.split(",") if a.strip())


@click.command("controller-manager")
@click.option(
    "--server",
    envvar="RAFTSMAN_SERVER",
    default="127.0.0.1:6443",
    show_default=True,
    help="API server address(es), HOST:PORT[,HOST:PORT...].",
)
@click.option(
    "--controllers",
    default="*",
    show_default=True,
    help="Controllers to run: '*' for all, 'name' to turn one on, '-name' to turn one off "
    "(e.g. '*,-podgc'). Names: replicaset, deployment, endpoints, garbagecollector, "
    "namespace, nodelifecycle, podgc, job, cronjob, daemonset.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=True,
    show_default=True,
    help="Contend for the Lease kube-system/raftsman-controller-manager; act only while holding it.",
)
@click.option("--lease-duration", type=float, default=15.0, show_default=True, help="Seconds.")
@click.option("--renew-deadline", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option("--retry-period", type=float, default=2.0, show_default=True, help="Seconds.")
@click.option(
    "--identity", default=None, help="holderIdentity in the Lease [default: HOST_random]."
)
@click.option(
    "--concurrent-syncs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Workers per controller (Kubernetes' --concurrent-*-syncs).",
)
@click.option(
    "--node-monitor-grace-period",
    type=click.FloatRange(min=0, min_open=True),
    default=40.0,
    show_default=True,
    help="Seconds without a node Lease renewal before the node is Ready=Unknown.",
)
@click.option(
    "--node-monitor-period",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds between passes of the node lifecycle controller over node health.",
)
@click.option(
    "--node-startup-grace-period",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds a new node may take to report Ready before it is marked unhealthy.",
)
@click.option(
    "--large-cluster-size-threshold",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Zones with at most this many nodes stop evicting when partially disrupted.",
)
@click.option(
    "--default-toleration-seconds",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="tolerationSeconds assumed for pods without a not-ready/unreachable toleration.",
)
@click.option(
    "--pod-eviction-timeout",
    type=click.IntRange(min=0),
    default=None,
    help="Deprecated alias of --default-toleration-seconds (as in Kubernetes).",
)
@click.option(
    "--node-eviction-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=0.1,
    show_default=True,
    help="Nodes per second whose pods may be evicted while the zone is healthy.",
)
@click.option(
    "--secondary-node-eviction-rate",
    type=click.FloatRange(min=0),
    default=0.01,
    show_default=True,
    help="Nodes per second whose pods may be evicted while most nodes are unreachable.",
)
@click.option(
    "--unhealthy-zone-threshold",
    type=click.FloatRange(0, 1),
    default=0.55,
    show_default=True,
    help="Fraction of not-Ready nodes above which evictions slow down.",
)
@click.option(
    "--terminated-pod-gc-threshold",
    type=click.IntRange(min=0),
    default=12500,
    show_default=True,
    help="Terminated pods kept before the pod GC deletes the oldest.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def controller_manager(
    server: str,
    controllers: str,
    leader_elect: bool,
    lease_duration: float,
    renew_deadline: float,
    retry_period: float,
    identity: str | None,
    concurrent_syncs: int,
    node_monitor_grace_period: float,
    node_monitor_period: float,
    node_startup_grace_period: float,
    large_cluster_size_threshold: int,
    default_toleration_seconds: int,
    pod_eviction_timeout: int | None,
    node_eviction_rate: float,
    secondary_node_eviction_rate: float,
    unhealthy_zone_threshold: float,
    terminated_pod_gc_threshold: int,
    verbose: bool,
) -> None:
    """Run the controllers (ReplicaSet, Deployment, ...) against the API server."""
    from actors.controllers import UnknownController, load_all, resolve_names
    from actors.controllers.context import ControllerOptions
    from actors.controllers.manager import default_leader_election, run_controller_manager

    addresses = _addresses(server)
    if not addresses:
        raise click.UsageError("--server names no API server")
    try:
        names = resolve_names(controllers)
    except UnknownController as exc:
        raise click.UsageError(str(exc)) from None
    try:
        election = default_leader_election(
            identity=identity,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"leader election: {exc}") from None
    options = ControllerOptions(
        workers=concurrent_syncs,
        node_monitor_grace_period=node_monitor_grace_period,
        node_monitor_period=node_monitor_period,
        node_startup_grace_period=node_startup_grace_period,
        large_cluster_size_threshold=large_cluster_size_threshold,
        default_toleration_seconds=(
            pod_eviction_timeout if pod_eviction_timeout is not None else default_toleration_seconds
        ),
        node_eviction_rate=node_eviction_rate,
        secondary_node_eviction_rate=secondary_node_eviction_rate,
        unhealthy_zone_threshold=unhealthy_zone_threshold,
        terminated_pod_gc_threshold=terminated_pod_gc_threshold,
    )
    setup_logging("controller-manager", verbose=verbose)
    factories = load_all(names)  # after logging: a missing module is logged as a warning
    run_until_signalled(
        lambda: run_controller_manager(
            addresses,
            options=options,
            leader_election=election,
            leader_elect=leader_elect,
            factories=factories,
        )
    )
