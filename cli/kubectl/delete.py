"""``raftsman delete``: by manifest (``-f``), by name, by label (``-l``) or ``--all``.

Prints ``pod "web" deleted`` per object, as kubectl does. A pod bound to a node is
deleted gracefully (the server holds it for its grace period while the node stops it);
``--grace-period=0`` deletes at once.
"""

from __future__ import annotations

import click

from actors.client import ApiClient, ApiError, NotFound, Unreachable
from proto.k8s import kinds
from proto.k8s.kinds import KindInfo

from . import manifests, resources, session
from .get import not_found
from .resources import display


@click.command("delete")
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-")
@click.option("-R", "--recursive", is_flag=True, help="Read directories recursively.")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-l", "--selector", default="", help="Delete the objects with these labels.")
@click.option("--all", "all_", is_flag=True, help="Delete every object of the kind.")
@click.option("--ignore-not-found", is_flag=True, help="A missing object is not an error.")
@click.option("--grace-period", type=int, default=-1, help="Seconds; 0 deletes at once.")
@click.option("--cascade", type=click.Choice(["background", "foreground", "orphan"]),
              default="background", show_default=True)  # fmt: skip
@session.common_options
def delete(
    args: tuple[str, ...],
    filenames: tuple[str, ...],
    recursive: bool,
    namespace: str,
    selector: str,
    all_: bool,
    ignore_not_found: bool,
    grace_period: int,
    cascade: str,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Delete objects: delete -f FILE, delete pod web, delete deploy -l app=web, --all."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
    grace = None if grace_period < 0 else grace_period
    policy = cascade.capitalize()

    async def run(api: ApiClient) -> bool:
        targets: list[tuple[KindInfo, str, str]] = []
        if filenames:
            for item in manifests.read(filenames, recursive=recursive):
                info = kinds.by_message(item.obj)
                ns = item.obj.metadata.namespace or namespace
                targets.append((info, ns, item.obj.metadata.name))
        else:
            for request in resources.parse(args):
                if request.names:
                    targets += [(request.info, namespace, n) for n in request.names]
                elif selector or all_:
                    page = await api.list_all(
                        request.info, namespace=namespace, label_selector=selector
                    )
                    targets += [
                        (request.info, o.metadata.namespace, o.metadata.name) for o in page.items
                    ]
                else:
                    raise session.UsageProblem(
                        "resource(s) were provided, but no name was specified "
                        "(use -l or --all to delete many)"
                    )
            if not targets and (selector or all_):
                click.echo("No resources found", err=True)
        ok = True
        for info, ns, name in targets:
            try:
                await api.delete(
                    info, name, namespace=ns, grace_period_seconds=grace, propagation_policy=policy
                )
            except Unreachable:
                raise
            except NotFound:
                if not ignore_not_found:
                    click.echo(session.server_error(not_found(info, name)), err=True)
                    ok = False
                continue
            except ApiError as exc:
                click.echo(session.server_error(exc), err=True)
                ok = False
                continue
            click.echo(f'{display(info)} "{name}" deleted')
        return ok

    session.run(options, run)
