"""``raftsman drain NODE``: cordon the node, then evict its pods and wait until they are gone.

As kubectl does, drain refuses (and changes nothing but the cordon) when the node holds
pods it cannot safely evict, and says which and which flag allows it:

* pods owned by a DaemonSet: the DaemonSet would recreate them on the node at once --
  ``--ignore-daemonsets`` skips them;
* pods with emptyDir volumes lose that data -- ``--delete-emptydir-data``;
* pods no controller owns would not come back -- ``--force``.

Pods that already finished (Succeeded / Failed) are deleted without ceremony. Eviction
is a graceful delete (``--grace-period``, default: each pod's own); drain then waits,
printing ``pod/NAME evicted`` as each disappears, up to ``--timeout``.
"""

from __future__ import annotations

import math
from typing import Any

import click
import trio

from actors.client import ApiClient, NotFound

from . import session
from .durations import DURATION
from .nodes import update_node

POLL = 0.2


def classify(
    pods: list[Any], *, ignore_daemonsets: bool, delete_emptydir_data: bool, force: bool
) -> tuple[list[Any], list[str], list[str]]:
    """(pods to evict, warnings, errors) for the pods on a node."""
    evict: list[Any] = []
    warnings: list[str] = []
    problems: dict[str, list[str]] = {}
    for pod in pods:
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        owner = next((o for o in pod.metadata.owner_references if o.controller), None)
        finished = pod.status.phase in ("Succeeded", "Failed")
        if owner is not None and owner.kind == "DaemonSet" and not finished:
            if ignore_daemonsets:
                warnings.append(f"ignoring DaemonSet-managed Pods: {key}")
                continue
            problems.setdefault(
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)", []
            ).append(key)
            continue
        if owner is None and not finished and not force:
            problems.setdefault(
                "cannot delete Pods that declare no controller (use --force to override)", []
            ).append(key)
            continue
        if (
            any(v.HasField("empty_dir") for v in pod.spec.volumes)
            and not finished
            and not delete_emptydir_data
        ):
            problems.setdefault(
                "cannot delete Pods with local storage (use --delete-emptydir-data to override)", []
            ).append(key)
            continue
        if owner is None and force:
            warnings.append(f"deleting Pods that declare no controller: {key}")
        evict.append(pod)
    errors = [f"{what}: {', '.join(keys)}" for what, keys in problems.items()]
    return evict, warnings, errors


@click.command("drain")
@click.argument("node")
@click.option("--ignore-daemonsets", is_flag=True, help="Leave DaemonSet-managed pods in place.")
@click.option("--delete-emptydir-data", is_flag=True, help="Evict pods with emptyDir volumes.")
@click.option("--force", is_flag=True, help="Also evict pods no controller owns.")
@click.option("--grace-period", type=int, default=-1, help="Seconds (default: each pod's own).")
@click.option(
    "--timeout", type=DURATION, default=0, help="How long to wait: 30s, 5m (0: no limit)."
)
@session.common_options
def drain(
    node: str,
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
    force: bool,
    grace_period: int,
    timeout: float,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Cordon a node and evict its pods: raftsman drain node-1 --ignore-daemonsets."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> bool:
        def cordon(n: Any) -> bool:
            if n.spec.unschedulable:
                return False
            n.spec.unschedulable = True
            return True

        if await update_node(api, node, cordon):
            click.echo(f"node/{node} cordoned")
        pods = (await api.list_all("pods", field_selector=f"spec.nodeName={node}")).items
        evict, warnings, errors = classify(
            pods,
            ignore_daemonsets=ignore_daemonsets,
            delete_emptydir_data=delete_emptydir_data,
            force=force,
        )
        if errors:
            click.echo(f"error: unable to drain node {node!r} due to error(s):", err=True)
            for error in errors:
                click.echo(f"  - {error}", err=True)
            click.echo(f"There are pending nodes to be drained:\n  {node}", err=True)
            return False
        if warnings:
            click.echo("Warning: " + "; ".join(warnings), err=True)
        grace = None if grace_period < 0 else grace_period
        for pod in evict:
            click.echo(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name}")
            try:
                await api.delete(
                    "pods",
                    pod.metadata.name,
                    namespace=pod.metadata.namespace,
                    grace_period_seconds=grace,
                    uid=pod.metadata.uid,
                )
            except NotFound:
                pass
        waiting = {(p.metadata.namespace, p.metadata.name, p.metadata.uid) for p in evict}
        deadline = math.inf if timeout <= 0 else trio.current_time() + timeout
        while waiting:
            for ns, name, uid in sorted(waiting):
                try:
                    current = await api.get("pods", name, namespace=ns)
                    gone = current.metadata.uid != uid
                except NotFound:
                    gone = True
                if gone:
                    click.echo(f"pod/{name} evicted")
                    waiting.discard((ns, name, uid))
            if not waiting:
                break
            if trio.current_time() > deadline:
                names = ", ".join(f"{ns}/{name}" for ns, name, _ in sorted(waiting))
                click.echo(
                    f"error: drain did not complete within {timeout:g}s; still waiting for: {names}",
                    err=True,
                )
                return False
            await trio.sleep(POLL)  # polling the server: deletions have no single event to await
        click.echo(f"node/{node} drained")
        return True

    session.run(options, run)
