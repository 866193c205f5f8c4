"""``raftsman node-agent``: run a node (the kubelet and the service proxy), or many simulated ones."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli.process import run_until_signalled, setup_logging


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be a positive number of seconds, not {value:g}")
    return value


@click.command("node-agent")
@click.option(
    "--name", required=True, help="Node name (a DNS subdomain); with --sim-nodes, the prefix."
)
@click.option(
    "--server",
    default=None,
    help="API server HOST:PORT, comma-separated for several "
    "[default: $RAFTSMAN_SERVER, else the cluster's client config].",
)
@click.option(
    "--runtime",
    type=click.Choice(["process", "sim"]),
    default="process",
    show_default=True,
    help="process: containers are process groups on this host; sim: simulated containers.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where containers, logs, volumes and pod IPs are kept [default: ~/.raftsman/nodes/NAME].",
)
@click.option("--address", default="127.0.0.1", show_default=True, help="The node's InternalIP.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the agent's gRPC API (logs, exec, stats) on --address; 0: any free port.",
)
@click.option("--cpu", default=None, help="cpu capacity to report (e.g. 4) [default: the host's].")
@click.option(
    "--memory", default=None, help="memory capacity to report (e.g. 8Gi) [default: the host's]."
)
@click.option("--max-pods", type=click.IntRange(min=1), default=110, show_default=True)
@click.option(
    "--image-catalog",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML/JSON file of images (command, args, workingDir, env) added to the built-in ones.",
)
@click.option(
    "--node-status-update-frequency",
    type=float,
    default=10.0,
    show_default=True,
    callback=_positive,
    help="Seconds between checks of the Node's status (written when it changed).",
)
@click.option(
    "--lease-period",
    type=float,
    default=10.0,
    show_default=True,
    callback=_positive,
    help="Seconds between renewals of the node's Lease in kube-node-lease.",
)
@click.option(
    "--lease-duration",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="leaseDurationSeconds written into the Lease.",
)
@click.option(
    "--max-backoff",
    type=float,
    default=None,
    callback=_positive,
    help="Cap (seconds) of CrashLoopBackOff / ImagePullBackOff delays [default: 300, as Kubernetes].",
)
@click.option(
    "--sim-nodes",
    type=click.IntRange(min=1),
    default=None,
    help="With --runtime sim: run N simulated nodes NAME-0..NAME-(N-1) in this process.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def node_agent(
    name: str,
    server: str | None,
    runtime: str,
    data_dir: Path | None,
    address: str,
    port: int,
    cpu: str | None,
    memory: str | None,
    max_pods: int,
    image_catalog: Path | None,
    node_status_update_frequency: float,
    lease_period: float,
    lease_duration: int,
    max_backoff: float | None,
    sim_nodes: int | None,
    verbose: bool,
) -> None:
    """Run a node: register it, renew its Lease, run the pods bound to it, proxy Services."""
    from actors.apiserver.quantity import QuantityError, parse_quantity
    from cli.kubectl.config import ConfigError, resolve
    from node_agent.agent.agent import AgentError, AgentOptions, run_node_agent, validate_node_name
    from node_agent.pods.images import CatalogError, ImageCatalog

    if sim_nodes is not None and runtime != "sim":
        raise click.UsageError("--sim-nodes needs --runtime sim")
    try:
        addresses = resolve(server=server, name=None).addresses
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        validate_node_name(name if sim_nodes is None else f"{name}-0")
    except AgentError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    for flag, quantity in (("--cpu", cpu), ("--memory", memory)):
        if quantity is not None:
            try:
                parse_quantity(quantity)
            except QuantityError as exc:
                raise click.BadParameter(str(exc), param_hint=flag) from None
    try:
        catalog = ImageCatalog.load(image_catalog) if image_catalog else ImageCatalog()
    except CatalogError as exc:
        raise click.BadParameter(str(exc), param_hint="--image-catalog") from None
    data = data_dir or Path(os.path.expanduser("~")) / ".raftsman" / "nodes" / name
    options = AgentOptions(
        cpu=cpu,
        memory=memory,
        max_pods=max_pods,
        lease_period=lease_period,
        lease_duration=lease_duration,
        node_status_update_frequency=node_status_update_frequency,
        max_backoff=max_backoff,
    )
    setup_logging("node-agent", verbose=verbose)

    if sim_nodes is not None:
        from node_agent.agent.sim import run_sim_nodes

        async def sim_main() -> None:
            await run_sim_nodes(
                addresses,
                count=sim_nodes,
                prefix=name,
                data_dir=data,
                options=options,
                catalog=catalog,
            )

        run_until_signalled(sim_main)
        return

    from node_agent.runtime.base import ContainerRuntime

    container_runtime: ContainerRuntime
    if runtime == "sim":
        from node_agent.runtime.sim import SimRuntime

        container_runtime = SimRuntime()
    else:
        from node_agent.runtime.process import ProcessRuntime

        container_runtime = ProcessRuntime(state_dir=data / "containers")

    async def main() -> None:
        await run_node_agent(
            addresses,
            name=name,
            runtime=container_runtime,
            data_dir=data,
            node_address=address,
            options=options,
            catalog=catalog,
            port=port,
        )

    run_until_signalled(main)
