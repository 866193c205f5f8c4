"""Node verbs: ``cordon``, ``uncordon`` and ``taint``.

``cordon NODE`` marks the node unschedulable (the scheduler places no new pods there;
pods already on it stay), ``uncordon`` undoes it. ``taint NODE key=value:Effect`` adds
or (``--overwrite``) changes a taint, ``key:Effect-`` removes one, ``key-`` removes every
taint with that key. Effects: NoSchedule, PreferNoSchedule, NoExecute. Each writes the
node with its resourceVersion as a precondition, retrying on a conflict, so a node
agent's concurrent status writes are never lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from actors.client import ApiClient, Conflict

from . import session, targets

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TAINT = re.compile(
    r"^(?P<key>[^=:\s]*?[^=:\s-])(=(?P<value>[^:\s]*))?(:(?P<effect>[A-Za-z]+))?(?P<remove>-)?$"
)
ATTEMPTS = 5


async def update_node(api: ApiClient, name: str, change: Callable[[Any], bool]) -> bool:
    """Apply ``change`` to the latest node and write it; False if nothing changed."""
    for _ in range(ATTEMPTS):
        node = await api.get("nodes", name)
        if not change(node):
            return False
        try:
            await api.update(node)
            return True
        except Conflict:
            continue
    raise session.UsageProblem(f"node {name} kept changing; try again")


def _cordon_command(verb: str, unschedulable: bool) -> click.Command:
    done = "cordoned" if unschedulable else "uncordoned"

    @click.command(verb)
    @click.argument("nodes", nargs=-1, required=True)
    @click.option("-l", "--selector", default="", help="Act on the nodes with these labels.")
    @session.common_options
    def command(
        nodes: tuple[str, ...],
        selector: str,
        server: str | None,
        cluster: str | None,
        verbose: bool,
        dir_: str | None,
    ) -> None:
        options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

        async def run(api: ApiClient) -> None:
            names = list(nodes)
            if selector:
                names += [
                    n.metadata.name
                    for n in (await api.list_all("nodes", label_selector=selector)).items
                ]
            for name in names:

                def change(node: Any) -> bool:
                    if node.spec.unschedulable == unschedulable:
                        return False
                    node.spec.unschedulable = unschedulable
                    return True

                changed = await update_node(api, name, change)
                click.echo(f"node/{name} {done}" if changed else f"node/{name} already {done}")

        session.run(options, run)

    command.help = (
        "Mark nodes unschedulable (pods already there stay)."
        if unschedulable
        else "Mark nodes schedulable again."
    )
    return command


cordon = _cordon_command("cordon", True)
uncordon = _cordon_command("uncordon", False)


def parse_taints(
    specs: tuple[str, ...],
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """``key=value:Effect`` to add and ``key[:Effect]-`` to remove (effect "" = any)."""
    add: list[tuple[str, str, str]] = []
    remove: list[tuple[str, str]] = []
    for spec in specs:
        m = _TAINT.match(spec)
        if m is None:
            raise session.UsageProblem(
                f"invalid taint spec: {spec!r} (use key=value:Effect or key:Effect-)"
            )
        effect = m["effect"] or ""
        if effect and effect not in EFFECTS:
            raise session.UsageProblem(
                f"invalid taint effect: {effect}, unsupported taint effect (allowed: {', '.join(EFFECTS)})"
            )
        if m["remove"]:
            remove.append((m["key"], effect))
        else:
            if not effect:
                raise session.UsageProblem(
                    f"invalid taint spec: {spec!r}: the effect is required (e.g. :NoSchedule)"
                )
            add.append((m["key"], m["value"] or "", effect))
    return add, remove


@click.command("taint")
@click.argument("args", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Allow changing the value of an existing taint.")
@session.common_options
def taint(
    args: tuple[str, ...],
    overwrite: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Add or remove node taints: raftsman taint nodes n1 dedicated=gpu:NoSchedule, ... key-."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> None:
        specs = tuple(a for a in args if ":" in a or a.endswith("-") or "=" in a)
        resource_args = tuple(a for a in args if a not in specs)
        if not specs:
            raise session.UsageProblem("at least one taint update is required")
        add, remove = parse_taints(specs)
        for target in await targets.resolve(api, resource_args, namespace="", verb="taint"):
            if target.info.kind != "Node":
                raise session.UsageProblem(f"taints apply to nodes, not {target.info.resource}")

            def change(node: Any) -> bool:
                taints = node.spec.taints
                changed = False
                for key, effect in remove:
                    keep = [
                        t
                        for t in taints
                        if not (t.key == key and (not effect or t.effect == effect))
                    ]
                    if len(keep) == len(taints):
                        raise session.UsageProblem(
                            f'taint "{key}{":" + effect if effect else ""}" not found'
                        )
                    copies = [type(t)() for t in keep]
                    for c, t in zip(copies, keep, strict=True):
                        c.CopyFrom(t)
                    del taints[:]
                    taints.extend(copies)
                    changed = True
                for key, value, effect in add:
                    existing = [t for t in taints if t.key == key and t.effect == effect]
                    if existing:
                        if existing[0].value == value:
                            continue
                        if not overwrite:
                            raise session.UsageProblem(
                                f"node {node.metadata.name} already has {key} taint(s) with same "
                                f"effect(s) and --overwrite is false"
                            )
                        existing[0].value = value
                    else:
                        taints.add(key=key, value=value, effect=effect)
                    changed = True
                return changed

            changed = await update_node(api, target.name, change)
            verb = "untainted" if remove and not add else "tainted"
            click.echo(
                f"node/{target.name} {verb}" if changed else f"node/{target.name} not modified"
            )

    session.run(options, run)
