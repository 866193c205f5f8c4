"""The API server's gRPC service (``raftsman.apiserver.v1.ApiServer``), generic over kinds.

One servicer serves every kind of :mod:`proto.k8s.kinds`: a request names its kind (or
carries an object whose ``Any`` type URL does) and everything else -- keys, selectors,
status handling, the watch cache -- follows from the kind's :class:`KindInfo`.

Where reads come from:

* ``Get``: the store (linearizable).
* ``List`` without ``limit``/``continue``: the watch cache, after it has proved itself
  level with the store (:meth:`WatchCache.consistent_list`); the store when it cannot.
* ``List`` with ``limit``/``continue``: the store, every page at the first page's
  revision (an MVCC read), so the pages form one consistent snapshot; a continue token
  whose revision was compacted is "too old" (``OUT_OF_RANGE``).
* ``Watch``: the watch cache.

Every write goes to the store as a compare-and-swap (:mod:`.storage`); the rules for what
each write may change are in :mod:`.lifecycle`. An update (and a bind, a patch, a repeated
Event) starts from the watch cache's copy of the object, so when that copy is current it
costs one store round trip, not a read and a write; a stale copy only costs a retry. A Service's clusterIP and nodePorts are
allocated by :mod:`.allocation` and claimed in the Service's own write; a drawn value
that loses a race is redrawn, a requested one that is taken is refused.

Unknown fields: an object sent as protobuf (``object``) cannot carry any -- a client
decoding a manifest meets them first (:func:`proto.k8s.codec.decode` reports them). So
Create and Update also take the manifest itself (``manifest_json``), decoded here with
the request's ``field_validation`` (Warn, Ignore, Strict), and answer the warnings in
``ObjectResponse.warnings`` as Kubernetes does in its ``Warning`` headers; merge patches
are decoded the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from actors.apiserver import admission, events, lifecycle, namespaces, objects, storage
from actors.apiserver.allocation import Allocator, ClaimTaken, keep_allocated
from actors.apiserver.merge_patch import apply_merge_patch, strict_error
from actors.apiserver.proxy import NodeProxy
from actors.apiserver.selectors import Filter, compile_filter
from actors.apiserver.storage import Storage
from actors.apiserver.watch_cache import CacheEvent, EventKind, NotCaughtUp, WatchCache
from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from proto.k8s import codec, kinds
from proto.k8s.kinds import KindInfo
from raftstore.client import Compacted, prefix_end

DEFAULT_BOOKMARK_INTERVAL = 10.0
GENERATE_NAME_ATTEMPTS = 5
ALLOCATION_ATTEMPTS = 10  # draws of a clusterIP/nodePort that lost a race, per request
FIELD_VALIDATION = ("", "Warn", "Ignore", "Strict")
WatchType = pb.WatchEvent.Type
_EVENT_TYPES = {
    EventKind.ADDED: pb.WatchEvent.ADDED,
    EventKind.MODIFIED: pb.WatchEvent.MODIFIED,
    EventKind.DELETED: pb.WatchEvent.DELETED,
}


def _field_validation(mode: str) -> str:
    if mode not in FIELD_VALIDATION:
        raise rpc.InvalidArgument(
            f"fieldValidation must be one of Ignore, Warn or Strict, not {mode!r}"
        )
    return mode


def _warnings(issues: tuple[codec.FieldIssue, ...], mode: str) -> list[str]:
    if mode == "Ignore":
        return []
    return [f'unknown field "{i.path}"' for i in issues]


def incoming(
    envelope: Any, manifest_json: str, field_validation: str
) -> tuple[KindInfo, Any, list[str]]:
    """The kind and object a Create/Update carries, and its warnings (see the module doc)."""
    mode = _field_validation(field_validation)
    if not manifest_json:
        info, obj = objects.unpack(envelope)
        return info, obj, []
    if envelope.type_url:
        raise rpc.InvalidArgument("the request carries both object and manifest_json; give one")
    try:
        doc = json.loads(manifest_json)
    except ValueError as exc:
        raise rpc.InvalidArgument(f"manifest_json is not valid JSON: {exc}") from None
    try:
        decoded = codec.decode(doc, strict=mode == "Strict")
    except codec.DecodeError as exc:
        unknown = [i for i in exc.issues if i.message == "unknown field"]
        if unknown and len(unknown) == len(exc.issues):
            raise strict_error(unknown) from None
        raise rpc.InvalidArgument(f"cannot decode the manifest: {exc}") from None
    info = kinds.by_message(decoded.obj)
    return info, decoded.obj, _warnings(decoded.warnings, mode)


def _name(info: KindInfo, name: str) -> str:
    if not name:
        raise rpc.InvalidArgument(f"the request names no {info.kind}")
    return name


class ApiService:
    """The servicer. ``caches`` holds a synced :class:`WatchCache` per kind name."""

    def __init__(
        self,
        storage: Storage,
        caches: Mapping[str, WatchCache],
        *,
        allocator: Allocator | None = None,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
        event_window: float = events.DEFAULT_WINDOW,
    ) -> None:
        self.storage = storage
        self.caches = caches
        self.allocator = allocator or Allocator(storage.client)
        self.bookmark_interval = bookmark_interval
        self.event_window = event_window
        self.node_proxy = NodeProxy(storage, caches)

    async def _allocating(self, write: Callable[[], Awaitable[Any]], requested: list[Any]) -> Any:
        """Run ``write`` until its drawn allocations win; ``requested[0]`` is the object
        as asked for (before drawing), set by ``write``, to tell a request from a draw."""
        for _ in range(ALLOCATION_ATTEMPTS):
            try:
                return await write()
            except ClaimTaken as taken:
                error = self.allocator.refused(requested[0], taken)
                if error is not None:
                    raise error from None
                await self.allocator.refresh()
        raise rpc.Aborted(
            "could not allocate a clusterIP/nodePort: too many racing writers; try again"
        )

    def _cache(self, info: KindInfo) -> WatchCache:
        return self.caches[info.kind]

    def _cached(self, info: KindInfo, namespace: str, name: str) -> Any | None:
        """The watch cache's copy of an object, perhaps stale: where an update starts
        (see :meth:`Storage.guaranteed_update`), never what a read answers."""
        cache = self.caches.get(info.kind)
        return None if cache is None else cache.get(objects.key(info, namespace, name))

    # ------------------------------------------------------------------ create / read

    async def Create(self, request: pb.CreateRequest, ctx: rpc.ServerContext) -> pb.ObjectResponse:
        info, obj, warnings = incoming(
            request.object, request.manifest_json, request.field_validation
        )
        created = await self._create(info, obj)
        return pb.ObjectResponse(object=objects.pack(created), warnings=warnings)

    async def _create(self, info: KindInfo, obj: Any) -> Any:
        generated = not obj.metadata.name and bool(obj.metadata.generate_name)
        attempts = GENERATE_NAME_ATTEMPTS if generated else 1
        for attempt in range(attempts):
            prepared = lifecycle.prepare_create(info, obj, at=lifecycle.now())
            if info.namespaced:
                await namespaces.check_open(self.storage, prepared.metadata.namespace)
            lifecycle.initial_status(info, prepared)
            prepared = admission.admit(prepared)
            requested = [prepared]

            async def write(prepared: Any = prepared) -> Any:
                out = objects.copy(prepared)
                if info.kind == "Service":
                    self.allocator.assign(out)
                elif info.kind == "Node":
                    self.allocator.assign_node(out)
                return await self.storage.create(info, out)

            try:
                return await self._allocating(write, requested)
            except rpc.AlreadyExists:
                if attempt + 1 < attempts:
                    continue  # the random suffix collided; draw another
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def Get(self, request: pb.GetRequest, ctx: rpc.ServerContext) -> pb.ObjectResponse:
        info = objects.kind_named(request.kind)
        namespace = objects.request_namespace(info, request.namespace)
        obj = await self.storage.require(info, namespace, _name(info, request.name))
        return pb.ObjectResponse(object=objects.pack(obj))

    async def List(self, request: pb.ListRequest, ctx: rpc.ServerContext) -> pb.ListResponse:
        info = objects.kind_named(request.kind)
        namespace = request.namespace if info.namespaced else ""
        selected = compile_filter(
            info.message.DESCRIPTOR, request.label_selector, request.field_selector
        )
        if request.limit < 0:
            raise rpc.InvalidArgument(f"limit must be >= 0, not {request.limit}")
        if request.limit or getattr(request, "continue"):
            return await self._list_pages(info, namespace, selected, request)
        try:
            items, revision = await self._cache(info).consistent_list(namespace)
        except NotCaughtUp:
            return await self._list_pages(info, namespace, selected, request)
        return pb.ListResponse(
            items=[objects.pack(o) for o in items if selected.matches(o)],
            resource_version=str(revision),
        )

    async def _list_pages(
        self, info: KindInfo, namespace: str, selected: Filter, request: pb.ListRequest
    ) -> pb.ListResponse:
        prefix = objects.prefix(info, namespace)
        end = prefix_end(prefix)
        token = getattr(request, "continue")
        revision, start = _decode_continue(token, prefix) if token else (0, prefix)
        limit = request.limit
        items: list[Any] = []
        try:
            while True:
                want = limit - len(items) if limit else 0
                page = await self.storage.page(info, start, end, revision=revision, limit=want)
                revision = page.revision
                for i, kv in enumerate(page.kvs):
                    obj = storage.decode(info, kv.value, kv.mod_revision)
                    if selected.matches(obj):
                        items.append(obj)
                    if limit and len(items) == limit:
                        more = page.more or i + 1 < len(page.kvs)
                        following = _encode_continue(revision, kv.key + b"\0") if more else ""
                        return _list_response(items, revision, following)
                if not page.more or not page.kvs:
                    return _list_response(items, revision, "")
                start = page.kvs[-1].key + b"\0"
        except Compacted:
            raise rpc.OutOfRange(
                f"too old resource version: {revision}: the continue token's revision has "
                f"been compacted; list again without it"
            ) from None

    # ------------------------------------------------------------------ updates

    async def Update(self, request: pb.UpdateRequest, ctx: rpc.ServerContext) -> pb.ObjectResponse:
        info, new, warnings = incoming(
            request.object, request.manifest_json, request.field_validation
        )
        namespace = objects.request_namespace(info, new.metadata.namespace)
        name = _name(info, new.metadata.name)
        requested: list[Any] = [new]

        def mutate(current: Any) -> Any:
            lifecycle.check_resource_version(info, current, new.metadata.resource_version)
            prepared = lifecycle.prepare_update(info, current, new)
            return self._admit_update(info, current, prepared, requested)

        written = await self._allocating(
            lambda: self.storage.guaranteed_update(
                info,
                namespace,
                name,
                mutate,
                remove_if=lifecycle.finalized,
                cached=self._cached(info, namespace, name),
            ),
            requested,
        )
        return pb.ObjectResponse(object=objects.pack(written), warnings=warnings)

    def _admit_update(
        self, info: KindInfo, current: Any, prepared: Any, requested: list[Any]
    ) -> Any:
        """Admission of an update, and the allocations a Service keeps or gains."""
        if info.kind in ("Service", "Node"):
            keep_allocated(prepared, current)
        updated = admission.admit(prepared, old=current)
        if info.kind == "Service":
            requested[0] = objects.copy(updated)
            self.allocator.assign(updated, old=current)
        elif info.kind == "Node":
            requested[0] = objects.copy(updated)
            self.allocator.assign_node(updated, old=current)
        return lifecycle.count_generation(current, updated)

    async def UpdateStatus(
        self, request: pb.UpdateStatusRequest, ctx: rpc.ServerContext
    ) -> pb.ObjectResponse:
        info, new = objects.unpack(request.object)
        namespace = objects.request_namespace(info, new.metadata.namespace)
        name = _name(info, new.metadata.name)
        lifecycle.check_has_status(info)

        def mutate(current: Any) -> Any:
            lifecycle.check_resource_version(info, current, new.metadata.resource_version)
            return admission.admit(lifecycle.prepare_status_update(info, current, new), old=current)

        written = await self.storage.guaranteed_update(
            info, namespace, name, mutate, cached=self._cached(info, namespace, name)
        )
        return pb.ObjectResponse(object=objects.pack(written))

    async def Patch(self, request: pb.PatchRequest, ctx: rpc.ServerContext) -> pb.ObjectResponse:
        info = objects.kind_named(request.kind)
        namespace = objects.request_namespace(info, request.namespace)
        name = _name(info, request.name)
        mode = _field_validation(request.field_validation)
        if request.status:
            lifecycle.check_has_status(info)
        requested: list[Any] = [None]
        warnings: list[str] = []

        def mutate(current: Any) -> Any:
            patched, issues = apply_merge_patch(
                current, request.merge_patch, strict=mode == "Strict"
            )
            warnings[:] = _warnings(issues, mode)
            patched.api_version, patched.kind = info.api_version, info.kind
            lifecycle.check_resource_version(info, current, patched.metadata.resource_version)
            requested[0] = patched
            if request.status:
                updated = lifecycle.prepare_status_update(info, current, patched)
                return lifecycle.count_generation(current, admission.admit(updated, old=current))
            updated = lifecycle.prepare_update(info, current, patched)
            return self._admit_update(info, current, updated, requested)

        written = await self._allocating(
            lambda: self.storage.guaranteed_update(
                info,
                namespace,
                name,
                mutate,
                remove_if=lambda obj: not request.status and lifecycle.finalized(obj),
                cached=self._cached(info, namespace, name),
            ),
            requested,
        )
        return pb.ObjectResponse(object=objects.pack(written), warnings=warnings)

    # ------------------------------------------------------------------ node agents (.proxy)

    async def PodLogs(self, request: Any, ctx: rpc.ServerContext) -> None:
        await self.node_proxy.pod_logs(request, ctx)

    async def PodExec(self, requests: Any, ctx: rpc.ServerContext) -> None:
        await self.node_proxy.pod_exec(requests, ctx)

    async def Top(self, request: pb.TopRequest, ctx: rpc.ServerContext) -> pb.TopResponse:
        return await self.node_proxy.top(request, ctx)

    # ------------------------------------------------------------------ events

    async def RecordEvent(
        self, request: pb.RecordEventRequest, ctx: rpc.ServerContext
    ) -> pb.ObjectResponse:
        info, ev = objects.unpack(request.event)
        if info.kind != "Event":
            raise rpc.InvalidArgument(f"RecordEvent takes an Event, not a {info.kind}")
        events.check(ev)
        namespace = ev.involved_object.namespace or objects.DEFAULT_NAMESPACE
        name = events.event_name(ev)
        # Whether the Event exists is first asked of the watch cache (no store read), and
        # of the store once the cache's answer proved wrong.
        from_cache = True
        for _ in range(storage.MAX_RETRIES):
            at = lifecycle.now()
            if from_cache:
                existing = self._cached(info, namespace, name)
            else:
                existing = await self.storage.get(info, namespace, name)
            if existing is None:
                try:
                    fresh = events.fresh(ev, namespace=namespace, name=name, at=at)
                    created = await self._create(info, fresh)
                except rpc.AlreadyExists:
                    from_cache = False
                    continue  # another recorder created it a moment ago: bump it
                return pb.ObjectResponse(object=objects.pack(created))

            def bump(current: Any, at: Any = at) -> Any:
                again = events.repeat(current, at=at, window=self.event_window)
                return admission.admit(again, old=current)

            try:
                written = await self.storage.guaranteed_update(
                    info, namespace, name, bump, cached=existing
                )
            except rpc.NotFound:
                from_cache = False
                continue  # it expired meanwhile: record it afresh
            return pb.ObjectResponse(object=objects.pack(written))
        raise storage.conflict(info, namespace, name, "too many concurrent writers; try again")

    async def Bind(self, request: pb.BindRequest, ctx: rpc.ServerContext) -> pb.ObjectResponse:
        info = kinds.by_kind("Pod")
        namespace = objects.request_namespace(info, request.namespace)
        name = _name(info, request.name)
        if not request.node_name:
            raise rpc.InvalidArgument("a binding needs a node name")

        def mutate(current: Any) -> Any:
            lifecycle.check_uid(info, current, request.uid)
            if current.metadata.HasField("deletion_timestamp"):
                raise storage.conflict(info, namespace, name, "the pod is being deleted")
            if current.spec.node_name:
                raise storage.conflict(
                    info,
                    namespace,
                    name,
                    f"pod {name} is already assigned to node {current.spec.node_name!r}",
                )
            current.spec.node_name = request.node_name
            _set_pod_scheduled(current)
            return current

        written = await self.storage.guaranteed_update(
            info, namespace, name, mutate, cached=self._cached(info, namespace, name)
        )
        return pb.ObjectResponse(object=objects.pack(written))

    # ------------------------------------------------------------------ delete

    async def Delete(self, request: pb.DeleteRequest, ctx: rpc.ServerContext) -> pb.DeleteResponse:
        info = objects.kind_named(request.kind)
        namespace = objects.request_namespace(info, request.namespace)
        name = _name(info, request.name)
        if info.kind == "Namespace":
            namespaces.check_deletable(name)
        grace = request.grace_period_seconds if request.HasField("grace_period_seconds") else None
        for _ in range(storage.MAX_RETRIES):
            current = await self.storage.require(info, namespace, name)
            lifecycle.check_uid(info, current, request.preconditions.uid)
            lifecycle.check_resource_version(info, current, request.preconditions.resource_version)
            plan = lifecycle.plan_delete(
                info,
                current,
                grace_period_seconds=grace,
                propagation_policy=request.propagation_policy,
                at=lifecycle.now(),
            )
            revision = storage.revision_of(current)
            if plan.remove:
                done = await self.storage.remove(info, current, revision=revision)
            elif objects.same(plan.keep, current):
                done = current
            else:
                done = await self.storage.replace(
                    info, plan.keep, revision=revision, previous=current
                )
            if done is not None:
                return pb.DeleteResponse(object=objects.pack(done), pending=not plan.remove)
        raise storage.conflict(info, namespace, name, "too many concurrent writers; try again")

    # ------------------------------------------------------------------ watch

    async def Watch(self, request: pb.WatchRequest, ctx: rpc.ServerContext) -> None:
        info = objects.kind_named(request.kind)
        namespace = request.namespace if info.namespaced else ""
        selected = compile_filter(
            info.message.DESCRIPTOR, request.label_selector, request.field_selector
        )
        rv = request.resource_version
        start = None if rv in ("", "0") else storage.parse_revision(rv)
        cache = self._cache(info)
        await cache.synced.wait()
        initial, watcher = cache.watch(start)
        scope = objects.prefix(info, namespace)
        for obj in initial:
            if objects.key(info, obj.metadata.namespace, obj.metadata.name).startswith(scope):
                if selected.matches(obj):
                    await ctx.send(pb.WatchEvent(type=WatchType.ADDED, object=objects.pack(obj)))
        while True:
            events = await watcher.next(timeout=self.bookmark_interval)
            if not events and request.allow_bookmarks:
                mark = info.new()
                mark.metadata.resource_version = str(watcher.revision)
                await ctx.send(pb.WatchEvent(type=WatchType.BOOKMARK, object=objects.pack(mark)))
            for event in events:
                if event.key.startswith(scope):
                    out = _client_event(event, selected)
                    if out is not None:
                        await ctx.send(out)


def _client_event(event: CacheEvent, selected: Filter) -> pb.WatchEvent | None:
    """What a watcher with ``selected`` sees of ``event``: an object that starts matching
    is ADDED, one that stops matching is DELETED (its old state, the event's revision)."""
    now = event.kind is not EventKind.DELETED and selected.matches(event.obj)
    before = event.prev is not None and selected.matches(event.prev)
    if now and before:
        kind = event.kind
    elif now:
        kind = EventKind.ADDED
    elif before:
        if event.kind is EventKind.DELETED:
            obj = event.obj
        else:
            obj = objects.copy(event.prev)
            obj.metadata.resource_version = str(event.revision)
        return pb.WatchEvent(type=pb.WatchEvent.DELETED, object=objects.pack(obj))
    else:
        return None
    return pb.WatchEvent(type=_EVENT_TYPES[kind], object=objects.pack(event.obj))


def _list_response(items: list[Any], revision: int, following: str) -> pb.ListResponse:
    response = pb.ListResponse(
        items=[objects.pack(o) for o in items], resource_version=str(revision)
    )
    setattr(response, "continue", following)
    return response


def _encode_continue(revision: int, start: bytes) -> str:
    token = json.dumps({"rv": revision, "start": start.decode("utf-8", "surrogateescape")})
    return base64.urlsafe_b64encode(token.encode("utf-8", "surrogateescape")).decode()


def _decode_continue(token: str, prefix: bytes) -> tuple[int, bytes]:
    try:
        data = json.loads(
            base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogateescape")
        )
        revision = int(data["rv"])
        start = str(data["start"]).encode("utf-8", "surrogateescape")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise rpc.InvalidArgument("invalid continue token") from None
    if revision <= 0 or not start.startswith(prefix):
        raise rpc.InvalidArgument("the continue token belongs to another list")
    return revision, start


def _set_pod_scheduled(pod: Any) -> None:
    """PodScheduled=True (replacing an earlier Unschedulable), as a bind sets it."""
    at = lifecycle.now()
    for condition in pod.status.conditions:
        if condition.type == "PodScheduled":
            if condition.status != "True":
                condition.status = "True"
                condition.reason = ""
                condition.message = ""
                condition.last_transition_time.FromDatetime(at)
            return
    condition = pod.status.conditions.add(type="PodScheduled", status="True")
    condition.last_transition_time.FromDatetime(at)
