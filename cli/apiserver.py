"""``raftsman apiserver``: serve the cluster API over gRPC, backed by raftstore or etcd."""

from __future__ import annotations

import click

from cli.process import run_until_signalled, setup_logging


def _endpoints(value: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in value.split(",") if u.strip())


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, not {value!r}")
    return host or "127.0.0.1", int(port)


@click.command("apiserver")
@click.option(
    "--etcd-servers",
    default="http://127.0.0.1:2379",
    show_default=True,
    help="Comma-separated store client URLs (raftstore or etcd).",
)
@click.option(
    "--listen",
    default="127.0.0.1:6443",
    show_default=True,
    help="HOST:PORT to serve the API on (port 0: any free port).",
)
@click.option(
    "--service-cluster-ip-range",
    default="127.96.0.0/16",
    show_default=True,
    help="CIDR inside 127.0.0.0/8 that Services get their clusterIPs from.",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (HOST from --listen).",
)
@click.option(
    "--cluster-cidr",
    default="127.64.0.0/12",
    show_default=True,
    help="CIDR inside 127.0.0.0/8 that node pod CIDRs are carved from.",
)
@click.option(
    "--node-cidr-mask-size",
    type=click.IntRange(8, 30),
    default=24,
    show_default=True,
    help="Prefix length of each node's pod CIDR.",
)
@click.option(
    "--default-not-ready-toleration-seconds",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="tolerationSeconds of the not-ready:NoExecute toleration every new pod gets.",
)
@click.option(
    "--default-unreachable-toleration-seconds",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="tolerationSeconds of the unreachable:NoExecute toleration every new pod gets.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def apiserver(
    etcd_servers: str,
    listen: str,
    service_cluster_ip_range: str,
    metrics_port: int | None,
    cluster_cidr: str,
    node_cidr_mask_size: int,
    default_not_ready_toleration_seconds: int,
    default_unreachable_toleration_seconds: int,
    verbose: bool,
) -> None:
    """Serve the cluster API (objects, watches) over gRPC."""
    from actors.apiserver.allocation import parse_range
    from actors.apiserver.defaults import configure_default_tolerations
    from actors.apiserver.server import run_apiserver

    endpoints = _endpoints(etcd_servers)
    if not endpoints:
        raise click.UsageError("--etcd-servers names no store")
    try:
        host, port = _host_port(listen)
    except click.BadParameter as exc:
        raise click.UsageError(str(exc)) from None
    try:
        parse_range(service_cluster_ip_range)
    except ValueError as exc:
        raise click.UsageError(f"--service-cluster-ip-range: {exc}") from None
    try:
        network = parse_range(cluster_cidr)
    except ValueError as exc:
        raise click.UsageError(f"--cluster-cidr: {exc}") from None
    if node_cidr_mask_size < network.prefixlen:
        raise click.UsageError(
            f"--node-cidr-mask-size: /{node_cidr_mask_size} is wider than --cluster-cidr {cluster_cidr}"
        )
    configure_default_tolerations(
        not_ready=default_not_ready_toleration_seconds,
        unreachable=default_unreachable_toleration_seconds,
    )
    setup_logging("apiserver", verbose=verbose)
    run_until_signalled(
        lambda: run_apiserver(
            etcd_endpoints=endpoints,
            host=host,
            port=port,
            service_cluster_ip_range=service_cluster_ip_range,
            cluster_cidr=cluster_cidr,
            node_cidr_mask=node_cidr_mask_size,
            metrics_port=metrics_port,
        )
    )
