"""``raftsman scale KIND/NAME --replicas=N``: set spec.replicas of a Deployment or
ReplicaSet, optionally only if it currently has ``--current-replicas``. Prints
``deployment.apps/web scaled``."""

from __future__ import annotations

import click

from actors.client import ApiClient

from . import session, targets

SCALABLE = ("Deployment", "ReplicaSet")


@click.command("scale")
@click.argument("args", nargs=-1)
@click.option("--replicas", type=click.IntRange(min=0), required=True, help="The new count.")
@click.option("--current-replicas", type=int, default=None, help="Only if it has this many now.")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-l", "--selector", default="", help="Scale the objects with these labels.")
@click.option("--all", "all_", is_flag=True, help="Scale every object of the kind.")
@session.common_options
def scale(
    args: tuple[str, ...],
    replicas: int,
    current_replicas: int | None,
    namespace: str,
    selector: str,
    all_: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Set the replica count: raftsman scale deploy/web --replicas=5."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> None:
        found = await targets.resolve(
            api, args, namespace=namespace, selector=selector, all_=all_, verb="scale"
        )
        for target in found:
            if target.info.kind not in SCALABLE:
                raise session.UsageProblem(
                    f"cannot scale {target.display}: only {' and '.join(SCALABLE)} objects have replicas"
                )
        for target in found:
            meta: dict[str, str] = {}
            if current_replicas is not None:
                obj = await api.get(target.info, target.name, namespace=target.namespace)
                have = obj.spec.replicas
                if have != current_replicas:
                    raise session.UsageProblem(
                        f"expected replicas to be {current_replicas}, was {have}"
                    )
                meta["resourceVersion"] = str(obj.metadata.resource_version)
            body: dict[str, object] = {"spec": {"replicas": replicas}}
            if meta:
                body["metadata"] = meta
            await api.patch_merge(target.info, target.name, body, namespace=target.namespace)
            click.echo(f"{target.display} scaled")

    session.run(options, run)
