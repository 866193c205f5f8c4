"""``raftsman cluster-info``: where the cluster's API servers are, and whether they answer.

Like ``kubectl cluster-info``: one line per API server the client config (or
``--server``) names, saying whether it answered, plus the node count -- a quick check
that the CLI reaches the cluster it means to.
"""

from __future__ import annotations

import click

from actors.client import ApiClient, ApiError, open_api_client

from . import session
from .config import resolve


@click.command("cluster-info")
@session.common_options
def cluster_info(server: str | None, cluster: str | None, verbose: bool, dir_: str | None) -> None:
    """Show the API servers of the cluster and whether each answers."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> bool:
        target = resolve(server=server, name=cluster, dir_=dir_)
        answered = 0
        for address in target.addresses:
            try:
                async with open_api_client(address, timeout=3) as one:
                    nodes = await one.list("nodes", limit=500)
                click.echo(f"API server is running at {address} ({len(nodes.items)} nodes)")
                answered += 1
            except ApiError as exc:
                click.echo(f"API server at {address} is not answering: {exc.message}")
        click.echo(f"\n(config: {target.source})")
        return answered > 0

    session.run(options, run)
