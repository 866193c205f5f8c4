"""``raftsman set image|env``: change container images and environment variables.

Both work on every kind with a pod template (Deployment, ReplicaSet, DaemonSet, Job,
CronJob's jobTemplate) and on Pods, on init and app containers alike. A change is
read-modify-write with the resourceVersion read as the precondition (a merge patch would
replace the whole container list), retried on a conflict; nothing is written when
nothing changes.

``set image KIND/NAME CONTAINER=IMAGE ...``: ``*=IMAGE`` sets every container; a name
that matches no container is an error listing the container names. Prints
``deployment.apps/web image updated``.

``set env KIND/NAME KEY=VALUE ... KEY- ...``, as kubectl: ``KEY-`` removes a variable,
``--from configmap/NAME`` (or ``secret/NAME``) adds one variable per key of it as a
``valueFrom`` reference (``--prefix`` prepends to the names), ``-c`` picks containers by
name (shell pattern, default every container), ``--overwrite=false`` refuses to change a
variable that exists, and ``--list`` prints the variables instead of changing them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import click

from actors.client import ApiClient, Conflict, NotFound

from . import session, targets

ATTEMPTS = 5


def pod_spec(obj: Any) -> Any:
    """The pod spec inside ``obj`` (a Pod's own, a template's, a CronJob's job's)."""
    kind = type(obj).DESCRIPTOR.name
    if kind == "Pod":
        return obj.spec
    if kind == "CronJob":
        return obj.spec.job_template.spec.template.spec
    if hasattr(obj.spec, "template"):
        return obj.spec.template.spec
    raise session.UsageProblem(f"{kind} has no containers")


def set_images(spec: Any, images: dict[str, str]) -> bool:
    """Apply ``images`` (container name or ``*`` -> image); True if anything changed."""
    containers = [*spec.init_containers, *spec.containers]
    names = [c.name for c in containers]
    unknown = [n for n in images if n != "*" and n not in names]
    if unknown:
        raise session.UsageProblem(
            f"unable to find container named {unknown[0]!r} (containers: {', '.join(names)})"
        )
    changed = False
    for c in containers:
        image = images.get(c.name, images.get("*"))
        if image is not None and c.image != image:
            c.image = image
            changed = True
    return changed


@click.group("set")
def set_() -> None:
    """Change specific fields of objects: raftsman set image deploy/web main=nginx:1.27."""


@set_.command("image")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-l", "--selector", default="", help="Act on the objects with these labels.")
@click.option("--all", "all_", is_flag=True)
@session.common_options
def image(
    args: tuple[str, ...],
    namespace: str,
    selector: str,
    all_: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Set container images: raftsman set image deploy/web main=busybox:1.36 [*=IMAGE]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
    resource_args = tuple(a for a in args if "=" not in a)
    pairs = [a for a in args if "=" in a]

    async def run(api: ApiClient) -> None:
        if not pairs:
            raise session.UsageProblem("at least one image update is required (CONTAINER=IMAGE)")
        images: dict[str, str] = {}
        for pair in pairs:
            name, _, img = pair.partition("=")
            if not name or not img:
                raise session.UsageProblem(f"invalid image update {pair!r}: use CONTAINER=IMAGE")
            images[name] = img
        found = await targets.resolve(
            api, resource_args, namespace=namespace, selector=selector, all_=all_, verb="update"
        )
        for target in found:
            await _update(api, target, lambda obj: set_images(pod_spec(obj), images))
            click.echo(f"{target.display} image updated")

    session.run(options, run)


async def _update(api: ApiClient, target: targets.Target, change: Callable[[Any], bool]) -> None:
    """Read ``target``, apply ``change`` to it and write it back if it changed anything,
    with the read resourceVersion as the precondition (retried on a conflict)."""
    for _ in range(ATTEMPTS):
        obj = await api.get(target.info, target.name, namespace=target.namespace)
        if not change(obj):
            return
        try:
            await api.update(obj)
            return
        except Conflict:
            continue
    raise session.UsageProblem(f"{target.display} kept changing; try again")


# ---------------------------------------------------------------------- set env


def parse_env_args(pairs: list[str]) -> tuple[dict[str, str], list[str]]:
    """``KEY=VALUE`` and ``KEY-`` arguments: (variables to set, names to remove)."""
    sets: dict[str, str] = {}
    removes: list[str] = []
    for pair in pairs:
        if "=" in pair:
            name, _, value = pair.partition("=")
            if not name:
                raise session.UsageProblem(f"invalid environment variable {pair!r}: use KEY=VALUE")
            sets[name] = value
        elif pair.endswith("-") and len(pair) > 1:
            removes.append(pair[:-1])
        else:
            raise session.UsageProblem(
                f"invalid environment variable {pair!r}: use KEY=VALUE to set, KEY- to remove"
            )
    return sets, removes


def selected_containers(spec: Any, pattern: str) -> list[Any]:
    """The containers (init, then app) whose names match the shell pattern ``pattern``."""
    containers = [*spec.init_containers, *spec.containers]
    chosen = [c for c in containers if fnmatch.fnmatchcase(c.name, pattern)]
    if not chosen:
        names = ", ".join(c.name for c in containers)
        raise session.UsageProblem(f"no container matches {pattern!r} (containers: {names})")
    return chosen


def set_env(
    containers: list[Any],
    values: dict[str, str],
    refs: dict[str, tuple[str, str, str]],
    removes: list[str],
    *,
    overwrite: bool,
) -> bool:
    """Set ``values`` (name -> value) and ``refs`` (name -> (kind, object, key), kind
    ``configmap`` or ``secret``), then remove ``removes``; True if anything changed."""
    changed = False
    for container in containers:
        for name in (*values, *refs):
            existing = next((e for e in container.env if e.name == name), None)
            if existing is None:
                existing = container.env.add(name=name)
            elif not overwrite:
                raise session.UsageProblem(
                    f"container {container.name!r} already has {name}; "
                    "use --overwrite to replace it"
                )
            before = existing.SerializeToString(deterministic=True)
            existing.ClearField("value")
            existing.ClearField("value_from")
            if name in values:
                existing.value = values[name]
            else:
                kind, source, key = refs[name]
                ref = (
                    existing.value_from.config_map_key_ref
                    if kind == "configmap"
                    else existing.value_from.secret_key_ref
                )
                ref.name = source
                ref.key = key
            changed |= existing.SerializeToString(deterministic=True) != before
        for index in reversed(range(len(container.env))):
            if container.env[index].name in removes:
                del container.env[index]
                changed = True
    return changed


def describe_env(display: str, containers: list[Any]) -> str:
    """``--list``: each container's variables as kubectl prints them."""
    lines: list[str] = []
    for container in containers:
        lines.append(f"# {display}, container {container.name}")
        for env in container.env:
            source = env.value_from
            if env.HasField("value_from"):
                if source.HasField("config_map_key_ref"):
                    ref = source.config_map_key_ref
                    lines.append(f"# {env.name} from configmap {ref.name}, key {ref.key}")
                elif source.HasField("secret_key_ref"):
                    ref = source.secret_key_ref
                    lines.append(f"# {env.name} from secret {ref.name}, key {ref.key}")
                elif source.HasField("field_ref"):
                    lines.append(f"# {env.name} from field path {source.field_ref.field_path}")
                else:
                    lines.append(f"# {env.name} from a source")
            else:
                lines.append(f"{env.name}={env.value}")
        for env_from in container.env_from:
            if env_from.HasField("config_map_ref"):
                lines.append(f"# env from configmap {env_from.config_map_ref.name}")
            elif env_from.HasField("secret_ref"):
                lines.append(f"# env from secret {env_from.secret_ref.name}")
    return "\n".join(lines)


async def _source_refs(
    api: ApiClient, source: str, namespace: str, prefix: str
) -> dict[str, tuple[str, str, str]]:
    """``--from configmap/NAME|secret/NAME``: one reference per key of that object."""
    kind, _, name = source.partition("/")
    kinds = {"configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap"}
    kinds |= {"secret": "Secret", "secrets": "Secret"}
    if kind.lower() not in kinds or not name:
        raise session.UsageProblem(f"invalid --from {source!r}: use configmap/NAME or secret/NAME")
    api_kind = kinds[kind.lower()]
    try:
        obj = await api.get(api_kind, name, namespace=namespace)
    except NotFound:
        raise session.UsageProblem(
            f'{api_kind.lower()} "{name}" not found in namespace "{namespace}"'
        ) from None
    keys = sorted({*obj.data, *getattr(obj, "binary_data", {})})
    short = "configmap" if api_kind == "ConfigMap" else "secret"
    refs: dict[str, tuple[str, str, str]] = {}
    for key in keys:
        variable = prefix + key.upper().replace("-", "_").replace(".", "_")
        refs[variable] = (short, name, key)
    return refs


@set_.command("env")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-l", "--selector", default="", help="Act on the objects with these labels.")
@click.option("--all", "all_", is_flag=True)
@click.option(
    "-c", "--containers", default="*", show_default=True, help="Containers to change (pattern)."
)
@click.option(
    "--from", "from_", default="", metavar="KIND/NAME", help="configmap/NAME or secret/NAME."
)
@click.option("--prefix", default="", help="Prefix for the names of variables from --from.")
@click.option("--overwrite/--no-overwrite", default=True, show_default=True)
@click.option("--list", "list_", is_flag=True, help="Print the variables instead.")
@session.common_options
def env(
    args: tuple[str, ...],
    namespace: str,
    selector: str,
    all_: bool,
    containers: str,
    from_: str,
    prefix: str,
    overwrite: bool,
    list_: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Set environment variables: raftsman set env deploy/web LOG=debug OLD- [--from cm/NAME]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
    resource_args = tuple(a for a in args if "=" not in a and not _is_removal(a))
    pairs = [a for a in args if a not in resource_args]

    async def run(api: ApiClient) -> None:
        values, removes = parse_env_args(pairs)
        if list_:
            if pairs or from_:
                raise session.UsageProblem("--list takes no KEY=VALUE, KEY- or --from")
        elif not pairs and not from_:
            raise session.UsageProblem(
                "at least one environment variable change is required (KEY=VALUE, KEY- or --from)"
            )
        found = await targets.resolve(
            api, resource_args, namespace=namespace, selector=selector, all_=all_, verb="update"
        )
        for target in found:
            if list_:
                obj = await api.get(target.info, target.name, namespace=target.namespace)
                chosen = selected_containers(pod_spec(obj), containers)
                click.echo(describe_env(target.display, chosen))
                continue
            refs = await _source_refs(api, from_, target.namespace, prefix) if from_ else {}

            def change(obj: Any, refs: dict[str, tuple[str, str, str]] = refs) -> bool:
                chosen = selected_containers(pod_spec(obj), containers)
                return set_env(chosen, values, refs, removes, overwrite=overwrite)

            await _update(api, target, change)
            click.echo(f"{target.display} env updated")

    session.run(options, run)


def _is_removal(arg: str) -> bool:
    """``KEY-``: a variable to remove (object names never end with ``-``)."""
    return len(arg) > 1 and arg.endswith("-")
