"""``raftsman events``: recent Events, oldest first, as ``kubectl events`` shows them.

``--for KIND/NAME`` keeps the Events about one object; ``--types Warning`` keeps those
types; ``-w`` keeps printing new ones. ``raftsman get events`` prints the same table.
"""

from __future__ import annotations

import time
from typing import Any

import click

from actors.client import ApiClient

from . import printers, resources, session, watching


@click.command("events")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option(
    "--for", "for_", default="", metavar="KIND/NAME", help="Only Events about this object."
)
@click.option("--types", default="", help="Comma-separated Event types (Normal,Warning).")
@click.option("-w", "--watch", is_flag=True, help="Keep printing new Events.")
@session.common_options
def events(
    namespace: str,
    all_namespaces: bool,
    for_: str,
    types: str,
    watch: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """List Events: raftsman events [--for pod/web-1] [--types Warning] [-w]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
    wanted = {t.strip() for t in types.split(",") if t.strip()}
    for bad in wanted - {"Normal", "Warning"}:
        raise click.BadParameter(
            f"{bad!r}: Event types are Normal and Warning", param_hint="--types"
        )

    async def run(api: ApiClient) -> None:
        selector = []
        if for_:
            kind, _, name = for_.partition("/")
            if not name:
                raise session.UsageProblem(f"--for {for_!r}: use KIND/NAME, e.g. pod/web-1")
            info = resources.lookup(kind)
            selector += [f"involvedObject.kind={info.kind}", f"involvedObject.name={name}"]
        field_selector = ",".join(selector)
        ns = "" if all_namespaces else namespace

        def keep(e: Any) -> bool:
            return not wanted or (e.type or "Normal") in wanted

        page = await api.list_all("events", namespace=ns, field_selector=field_selector)
        shown = [e for e in page.items if keep(e)]
        if shown:
            click.echo(
                printers.render(
                    printers.event_rows(shown, now=time.time(), all_namespaces=all_namespaces)
                )
            )
        elif not watch:
            where = "" if all_namespaces else f" in {namespace} namespace"
            click.echo(f"No events found{where}.", err=True)
        if not watch:
            return
        header = not shown

        def on_event(event: Any) -> None:
            nonlocal header
            if event.type.value == "DELETED" or not keep(event.object):
                return
            rows = printers.event_rows(
                [event.object], now=time.time(), all_namespaces=all_namespaces
            )
            text = printers.render(rows)
            click.echo(text if header else text.split("\n", 1)[1])
            header = False

        await watching.follow(
            api,
            "events",
            on_event,
            namespace=ns,
            resource_version=page.resource_version,
            field_selector=field_selector,
        )

    session.run(options, run)
