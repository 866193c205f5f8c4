"""``raftsman delete``: by manifest (``-f``), by name, by label (``-l``) or ``--all``.

As kubectl, it waits (``--wait``, the default) until objects held by finalizers or a
grace period -- a pod whose node agent is stopping it -- are really gone;
``--no-wait`` returns at once.

Prints ``pod "web" deleted`` per object, as kubectl does. A pod bound to a node is
deleted gracefully (the server holds it for its grace period while the node stops it);
``--grace-period=0`` deletes at once.
"""

from __future__ import annotations

import math

import click
import trio

from actors.client import ApiClient, ApiError, NotFound, Unreachable
from proto.k8s import kinds
from proto.k8s.kinds import KindInfo

from . import manifests, resources, session
from .durations import DURATION
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
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Return only once the objects are gone (finalizers, grace periods).")  # fmt: skip
@click.option(
    "--timeout", type=DURATION, default=0, help="How long --wait waits: 30s, 5m (0: no limit)."
)
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
    wait: bool,
    timeout: float,
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
        pending: list[tuple[KindInfo, str, str, str]] = []
        for info, ns, name in targets:
            try:
                deleted = await api.delete(
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
            if deleted.pending:
                pending.append((info, ns, name, deleted.object.metadata.uid))
        if wait and pending:
            ok = await _wait_gone(api, pending, timeout) and ok
        return ok

    session.run(options, run)


async def _wait_gone(
    api: ApiClient, pending: list[tuple[KindInfo, str, str, str]], timeout: float
) -> bool:
    """Poll until each object (by uid) is gone; False, naming the rest, after ``timeout``."""
    deadline = math.inf if timeout <= 0 else trio.current_time() + timeout
    left = list(pending)
    while left:
        still = []
        for info, ns, name, uid in left:
            try:
                current = await api.get(info, name, namespace=ns)
            except NotFound:
                continue
            if current.metadata.uid == uid:
                still.append((info, ns, name, uid))
        left = still
        if not left:
            return True
        if trio.current_time() > deadline:
            names = ", ".join(f'{display(i)} "{n}"' for i, _, n, _ in left)
            click.echo(
                f"error: timed out after {timeout:g}s waiting for {names} to be gone", err=True
            )
            return False
        await trio.sleep(0.2)  # polling the server: a deletion has no single event to await
    return True
