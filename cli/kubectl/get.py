"""``raftsman get KIND [NAME...]``: tables like kubectl's, or ``-o wide|name|json|yaml``."""

from __future__ import annotations

import time
from typing import Any

import click

from actors.client import ApiClient, ApiError, NotFound, Unreachable
from proto.k8s.kinds import KindInfo

from . import printers, resources, session

OUTPUTS = ("wide", "name", "json", "yaml")


def not_found(info: KindInfo, name: str) -> NotFound:
    resource = f"{info.resource}.{info.group}" if info.group else info.resource
    return NotFound(f'{resource} "{name}" not found')


def empty_message(namespace: str, all_namespaces: bool, namespaced: bool) -> str:
    if all_namespaces or not namespaced:
        return "No resources found"
    return f"No resources found in {namespace} namespace."


@click.command("get")
@click.argument("args", nargs=-1)
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default=None, help="Output format.")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-A", "--all-namespaces", is_flag=True, help="List across every namespace.")
@click.option("-l", "--selector", default="", help="Label selector (app=web,tier!=db).")
@click.option("--field-selector", default="", help="Field selector (metadata.name=x).")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@session.common_options
def get(
    args: tuple[str, ...],
    output: str | None,
    namespace: str,
    all_namespaces: bool,
    selector: str,
    field_selector: str,
    show_labels: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Show objects: raftsman get pods, get deploy web, get svc/web, get all -A."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> bool:
        requests = resources.parse(args)
        several = len(requests) > 1
        found: list[tuple[KindInfo, list[Any]]] = []
        ok = True
        for request in requests:
            info = request.info
            ns = "" if all_namespaces else namespace
            if request.names:
                objs = []
                for name in request.names:
                    try:
                        objs.append(await api.get(info, name, namespace=ns or namespace))
                    except Unreachable:
                        raise
                    except NotFound:
                        click.echo(session.server_error(not_found(info, name)), err=True)
                        ok = False
                    except ApiError as exc:
                        click.echo(session.server_error(exc), err=True)
                        ok = False
            else:
                page = await api.list_all(
                    info, namespace=ns, label_selector=selector, field_selector=field_selector
                )
                objs = sorted(page.items, key=lambda o: (o.metadata.namespace, o.metadata.name))
            found.append((info, objs))
        named = sum(len(r.names) for r in requests)
        _print(found, output, several, named, namespace, all_namespaces, show_labels)
        return ok

    session.run(options, run)


def _print(
    found: list[tuple[KindInfo, list[Any]]],
    output: str | None,
    several: bool,
    named: int,
    namespace: str,
    all_namespaces: bool,
    show_labels: bool,
) -> None:
    everything = [(info, o) for info, objs in found for o in objs]
    if output in ("json", "yaml"):
        single = named == 1  # `get pod web`: the object itself; else a List
        doc = printers.as_document([o for _, o in everything], single=single)
        if everything or not single:
            click.echo(printers.to_json(doc) if output == "json" else printers.to_yaml(doc))
        return
    if output == "name":
        for info, obj in everything:
            click.echo(printers.name_line(info, obj))
        return
    if not everything:
        if not named:
            namespaced = any(info.namespaced for info, _ in found)
            click.echo(empty_message(namespace, all_namespaces, namespaced), err=True)
        return
    now = time.time()
    blocks = []
    for info, objs in found:
        if objs:
            blocks.append(
                printers.table(
                    info,
                    objs,
                    now=now,
                    wide=output == "wide",
                    all_namespaces=all_namespaces,
                    show_labels=show_labels,
                    with_kind=several,
                )
            )
    click.echo("\n\n".join(blocks))
