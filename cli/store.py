"""``raftsman store``: run one raftstore member, with etcd's flag names and defaults."""

from __future__ import annotations

from pathlib import Path

import click

from cli.process import run_until_signalled, setup_logging


def _urls(value: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in value.split(",") if u.strip())


@click.command("store")
@click.option(
    "--name", default="default", show_default=True, help="Human-readable name of this member."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for the journal and snapshots [default: NAME.raftstore].",
)
@click.option(
    "--listen-client-urls",
    default="http://127.0.0.1:2379",
    show_default=True,
    help="Comma-separated URLs to serve clients on.",
)
@click.option(
    "--advertise-client-urls",
    default=None,
    help="Client URLs to tell the cluster [default: the listen URLs].",
)
@click.option(
    "--listen-peer-urls",
    default="http://127.0.0.1:2380",
    show_default=True,
    help="URL to serve peers on.",
)
@click.option(
    "--initial-advertise-peer-urls",
    default=None,
    help="Peer URL to tell the cluster [default: the listen peer URL].",
)
@click.option(
    "--initial-cluster",
    default=None,
    help="NAME=PEER-URL,... for every member [default: this member alone].",
)
@click.option(
    "--initial-cluster-state",
    type=click.Choice(["new", "existing"]),
    default="new",
    show_default=True,
)
@click.option(
    "--unsafe-no-fsync",
    is_flag=True,
    help="Do not flush the journal to disk per write (survives process crashes, not power loss).",
)
@click.option(
    "--heartbeat-interval",
    type=click.IntRange(min=1),
    default=None,
    help="Milliseconds between the leader's heartbeats [default: 100, as etcd].",
)
@click.option(
    "--election-timeout",
    type=click.IntRange(min=1),
    default=None,
    help="Milliseconds without a leader before a follower starts an election, randomized "
    "up to twice that [default: 1000, as etcd].",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def store(
    name: str,
    data_dir: Path | None,
    listen_client_urls: str,
    advertise_client_urls: str | None,
    listen_peer_urls: str,
    initial_advertise_peer_urls: str | None,
    initial_cluster: str | None,
    initial_cluster_state: str,
    unsafe_no_fsync: bool,
    heartbeat_interval: int | None,
    election_timeout: int | None,
    verbose: bool,
) -> None:
    """Run one raftstore member (an etcd v3 API server on Raft)."""
    from raftstore.replication import RaftConfig
    from raftstore.server.config import ConfigError, StoreConfig, parse_initial_cluster
    from raftstore.server.run import run_store

    setup_logging("store", verbose=verbose)
    try:
        listen_peer = _urls(listen_peer_urls)
        config = StoreConfig(
            name=name,
            data_dir=data_dir or Path(f"{name}.raftstore"),
            listen_client_urls=_urls(listen_client_urls),
            advertise_client_urls=_urls(advertise_client_urls or listen_client_urls),
            listen_peer_urls=listen_peer,
            initial_advertise_peer_urls=_urls(initial_advertise_peer_urls or listen_peer_urls),
            initial_cluster=parse_initial_cluster(initial_cluster) if initial_cluster else {},
            initial_cluster_state=initial_cluster_state,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    raft = RaftConfig(fsync=not unsafe_no_fsync)
    if heartbeat_interval is not None or election_timeout is not None:
        try:
            raft = raft.with_etcd_timings(
                heartbeat_interval_ms=heartbeat_interval
                or round(raft.append_entries_period * 1000),
                election_timeout_ms=election_timeout or round(raft.election_timeout_min * 1000),
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    run_until_signalled(lambda: run_store(config, raft=raft))
