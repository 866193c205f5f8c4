"""``raftsman logs``: a container's log, as ``kubectl logs`` prints it.

The API server relays the request to the node agent of the pod's node
(:mod:`actors.apiserver.proxy`), which reads the container's log files. Lines are written
to stdout as they arrive; with ``-f`` until the container exits or Ctrl-C (exit 130).
Without ``-c`` on a pod with several containers, the default container is used and
named on stderr (``Defaulted container "app" out of: app, sidecar``), as kubectl does.
"""

from __future__ import annotations

import sys
from contextlib import aclosing

import click

from actors.client import ApiClient

from . import podref, session
from .durations import parse_duration

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def pod_name(argument: str) -> str:
    """``web-1`` or ``pod/web-1`` (``po/``, ``pods/``) to the pod's name."""
    name = podref.pod_name(argument)
    if name is None:
        raise session.UsageProblem(f"{argument!r} does not name a pod")
    return name


async def default_container_note(api: ApiClient, name: str, namespace: str) -> None:
    """kubectl's stderr note when a pod with several containers is given no ``-c``."""
    pod = await api.get("pods", name, namespace=namespace)
    names = [c.name for c in pod.spec.containers]
    annotated = pod.metadata.annotations.get(DEFAULT_CONTAINER_ANNOTATION, "")
    if len(names) > 1 and not annotated:
        click.echo(f'Defaulted container "{names[0]}" out of: {", ".join(names)}', err=True)


@click.command("logs")
@click.argument("pod", required=False, default="")
@click.option("-l", "--selector", default="", help="Logs of every pod with these labels.")
@click.option("--prefix", is_flag=True, help="Start each line with [pod/NAME/CONTAINER].")
@click.option("-c", "--container", default="", help="The container (default: the first).")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until it exits.")
@click.option("-p", "--previous", is_flag=True, help="The previous instance (before a restart).")
@click.option("--tail", default=-1, show_default=True, help="Only the last N lines (-1: all).")
@click.option("--timestamps", is_flag=True, help="Start each line with its RFC 3339 time.")
@click.option("--since", default="", metavar="DURATION", help="Only lines newer than 5s, 2m, 3h.")
@click.option("--since-time", default="", metavar="RFC3339", help="Only lines at or after it.")
@click.option("--limit-bytes", type=int, default=None, help="Stop after N bytes.")
@session.common_options
def logs(
    pod: str,
    selector: str,
    prefix: bool,
    container: str,
    namespace: str,
    follow: bool,
    previous: bool,
    tail: int,
    timestamps: bool,
    since: str,
    since_time: str,
    limit_bytes: int | None,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Print a container's log: raftsman logs POD|deploy/NAME|-l SELECTOR [-c C] [-f] [--previous] [--tail N]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
    since_seconds = None
    if since:
        if since_time:
            raise click.UsageError("give --since or --since-time, not both")
        try:
            since_seconds = max(1, int(-(-parse_duration(since) // 1)))  # round up
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    if limit_bytes is not None and limit_bytes <= 0:
        raise click.BadParameter("must be a positive number of bytes", param_hint="--limit-bytes")
    out = sys.stdout.buffer

    async def one(api: ApiClient, name: str, label: str) -> None:
        chunks = api.logs(
            name,
            namespace=namespace,
            container=container,
            follow=follow,
            previous=previous,
            tail_lines=None if tail < 0 else tail,
            timestamps=timestamps,
            since_seconds=since_seconds,
            since_time=since_time,
            limit_bytes=limit_bytes,
        )
        pending = b""
        async with aclosing(chunks):
            async for chunk in chunks:
                if not label:
                    out.write(chunk)
                    out.flush()
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    out.write(label.encode() + line + b"\n")
                out.flush()
        if pending:
            out.write(label.encode() + pending + b"\n")
            out.flush()

    async def run(api: ApiClient) -> None:
        if bool(pod) == bool(selector):
            raise session.UsageProblem("name one pod (POD or KIND/NAME) or give -l SELECTOR")
        if selector:
            pods = (await api.list_all("pods", namespace=namespace, label_selector=selector)).items
            if not pods:
                click.echo(f"No resources found in {namespace} namespace.", err=True)
                return
            for p in sorted(pods, key=lambda p: p.metadata.name):
                label = (
                    f"[pod/{p.metadata.name}/{container or p.spec.containers[0].name}] "
                    if prefix
                    else ""
                )
                await one(api, p.metadata.name, label)
            return
        name = await podref.resolve_pod(api, pod, namespace)
        if not container:
            await default_container_note(api, name, namespace)
        await one(api, name, f"[pod/{name}/{container or '-'}] " if prefix else "")

    try:
        session.run(options, run)
    except KeyboardInterrupt:
        sys.exit(130)
