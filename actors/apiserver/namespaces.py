"""Namespaces: the ones that always exist, and the rules they impose on other objects.

* ``default``, ``kube-system`` and ``kube-node-lease`` exist from the start: every API
  server creates whichever is missing before it serves (racing servers are harmless:
  the loser's create finds the name taken) and refuses to delete them.
* An object of a namespaced kind can be created only in a namespace that exists and is
  not being deleted (``NOT_FOUND`` / ``FAILED_PRECONDITION``, with Kubernetes' wording).

The check reads the namespace cache first and the store only when the cache does not know
the namespace (it may have been created a moment ago through another API server). So a
namespace whose deletion began on another server a few milliseconds ago may still accept
an object; the namespace's own cleanup, which runs after, removes it (as in Kubernetes,
whose admission plugin reads an informer).
"""

from __future__ import annotations

from actors.apiserver import admission, lifecycle, objects
from actors.apiserver.storage import Storage
from actors.apiserver.watch_cache import WatchCache
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


async def check_open(storage: Storage, cache: WatchCache, namespace: str) -> None:
    """Refuse new objects in a namespace that is missing or being deleted."""
    info = namespace_kind()
    ns = cache.state.get(objects.key(info, "", namespace))
    if ns is None:
        ns = await storage.get(info, "", namespace)
    if ns is None:
        raise rpc.NotFound(f'namespaces "{namespace}" not found')
    if ns.metadata.HasField("deletion_timestamp") or ns.status.phase == "Terminating":
        raise rpc.FailedPrecondition(
            f"unable to create new content in namespace {namespace} because it is being terminated"
        )
