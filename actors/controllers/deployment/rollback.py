"""``rollout undo``: put an earlier revision's pod template back into a Deployment.

Kubernetes dropped ``spec.rollbackTo`` (apps/v1 has no such field); ``kubectl rollout
undo`` rolls back on the client: it finds the Deployment's ReplicaSet carrying the wanted
``deployment.kubernetes.io/revision``, copies that ReplicaSet's pod template (minus its
``pod-template-hash`` label) into the Deployment and writes it with the resourceVersion it
read. The controller then sees a template equal to an existing ReplicaSet's, treats that
ReplicaSet as the new one, gives it the next revision number and rolls to it as to any
new template -- so a rollback is itself a new revision, and undoing twice toggles.

Differences from kubectl: kubectl replaces *all* annotations of the Deployment with the
ReplicaSet's ``deployment.kubernetes.io/*`` and ``last-applied-configuration`` ones; this
helper sets only those and keeps the Deployment's other annotations.

Errors are :class:`RollbackError` with kubectl's messages (paused Deployment, no history,
unknown revision); a concurrent change of the Deployment raises the client's
:class:`~actors.client.Conflict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.client import ApiClient

from .. import podcontrol
from . import rollout
from .hashing import POD_TEMPLATE_HASH_LABEL
from .sync import SKIPPED_ANNOTATIONS, equal_ignore_hash

__all__ = ["RollbackError", "RollbackResult", "rollback_template"]


class RollbackError(ValueError):
    """The rollback cannot be done as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class RollbackResult:
    """The Deployment as written (or as found, when ``skipped``) and the revision used."""

    deployment: Any
    revision: int
    skipped: bool
    """The template already was that revision's: nothing was written."""

    @property
    def message(self) -> str:
        name = self.deployment.metadata.name
        if self.skipped:
            return (
                f"deployment.apps/{name} skipped rollback "
                f"(current template already matches revision {self.revision})"
            )
        return f"deployment.apps/{name} rolled back"


async def rollback_template(
    api: ApiClient, deployment: Any | str, to_revision: int = 0, *, namespace: str = ""
) -> RollbackResult:
    """Roll ``deployment`` (a Deployment, or its name in ``namespace``) back to
    ``to_revision`` -- 0 means the revision before the current one.

    Reads the Deployment and its ReplicaSets from the API server (not from a cache).
    """
    if to_revision < 0:
        raise RollbackError(f"revision must be a non-negative integer, not {to_revision}")
    name = deployment if isinstance(deployment, str) else deployment.metadata.name
    ns = namespace if isinstance(deployment, str) else deployment.metadata.namespace
    d: Any = await api.get("Deployment", name, namespace=ns)
    if d.spec.paused:
        raise RollbackError(
            f"you cannot rollback a paused deployment; resume it first with "
            f"'raftsman rollout resume deployment/{name}' and try again"
        )
    listed = await api.list_all("ReplicaSet", namespace=ns)
    owned = [rs for rs in listed.items if podcontrol.is_owned_by(rs, d)]
    target = _replica_set_for_revision(name, owned, to_revision)
    revision = rollout.revision(target)
    if equal_ignore_hash(target.spec.template, d.spec.template):
        return RollbackResult(deployment=d, revision=revision, skipped=True)
    d.spec.template.CopyFrom(target.spec.template)
    d.spec.template.metadata.labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    for key in SKIPPED_ANNOTATIONS:
        if key in target.metadata.annotations:
            d.metadata.annotations[key] = target.metadata.annotations[key]
        elif key in (rollout.DESIRED_REPLICAS_ANNOTATION, rollout.MAX_REPLICAS_ANNOTATION):
            d.metadata.annotations.pop(key, None)
    # The resourceVersion read above is the precondition: a concurrent change conflicts.
    written = await api.update(d)
    return RollbackResult(deployment=written, revision=revision, skipped=False)


def _replica_set_for_revision(name: str, owned: list[Any], to_revision: int) -> Any:
    if to_revision > 0:
        for rs in owned:
            if rollout.revision(rs) == to_revision:
                return rs
        raise RollbackError(f"unable to find specified revision {to_revision} in history")
    by_revision = sorted(owned, key=rollout.revision)
    if len(by_revision) < 2 or rollout.revision(by_revision[-2]) == 0:
        raise RollbackError(f'no rollout history found for deployment "{name}"')
    return by_revision[-2]
