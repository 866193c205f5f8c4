"""What each write may change: server-owned fields, generation, status, deletion.

Pure functions from (current object, request) to the object to store; the service does
the I/O. The rules, as in Kubernetes:

Create
    The server sets ``uid``, ``creationTimestamp`` and ``generation = 1`` and clears
    ``resourceVersion``, ``deletionTimestamp`` and ``deletionGracePeriodSeconds``. A name
    comes from ``metadata.name`` or, when that is empty, ``generateName`` plus five random
    characters. Status given on create is kept (a node agent registers its node with it).

Update (the object)
    Takes everything but status from the request; status stays as stored. Server-owned
    metadata (uid, creationTimestamp, generation, deletionTimestamp, grace) stays as
    stored. ``generation`` grows by one when the desired state -- every top-level field
    but metadata and status -- changes. A request naming a uid of another incarnation is
    a conflict. Once deletion started, finalizers may be removed, not added; removing the
    last one deletes the object (see :func:`finalized`).

UpdateStatus (the status subresource)
    Takes only status from the request; everything else stays as stored.

Delete
    :func:`plan_delete`: an object without finalizers and grace goes at once; otherwise
    ``deletionTimestamp`` is set and the object stays until its finalizers are cleared (and,
    for a bound pod's grace period, until its node agent deletes it with grace 0).
    A Namespace is created with ``kubernetes`` in ``spec.finalizers``
    (:data:`NAMESPACE_FINALIZER`), which holds it too: the namespace controller removes it
    once the namespace's content is gone.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.apiserver import objects, storage
from proto import rpc
from proto.k8s import core_pb2
from proto.k8s.kinds import KindInfo

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes': no vowels, no 0/1/3
GENERATE_SUFFIX = 5
DEFAULT_POD_GRACE_SECONDS = 30
PROPAGATION_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}
PROPAGATION_POLICIES = ("", "Background", *PROPAGATION_FINALIZERS)
NAMESPACE_FINALIZER = "kubernetes"
"""In every Namespace's ``spec.finalizers`` from creation, as in Kubernetes: a deleted
namespace stays Terminating until the namespace controller has deleted its content and
removed this entry."""


def now() -> datetime:
    return datetime.now(UTC)


def generated_name(base: str) -> str:
    suffix = "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(GENERATE_SUFFIX))
    return base[: 63 - GENERATE_SUFFIX] + suffix


def prepare_create(info: KindInfo, obj: Any, *, at: datetime) -> Any:
    """``obj`` with the server-owned fields of a new object; names it from generateName."""
    out = objects.copy(obj)
    m = out.metadata
    if info.namespaced:
        m.namespace = m.namespace or objects.DEFAULT_NAMESPACE
    else:
        m.namespace = ""
    if not m.name:
        if not m.generate_name:
            raise rpc.InvalidArgument(f"a {info.kind} needs metadata.name or metadata.generateName")
        m.name = generated_name(m.generate_name)
    m.uid = str(uuid.uuid4())
    m.creation_timestamp.FromDatetime(at)
    m.generation = 1
    m.resource_version = ""
    m.ClearField("deletion_timestamp")
    m.ClearField("deletion_grace_period_seconds")
    if isinstance(out, core_pb2.Namespace) and NAMESPACE_FINALIZER not in out.spec.finalizers:
        out.spec.finalizers.append(NAMESPACE_FINALIZER)
    return out


def initial_status(info: KindInfo, obj: Any) -> None:
    """Status a new object starts with: a Namespace is Active, a Pod Pending."""
    if info.kind == "Namespace" and not obj.status.phase:
        obj.status.phase = "Active"
    elif info.kind == "Pod" and not obj.status.phase:
        obj.status.phase = "Pending"


def check_uid(info: KindInfo, current: Any, uid: str) -> None:
    if uid and uid != current.metadata.uid:
        raise storage.conflict(
            info,
            current.metadata.namespace,
            current.metadata.name,
            f"precondition failed: UID in precondition: {uid}, "
            f"UID in object meta: {current.metadata.uid}",
        )


def check_resource_version(info: KindInfo, current: Any, resource_version: str) -> None:
    """A stale resourceVersion (set and not the current one) is a conflict."""
    if resource_version and resource_version != current.metadata.resource_version:
        raise storage.conflict(info, current.metadata.namespace, current.metadata.name)


_SERVER_OWNED_MESSAGES = ("creation_timestamp", "deletion_timestamp")


def _keep_server_owned(m: Any, stored: Any) -> None:
    m.uid = stored.uid
    m.generation = stored.generation
    m.resource_version = stored.resource_version
    m.namespace = stored.namespace
    m.name = stored.name
    m.generate_name = stored.generate_name
    for name in _SERVER_OWNED_MESSAGES:
        getattr(m, name).CopyFrom(getattr(stored, name))
        if not stored.HasField(name):
            m.ClearField(name)
    if stored.HasField("deletion_grace_period_seconds"):
        m.deletion_grace_period_seconds = stored.deletion_grace_period_seconds
    else:
        m.ClearField("deletion_grace_period_seconds")


def prepare_update(info: KindInfo, current: Any, new: Any) -> Any:
    """The object to store when ``new`` replaces ``current`` (see the module doc), but
    for ``generation``: :func:`count_generation` does that once defaults are applied."""
    check_uid(info, current, new.metadata.uid)
    out = objects.copy(new)
    m = out.metadata
    _keep_server_owned(m, current.metadata)
    if info.has_status:
        out.status.CopyFrom(current.status)
        if not current.HasField("status"):
            out.ClearField("status")
    if current.metadata.HasField("deletion_timestamp"):
        added = set(m.finalizers) - set(current.metadata.finalizers)
        if added:
            raise rpc.InvalidArgument(
                f"{objects.describe(info, current)} is being deleted: no new finalizers "
                f"can be added ({', '.join(sorted(added))})"
            )
    if isinstance(out, core_pb2.Namespace):
        _keep_namespace_finalizers(current, out)
    return out


def _keep_namespace_finalizers(current: Any, out: Any) -> None:
    """A Namespace's ``spec.finalizers`` stay as stored (Kubernetes changes them only
    through its finalize subresource); once deletion started an update may remove
    entries -- what the namespace controller does when the content is gone -- never add."""
    requested, stored = list(out.spec.finalizers), list(current.spec.finalizers)
    removing = current.metadata.HasField("deletion_timestamp") and set(requested) <= set(stored)
    del out.spec.finalizers[:]
    out.spec.finalizers.extend(requested if removing else stored)


def _spec_finalizers(obj: Any) -> bool:
    return isinstance(obj, core_pb2.Namespace) and bool(obj.spec.finalizers)


def count_generation(current: Any, updated: Any) -> Any:
    """``updated`` with ``generation`` one higher than ``current``'s if its desired state
    differs (compare after defaulting, so a default filled in is not a change)."""
    if objects.desired_state(updated) != objects.desired_state(current):
        updated.metadata.generation = current.metadata.generation + 1
    return updated


def check_has_status(info: KindInfo) -> None:
    if not info.has_status:
        raise rpc.InvalidArgument(f"{info.resource} have no status subresource")


def prepare_status_update(info: KindInfo, current: Any, new: Any) -> Any:
    """The object to store when ``new`` carries a new status for ``current``."""
    check_has_status(info)
    check_uid(info, current, new.metadata.uid)
    out = objects.copy(current)
    out.status.CopyFrom(new.status)
    return out


def finalized(obj: Any) -> bool:
    """Deletion started, no finalizer holds the object and no grace period runs: it is
    to be removed from the store."""
    m = obj.metadata
    return (
        m.HasField("deletion_timestamp")
        and not m.finalizers
        and not _spec_finalizers(obj)
        and not (m.HasField("deletion_grace_period_seconds") and m.deletion_grace_period_seconds)
    )


@dataclass(frozen=True)
class DeletePlan:
    """``remove`` the object now, or store ``keep`` (deletion started) and wait."""

    remove: bool
    keep: Any | None = None


def plan_delete(
    info: KindInfo,
    current: Any,
    *,
    grace_period_seconds: int | None,
    propagation_policy: str,
    at: datetime,
) -> DeletePlan:
    if propagation_policy not in PROPAGATION_POLICIES:
        raise rpc.InvalidArgument(
            f"propagationPolicy must be one of Background, Foreground, Orphan, "
            f"not {propagation_policy!r}"
        )
    grace = _grace(info, current, grace_period_seconds)
    keep = objects.copy(current)
    m = keep.metadata
    policy_finalizer = PROPAGATION_FINALIZERS.get(propagation_policy)
    if policy_finalizer and policy_finalizer not in m.finalizers:
        m.finalizers.append(policy_finalizer)
    if not m.finalizers and not _spec_finalizers(keep) and grace == 0:
        return DeletePlan(remove=True)
    if m.HasField("deletion_timestamp"):
        # Already being deleted: a shorter grace period may end it sooner.
        if grace < m.deletion_grace_period_seconds or not m.HasField(
            "deletion_grace_period_seconds"
        ):
            m.deletion_grace_period_seconds = grace
            m.deletion_timestamp.FromDatetime(at + timedelta(seconds=grace))
    else:
        m.deletion_timestamp.FromDatetime(at + timedelta(seconds=grace))
        m.deletion_grace_period_seconds = grace
        m.generation = current.metadata.generation + 1
    if info.kind == "Namespace" and info.has_status:
        keep.status.phase = "Terminating"
    if finalized(keep):
        return DeletePlan(remove=True)
    return DeletePlan(remove=False, keep=keep)


def _grace(info: KindInfo, current: Any, requested: int | None) -> int:
    """Seconds of graceful deletion: only pods bound to a node get any (their node agent
    stops the containers, then deletes with grace 0); Kubernetes does the same."""
    if info.kind != "Pod" or not current.spec.node_name:
        return 0
    if requested is not None:
        if requested < 0:
            raise rpc.InvalidArgument(f"gracePeriodSeconds must be >= 0, not {requested}")
        return requested
    spec = current.spec
    if spec.HasField("termination_grace_period_seconds"):
        return int(spec.termination_grace_period_seconds)
    return DEFAULT_POD_GRACE_SECONDS
