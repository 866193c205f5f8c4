"""``raftsman top nodes|pods``: cpu and memory usage, laid out as ``kubectl top``.

The numbers come from the node agents (each measures its pods' containers and itself),
gathered by the API server (``Top``). cpu is in millicores (``250m``), memory in MiB
(``64Mi``), percentages of the node's allocatable cpu and memory. A node whose agent
cannot be reached shows ``<unknown>``; its pods are left out, with a warning on stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from actors.client import ApiClient

from . import printers, session

UNKNOWN = "<unknown>"


def cpu_text(millicores: int) -> str:
    return f"{millicores}m"


def memory_text(size: int) -> str:
    return f"{size // (1024 * 1024)}Mi"


def percent(used: int, allocatable: int) -> str:
    return f"{used * 100 // allocatable}%" if allocatable > 0 else UNKNOWN


def node_rows(nodes: Sequence[Any], *, headers: bool = True) -> list[list[str]]:
    rows = [["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]] if headers else []
    for n in nodes:
        if n.error:
            rows.append([n.name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN])
            continue
        rows.append(
            [
                n.name,
                cpu_text(n.cpu_millicores),
                percent(n.cpu_millicores, n.cpu_allocatable_millicores),
                memory_text(n.memory_bytes),
                percent(n.memory_bytes, n.memory_allocatable_bytes),
            ]
        )
    return rows


def pod_rows(
    pods: Sequence[Any], *, all_namespaces: bool, containers: bool, headers: bool = True
) -> list[list[str]]:
    head = ["POD", "NAME"] if containers else ["NAME"]
    if all_namespaces:
        head = ["NAMESPACE", *head]
    rows = [[*head, "CPU(cores)", "MEMORY(bytes)"]] if headers else []
    for p in pods:
        prefix = [p.namespace] if all_namespaces else []
        if containers:
            for c in p.containers:
                rows.append(
                    [
                        *prefix,
                        p.name,
                        c.name,
                        cpu_text(c.cpu_millicores),
                        memory_text(c.memory_bytes),
                    ]
                )
        else:
            rows.append([*prefix, p.name, cpu_text(p.cpu_millicores), memory_text(p.memory_bytes)])
    return rows


def _sorted(items: list[Any], sort_by: str) -> list[Any]:
    if sort_by == "cpu":
        return sorted(items, key=lambda i: -i.cpu_millicores)
    if sort_by == "memory":
        return sorted(items, key=lambda i: -i.memory_bytes)
    return items


class _Aliases(click.Group):
    """``top node`` / ``top nodes`` / ``top no`` (and the same for pods), as kubectl."""

    aliases = {"node": "nodes", "no": "nodes", "pod": "pods", "po": "pods"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))


@click.group("top", cls=_Aliases)
def top() -> None:
    """Show cpu and memory usage of nodes or pods."""


@top.command("nodes")
@click.argument("name", required=False, default="")
@click.option("-l", "--selector", default="", help="Label selector (app=web).")
@click.option("--no-headers", is_flag=True)
@click.option("--sort-by", type=click.Choice(["cpu", "memory"]), default=None)
@session.common_options
def nodes(
    name: str,
    selector: str,
    no_headers: bool,
    sort_by: str | None,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Usage of nodes: raftsman top nodes [NAME] [-l SELECTOR]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> None:
        response = await api.top_nodes(name=name, label_selector=selector)
        if not response.nodes:
            click.echo("No resources found", err=True)
            return
        shown = _sorted(list(response.nodes), sort_by or "")
        click.echo(printers.render(node_rows(shown, headers=not no_headers)))

    session.run(options, run)


@top.command("pods")
@click.argument("name", required=False, default="")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-l", "--selector", default="", help="Label selector (app=web).")
@click.option("--containers", is_flag=True, help="One line per container.")
@click.option("--no-headers", is_flag=True)
@click.option("--sort-by", type=click.Choice(["cpu", "memory"]), default=None)
@session.common_options
def pods(
    name: str,
    namespace: str,
    all_namespaces: bool,
    selector: str,
    containers: bool,
    no_headers: bool,
    sort_by: str | None,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Usage of pods: raftsman top pods [NAME] [-n NS | -A] [--containers]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> None:
        response = await api.top_pods(
            namespace=None if all_namespaces else namespace, name=name, label_selector=selector
        )
        for warning in response.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if not response.pods:
            where = "" if all_namespaces else f" in {namespace} namespace"
            click.echo(f"No resources found{where}.", err=True)
            return
        shown = _sorted(list(response.pods), sort_by or "")
        rows = pod_rows(
            shown, all_namespaces=all_namespaces, containers=containers, headers=not no_headers
        )
        click.echo(printers.render(rows))

    session.run(options, run)
