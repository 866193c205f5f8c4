"""``raftsman scheduler``: bind pending pods to nodes, leader-elected among replicas."""

from __future__ import annotations

import click

from cli.process import run_until_signalled, setup_logging


@click.command("scheduler")
@click.option(
    "--server",
    default=None,
    help="API server HOST:PORT, comma-separated for several "
    "[default: $RAFTSMAN_SERVER, else the cluster's client config].",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=True,
    show_default=True,
    help="Act only while holding the Lease (run several replicas for availability).",
)
@click.option(
    "--lease-duration",
    "--leader-elect-lease-duration",
    type=float,
    default=15.0,
    show_default=True,
    help="Seconds a standby waits, seeing the Lease unchanged, before taking it.",
)
@click.option(
    "--renew-deadline",
    "--leader-elect-renew-deadline",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds the leader keeps acting without a successful renewal.",
)
@click.option(
    "--retry-period",
    "--leader-elect-retry-period",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds between attempts to acquire or renew.",
)
@click.option(
    "--identity",
    default=None,
    help="holderIdentity written into the Lease [default: HOSTNAME_RANDOM].",
)
@click.option(
    "--leader-elect-resource-name",
    "lock_name",
    default="raftsman-scheduler",
    show_default=True,
    help="Name of the Lease.",
)
@click.option(
    "--leader-elect-resource-namespace",
    "lock_namespace",
    default="kube-system",
    show_default=True,
    help="Namespace of the Lease.",
)
@click.option(
    "--scheduler-name",
    default="default-scheduler",
    show_default=True,
    help="Schedule pods whose spec.schedulerName is this.",
)
@click.option(
    "--bind-concurrency",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Binds and status writes in flight at most.",
)
@click.option(
    "--pod-max-in-unschedulable-pods-duration",
    "max_unschedulable",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds after which an unschedulable pod is retried even without a cluster event.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def scheduler(
    server: str | None,
    leader_elect: bool,
    lease_duration: float,
    renew_deadline: float,
    retry_period: float,
    identity: str | None,
    lock_name: str,
    lock_namespace: str,
    scheduler_name: str,
    bind_concurrency: int,
    max_unschedulable: float,
    verbose: bool,
) -> None:
    """Bind pending pods to nodes (filter, score, bind), like kube-scheduler."""
    from actors.client import open_api_client
    from actors.controller.leaderelection import LeaderElectionConfig, default_identity
    from actors.scheduler import SchedulerConfig, run_scheduler
    from cli.kubectl.config import ConfigError, resolve

    try:
        addresses = resolve(server=server, name=None).addresses
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        config = SchedulerConfig(
            scheduler_name=scheduler_name,
            bind_concurrency=bind_concurrency,
            max_unschedulable=max_unschedulable,
        )
        election = None
        if leader_elect:
            election = LeaderElectionConfig(
                lock_name=lock_name,
                lock_namespace=lock_namespace,
                identity=identity or default_identity(),
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
            )
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    setup_logging("scheduler", verbose=verbose)

    async def main() -> None:
        async with open_api_client(addresses) as api:
            await run_scheduler(api, config=config, election=election)

    run_until_signalled(main)
