"""``raftsman rollout status|history|undo|restart|pause|resume`` for Deployments.

``status`` watches the Deployment and prints kubectl's progress lines until the rollout
is complete (exit 0), its progress deadline is exceeded (exit 1), or ``--timeout`` passes
(exit 1)::

    Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...
    Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...
    Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...
    deployment "web" successfully rolled out

``history`` lists the revisions the Deployment's ReplicaSets carry (``--revision N``
prints that revision's pod template); ``undo [--to-revision N]`` copies an earlier
revision's template back (a rollback is itself a new revision); ``restart`` stamps the
template with ``kubectl.kubernetes.io/restartedAt`` so every pod is replaced by a rolling
update; ``pause`` / ``resume`` set ``spec.paused``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import click
import trio

from actors.client import ApiClient, Expired
from actors.controllers import podcontrol
from actors.controllers.deployment import rollout as revisions
from actors.controllers.deployment.rollback import RollbackError, rollback_template

from . import printers, session, targets
from .durations import DURATION

CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _condition(d: Any, type_: str) -> Any | None:
    for c in d.status.conditions:
        if c.type == type_:
            return c
    return None


def rollout_state(d: Any) -> tuple[bool, str]:
    """(done, message) for a Deployment, with kubectl's wording; raises
    :class:`session.UsageProblem` when its progress deadline was exceeded."""
    name = d.metadata.name
    if d.metadata.generation > d.status.observed_generation:
        return False, "Waiting for deployment spec update to be observed..."
    progressing = _condition(d, "Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        raise session.UsageProblem(f'deployment "{name}" exceeded its progress deadline')
    want = d.spec.replicas
    updated, replicas, available = (
        d.status.updated_replicas,
        d.status.replicas,
        d.status.available_replicas,
    )
    prefix = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return False, f"{prefix}{updated} out of {want} new replicas have been updated..."
    if replicas > updated:
        return False, f"{prefix}{replicas - updated} old replicas are pending termination..."
    if available < updated:
        return False, f"{prefix}{available} of {updated} updated replicas are available..."
    return True, f'deployment "{name}" successfully rolled out'


def _deployments(found: list[targets.Target]) -> list[targets.Target]:
    for target in found:
        if target.info.kind != "Deployment":
            raise session.UsageProblem(
                f"{target.display}: rollout works on deployments (got {target.info.resource})"
            )
    return found


@click.group("rollout")
def rollout() -> None:
    """Manage the rollout of a Deployment: status, history, undo, restart, pause, resume."""


def _options(**kw: Any) -> session.Options:
    return session.Options.of(
        server=kw["server"], cluster=kw["cluster"], verbose=kw["verbose"], dir_=kw["dir_"]
    )


@rollout.command("status")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-w", "--watch/--no-watch", default=True, help="Wait until the rollout finishes.")
@click.option(
    "--timeout", type=DURATION, default=0, help="How long to wait: 30s, 5m (0: no limit)."
)
@session.common_options
def status(args: tuple[str, ...], namespace: str, watch: bool, timeout: float, **kw: Any) -> None:
    """Wait for a rollout and report its progress: raftsman rollout status deploy/web."""

    async def run(api: ApiClient) -> bool:
        [target] = _deployments(await targets.resolve(api, args, namespace=namespace, verb="watch"))
        last = ""
        deadline = math.inf if timeout <= 0 else trio.current_time() + timeout
        with trio.move_on_at(deadline):
            d = await api.get(target.info, target.name, namespace=target.namespace)
            rv = str(d.metadata.resource_version)
            while True:
                done, message = rollout_state(d)
                if message != last:
                    click.echo(message)
                    last = message
                if done or not watch:
                    return done or not watch
                try:
                    async with api.watch(
                        target.info,
                        namespace=target.namespace,
                        resource_version=rv,
                        field_selector=f"metadata.name={target.name}",
                    ) as stream:
                        async for event in stream:
                            rv = event.resource_version or rv
                            if event.type.value in ("ADDED", "MODIFIED"):
                                d = event.object
                                break
                            if event.type.value == "DELETED":
                                raise session.UsageProblem(
                                    f'deployment "{target.name}" was deleted'
                                )
                except Expired:
                    d = await api.get(target.info, target.name, namespace=target.namespace)
                    rv = str(d.metadata.resource_version)
        click.echo(f"error: timed out waiting for the condition after {timeout:g}s", err=True)
        return False

    session.run(_options(**kw), run)


@rollout.command("history")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--revision", type=int, default=0, help="Show this revision's pod template.")
@session.common_options
def history(args: tuple[str, ...], namespace: str, revision: int, **kw: Any) -> None:
    """List a Deployment's revisions: raftsman rollout history deploy/web."""

    async def run(api: ApiClient) -> None:
        for target in _deployments(
            await targets.resolve(api, args, namespace=namespace, verb="show")
        ):
            d = await api.get(target.info, target.name, namespace=target.namespace)
            listed = await api.list_all("ReplicaSet", namespace=target.namespace)
            owned = [rs for rs in listed.items if podcontrol.is_owned_by(rs, d)]
            by_revision = sorted(
                (rs for rs in owned if revisions.revision(rs) > 0), key=revisions.revision
            )
            if revision:
                chosen = [rs for rs in by_revision if revisions.revision(rs) == revision]
                if not chosen:
                    raise session.UsageProblem(f"unable to find the specified revision {revision}")
                template = printers.manifest(chosen[0])["spec"]["template"]
                template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
                click.echo(f"{target.display} with revision #{revision}")
                click.echo("Pod Template:")
                click.echo(printers.to_yaml(template))
                continue
            click.echo(target.display)
            rows = [("REVISION", "CHANGE-CAUSE")]
            for rs in by_revision:
                cause = rs.metadata.annotations.get(CHANGE_CAUSE, "<none>")
                rows.append((str(revisions.revision(rs)), cause))
            click.echo(printers.render(rows))
            click.echo()

    session.run(_options(**kw), run)


@rollout.command("undo")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--to-revision", type=click.IntRange(min=0), default=0, help="0: the previous one.")
@session.common_options
def undo(args: tuple[str, ...], namespace: str, to_revision: int, **kw: Any) -> None:
    """Roll back to an earlier revision: raftsman rollout undo deploy/web [--to-revision=2]."""

    async def run(api: ApiClient) -> None:
        for target in _deployments(
            await targets.resolve(api, args, namespace=namespace, verb="undo")
        ):
            try:
                result = await rollback_template(
                    api, target.name, to_revision, namespace=target.namespace
                )
            except RollbackError as exc:
                raise session.UsageProblem(str(exc)) from None
            click.echo(result.message)

    session.run(_options(**kw), run)


@rollout.command("restart")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@session.common_options
def restart(args: tuple[str, ...], namespace: str, **kw: Any) -> None:
    """Replace every pod through a rolling update: raftsman rollout restart deploy/web."""

    async def run(api: ApiClient) -> None:
        stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for target in _deployments(
            await targets.resolve(api, args, namespace=namespace, verb="restart")
        ):
            patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
            await api.patch_merge(target.info, target.name, patch, namespace=target.namespace)
            click.echo(f"{target.display} restarted")

    session.run(_options(**kw), run)


def _pause_command(verb: str, paused: bool) -> click.Command:
    @rollout.command(verb)
    @click.argument("args", nargs=-1, required=True)
    @click.option("-n", "--namespace", default="default", show_default=True)
    @session.common_options
    def command(args: tuple[str, ...], namespace: str, **kw: Any) -> None:
        async def run(api: ApiClient) -> None:
            for target in _deployments(
                await targets.resolve(api, args, namespace=namespace, verb=verb)
            ):
                d = await api.get(target.info, target.name, namespace=target.namespace)
                if d.spec.paused == paused:
                    state = "paused" if paused else "not paused"
                    raise session.UsageProblem(
                        f'deployments.apps "{target.name}" is {"already " if paused else ""}{state}'
                    )
                await api.patch_merge(
                    target.info,
                    target.name,
                    {"spec": {"paused": paused}},
                    namespace=target.namespace,
                )
                click.echo(f"{target.display} {'paused' if paused else 'resumed'}")

        session.run(_options(**kw), run)

    command.help = (
        "Stop a Deployment's rollout where it is (scaling still applies)."
        if paused
        else "Continue a paused rollout."
    )
    return command


pause = _pause_command("pause", True)
resume = _pause_command("resume", False)
