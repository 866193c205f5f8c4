"""``raftsman api-resources``: the kinds this server knows, as kubectl lists them."""

from __future__ import annotations

import click

from proto.k8s import kinds

from .printers import render


@click.command("api-resources")
@click.option(
    "--namespaced",
    type=bool,
    default=None,
    help="Only namespaced (true) or cluster-scoped (false) kinds.",
)
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), default=None)
def api_resources(namespaced: bool | None, output: str | None) -> None:
    """List the kinds of object the cluster serves (NAME SHORTNAMES APIVERSION NAMESPACED KIND)."""
    infos = sorted(kinds.KINDS, key=lambda i: (i.group, i.resource))
    if namespaced is not None:
        infos = [i for i in infos if i.namespaced == namespaced]
    if output == "name":
        for info in infos:
            click.echo(f"{info.resource}.{info.group}" if info.group else info.resource)
        return
    rows = [("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")]
    for info in infos:
        rows.append(
            (
                info.resource,
                ",".join(info.short_names),
                info.api_version,
                str(info.namespaced).lower(),
                info.kind,
            )
        )
    click.echo(render(rows))
