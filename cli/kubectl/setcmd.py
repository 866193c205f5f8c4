"""``raftsman set image KIND/NAME CONTAINER=IMAGE ...``: change container images.

Works on every kind with a pod template (Deployment, ReplicaSet, DaemonSet, Job,
CronJob's jobTemplate) and on Pods. ``*=IMAGE`` sets every container. A name that
matches no container (init or app) is an error listing the container names, and nothing
is written. The change is read-modify-write with the resourceVersion read as the
precondition (a merge patch would replace the whole container list). Prints
``deployment.apps/web image updated``.
"""

from __future__ import annotations

from typing import Any

import click

from actors.client import ApiClient, Conflict

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
            for _ in range(ATTEMPTS):
                obj = await api.get(target.info, target.name, namespace=target.namespace)
                if not set_images(pod_spec(obj), images):
                    break
                try:
                    await api.update(obj)
                    break
                except Conflict:
                    continue
            else:
                raise session.UsageProblem(f"{target.display} kept changing; try again")
            click.echo(f"{target.display} image updated")

    session.run(options, run)
