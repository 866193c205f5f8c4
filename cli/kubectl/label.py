"""``raftsman label`` and ``raftsman annotate``: set (``key=value``) or remove (``key-``)
labels or annotations, with kubectl's rules.

* Changing a key that already has a different value needs ``--overwrite``; without it
  the object is left alone and the error says which key and value
  (``'app' already has a value (web), and --overwrite is false``).
* ``--resource-version`` makes the change conditional on the object not having changed.
* Each object prints ``pod/web labeled`` (``annotated``), or ``not labeled`` when
  nothing had to change. The change is one merge patch per object, so a concurrent
  writer's other fields are never overwritten.
"""

from __future__ import annotations

import re
from typing import Any

import click

from actors.client import ApiClient, ApiError, Unreachable

from . import session, targets

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def parse_changes(items: tuple[str, ...], what: str) -> tuple[dict[str, str], list[str]]:
    """``key=value`` and ``key-`` arguments as (to set, to remove)."""
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    for item in items:
        if item.endswith("-") and "=" not in item:
            key = item[:-1]
            if not _KEY.match(key):
                raise session.UsageProblem(f"invalid {what} key {key!r} in {item!r}")
            to_remove.append(key)
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise session.UsageProblem(
                f"invalid {what} spec {item!r}: use KEY=VALUE to set or KEY- to remove"
            )
        if not _KEY.match(key):
            raise session.UsageProblem(f"invalid {what} key {key!r} in {item!r}")
        to_set[key] = value
    both = set(to_set) & set(to_remove)
    if both:
        raise session.UsageProblem(
            f"can not both modify and remove the {what} key(s) {sorted(both)}"
        )
    return to_set, to_remove


def split_args(args: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Resource arguments first, then the changes (those with ``=`` or ending in ``-``)."""
    for i, arg in enumerate(args):
        if "=" in arg or (arg.endswith("-") and i > 0):
            return args[:i], args[i:]
    return args, ()


def _meta_command(field: str, verb: str, past: str) -> click.Command:
    what = "label" if field == "labels" else "annotation"

    @click.command(verb)
    @click.argument("args", nargs=-1)
    @click.option("-n", "--namespace", default="default", show_default=True)
    @click.option("-l", "--selector", default="", help="Act on the objects with these labels.")
    @click.option("--all", "all_", is_flag=True, help="Act on every object of the kind.")
    @click.option("--overwrite", is_flag=True, help=f"Allow changing an existing {what}.")
    @click.option("--resource-version", default="", help="Only if the object is at this version.")
    @session.common_options
    def command(
        args: tuple[str, ...],
        namespace: str,
        selector: str,
        all_: bool,
        overwrite: bool,
        resource_version: str,
        server: str | None,
        cluster: str | None,
        verbose: bool,
        dir_: str | None,
    ) -> None:
        options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
        resource_args, change_args = split_args(args)

        async def run(api: ApiClient) -> bool:
            if not change_args:
                raise session.UsageProblem(f"at least one {what} update is required")
            to_set, to_remove = parse_changes(change_args, what)
            ok = True
            for target in await targets.resolve(
                api, resource_args, namespace=namespace, selector=selector, all_=all_, verb=verb
            ):
                try:
                    obj = await api.get(target.info, target.name, namespace=target.namespace)
                    current = dict(getattr(obj.metadata, field))
                    if not overwrite:
                        for key, value in to_set.items():
                            if key in current and current[key] != value:
                                raise session.UsageProblem(
                                    f"'{key}' already has a value ({current[key]}), and --overwrite is false"
                                )
                    patch: dict[str, Any] = {k: v for k, v in to_set.items() if current.get(k) != v}
                    patch.update({k: None for k in to_remove if k in current})
                    if not patch:
                        click.echo(f"{target.display} not {past}")
                        continue
                    meta: dict[str, Any] = {field: patch}
                    if resource_version:
                        meta["resourceVersion"] = resource_version
                    await api.patch_merge(
                        target.info, target.name, {"metadata": meta}, namespace=target.namespace
                    )
                    click.echo(f"{target.display} {past}")
                except Unreachable:
                    raise
                except ApiError as exc:
                    click.echo(session.server_error(exc), err=True)
                    ok = False
                except session.UsageProblem as exc:
                    click.echo(f"error: {exc}", err=True)
                    ok = False
            return ok

        session.run(options, run)

    command.help = (
        f"Update the {field} of objects: raftsman {verb} pods web app=v2 tier-  "
        f"(KEY=VALUE sets, KEY- removes; --overwrite to change an existing one)."
    )
    return command


label = _meta_command("labels", "label", "labeled")
annotate = _meta_command("annotations", "annotate", "annotated")
