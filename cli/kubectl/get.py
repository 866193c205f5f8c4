"""``raftsman get KIND [NAME...]``: tables like kubectl's, or ``-o wide|name|json|yaml|
jsonpath=TEMPLATE``; ``--sort-by=JSONPATH`` orders the rows; ``-w`` keeps watching and
prints a row per change (``--output-watch-events`` prefixes the event type), like kubectl.
"""

from __future__ import annotations

import time
from typing import Any

import click

from actors.client import ApiClient, ApiError, NotFound, Unreachable
from proto.k8s.kinds import KindInfo

from . import jsonpath, printers, resources, session, watching

OUTPUTS = ("wide", "name", "json", "yaml")


def _output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value in OUTPUTS or value.startswith("jsonpath="):
        return value
    raise click.BadParameter(
        f"{value!r}: allowed formats are {', '.join(OUTPUTS)}, jsonpath=TEMPLATE"
    )


def sort_key(expression: str) -> Any:
    """A key function ordering objects by the value at a JSONPath (kubectl's --sort-by);
    objects lacking it sort first, numbers numerically, the rest as text."""
    template = expression if expression.startswith("{") else "{" + expression + "}"

    def key(obj: Any) -> tuple[int, float, str]:
        text = jsonpath.render(template, printers.manifest(obj))
        if not text:
            return (0, 0.0, "")
        try:
            return (1, float(text), "")
        except ValueError:
            return (2, 0.0, text)

    jsonpath.render(template, {})  # a malformed expression fails before any request
    return key


def not_found(info: KindInfo, name: str) -> NotFound:
    resource = f"{info.resource}.{info.group}" if info.group else info.resource
    return NotFound(f'{resource} "{name}" not found')


def empty_message(namespace: str, all_namespaces: bool, namespaced: bool) -> str:
    if all_namespaces or not namespaced:
        return "No resources found"
    return f"No resources found in {namespace} namespace."


@click.command("get")
@click.argument("args", nargs=-1)
@click.option(
    "-o",
    "--output",
    default=None,
    callback=_output,
    help="wide, name, json, yaml or jsonpath=TEMPLATE.",
)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-A", "--all-namespaces", is_flag=True, help="List across every namespace.")
@click.option("-l", "--selector", default="", help="Label selector (app=web,tier!=db).")
@click.option("--field-selector", default="", help="Field selector (metadata.name=x).")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("--sort-by", default="", help="Order by a JSONPath (.metadata.creationTimestamp).")
@click.option("-w", "--watch", is_flag=True, help="After listing, print changes as they happen.")
@click.option("--watch-only", is_flag=True, help="Print changes only, not the current list.")
@click.option(
    "--output-watch-events", is_flag=True, help="Prefix watched rows with the event type."
)
@session.common_options
def get(
    args: tuple[str, ...],
    output: str | None,
    namespace: str,
    all_namespaces: bool,
    selector: str,
    field_selector: str,
    show_labels: bool,
    sort_by: str,
    watch: bool,
    watch_only: bool,
    output_watch_events: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Show objects: raftsman get pods, get deploy web, get svc/web, get all -A."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> bool:
        try:
            order = sort_key(sort_by) if sort_by else None
        except jsonpath.JsonPathError as exc:
            raise session.UsageProblem(f"couldn't parse --sort-by {sort_by!r}: {exc}") from None
        requests = resources.parse(args)
        if (watch or watch_only) and len(requests) != 1:
            raise session.UsageProblem("watch is only supported on individual resources")
        several = len(requests) > 1
        found: list[tuple[KindInfo, list[Any]]] = []
        ok = True
        last_rv = ""
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
                last_rv = page.resource_version
            if order is not None:
                objs = sorted(objs, key=order)
            found.append((info, objs))
        named = sum(len(r.names) for r in requests)
        if not watch_only:
            _print(found, output, several, named, namespace, all_namespaces, show_labels)
        if watch or watch_only:
            request = requests[0]
            await _watch(
                api,
                request.info,
                names=request.names,
                namespace="" if all_namespaces else namespace,
                selector=selector,
                field_selector=field_selector,
                resource_version="" if request.names else last_rv,
                output=output,
                all_namespaces=all_namespaces,
                show_labels=show_labels,
                events=output_watch_events,
                header=watch_only or not found[0][1],
            )
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
    if output is not None and output.startswith("jsonpath="):
        single = named == 1
        doc = printers.as_document([o for _, o in everything], single=single)
        try:
            click.echo(jsonpath.render(output.removeprefix("jsonpath="), doc), nl=False)
        except jsonpath.JsonPathError as exc:
            raise session.UsageProblem(f"error parsing jsonpath: {exc}") from None
        return
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


async def _watch(
    api: ApiClient,
    info: KindInfo,
    *,
    names: tuple[str, ...],
    namespace: str,
    selector: str,
    field_selector: str,
    resource_version: str,
    output: str | None,
    all_namespaces: bool,
    show_labels: bool,
    events: bool,
    header: bool,
) -> None:
    """Print a row (or document) per change until interrupted; a broken stream resumes
    from the last resourceVersion seen, as kubectl's watch does."""
    if len(names) == 1:
        field_selector = ",".join(filter(None, [field_selector, f"metadata.name={names[0]}"]))
    first = header

    def on_event(event: Any) -> None:
        nonlocal first
        if names and event.object.metadata.name not in names:
            return
        _print_event(info, event, output, all_namespaces, show_labels, events, first)
        first = False

    await watching.follow(
        api,
        info,
        on_event,
        namespace=namespace,
        resource_version=resource_version,
        label_selector=selector,
        field_selector=field_selector,
    )


def _print_event(
    info: KindInfo,
    event: Any,
    output: str | None,
    all_namespaces: bool,
    show_labels: bool,
    events: bool,
    header: bool,
) -> None:
    obj = event.object
    if output in ("json", "yaml") or (output or "").startswith("jsonpath="):
        doc = printers.manifest(obj)
        if events:
            doc = {"type": event.type.value, "object": doc}
        if output == "json":
            click.echo(printers.to_json(doc))
        elif output == "yaml":
            click.echo(printers.to_yaml(doc) + "\n---")
        else:
            click.echo(jsonpath.render((output or "").removeprefix("jsonpath="), doc), nl=False)
        return
    if output == "name":
        click.echo(printers.name_line(info, obj))
        return
    rows = printers.table_rows(
        info,
        [obj],
        now=time.time(),
        wide=output == "wide",
        all_namespaces=all_namespaces,
        show_labels=show_labels,
    )
    if events:
        rows = [["EVENT", *rows[0]], [event.type.value, *rows[1]]]
    text = printers.render(rows)
    click.echo(text if header else text.split("\n", 1)[1])
