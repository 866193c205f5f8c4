"""Namespaces: the ones that always exist, and the rules they impose on other objects.

* ``default``, ``kube-system`` and ``kube-node-lease`` exist from the start: every API
  server creates whichever is missing before it serves (racing servers are harmless:
  the loser's create finds the name taken) and refuses to delete them.
* An object of a namespaced kind can be created only in a namespace that exists and is
  not being deleted (``NOT_FOUND`` / ``FAILED_PRECONDITION``, with Kubernetes' wording).

The check reads the namespace from the store (linearizable), not from the namespace
cache: a namespace whose deletion began a moment ago, through any API server, refuses
new objects at once. It costs one store read per create of a namespaced object.
"""

from __future__ import annotations

from actors.apiserver import admission, lifecycle
from actors.apiserver.storage import Storage
from proto import rpc
from proto.k8s import kinds
from proto.k8s.kinds import KindInfo

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease")


def namespace_kind() -> KindInfo:
    return kinds.by_kind("Namespace")


async def ensure_system_namespaces(storage: Storage) -> None:
    """Create every system namespace that does not exist yet."""
    info = namespace_kind()
    for name in SYSTEM_NAMESPACES:
        if await storage.get(info, "", name) is not None:
            continue
        ns = info.new()
        ns.metadata.name = name
        ns = admission.admit(lifecycle.prepare_create(info, ns, at=lifecycle.now()))
        lifecycle.initial_status(info, ns)
        try:
            await storage.create(info, ns)
        except rpc.AlreadyExists:
            pass  # another API server made it first


def check_deletable(name: str) -> None:
    if name in SYSTEM_NAMESPACES:
        raise rpc.FailedPrecondition(
            f"namespace {name!r} is a system namespace and may not be deleted"
        )


async def check_open(storage: Storage, namespace: str) -> None:
    """Refuse new objects in a namespace that is missing or being deleted."""
    ns = await storage.get(namespace_kind(), "", namespace)
    if ns is None:
        raise rpc.NotFound(f'namespaces "{namespace}" not found')
    if ns.metadata.HasField("deletion_timestamp") or ns.status.phase == "Terminating":
        raise rpc.FailedPrecondition(
            f"unable to create new content in namespace {namespace} because it is being terminated"
        )
