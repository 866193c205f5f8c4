"""``open_api_client``: a typed trio client of the API server.

The problem: every caller of the API server -- the CLI today, controllers, the scheduler
and node agents later -- needs the same few things on top of the generated stub: objects
in and out as their kind's message rather than ``google.protobuf.Any``, kinds named the
way people name them (``"deploy"``, ``"Deployment"``, the message class), failures as a
typed taxonomy (:mod:`.errors`), and a way past one API server that is down when several
run. This module is that layer and nothing more: no caching, no retries of writes.

Guarantees and trade-offs:

* **Clients spread over the API servers.** The first call goes to the address
  :func:`.spread.first_index` picks -- a stable hash of ``identity`` when the caller names
  itself, a random one when it does not, the first with ``in_order`` -- and later calls to
  the address that last answered. So components given the same list do not all load its
  first server, and each one stays with one server while it answers.
* **Reads fail over.** ``get`` and ``list`` try the addresses in turn, starting with the
  one that last answered, moving on when an address cannot be reached or answers
  ``UNAVAILABLE`` / times out. Any other answer (``NotFound`` included) is final. When no
  address answers, :class:`~.errors.Unreachable` names them all.
* **An address that answers gRPC but not this API** (``UNIMPLEMENTED``: a port now used by
  another program, a store's port named by mistake) is passed over like an unreachable
  one; if nothing better answers, :class:`~.errors.ServiceUnavailable` names it and says
  so, rather than a bare ``Method not found!``.
* **Writes are sent once,** to the address that last answered. A write whose outcome is
  unknown (a connection lost mid-call, a deadline) is never replayed: replaying a create
  or a delete would turn its success into ``AlreadyExists`` / ``NotFound``. A write that
  never left (no connection could be made) or that the address does not serve goes on to
  the next address, as a read does: so a one-shot client (the CLI) whose first API server
  is down still writes through the others. Optimistic concurrency is the caller's tool:
  pass the ``resourceVersion`` you read, retry on :class:`~.errors.Conflict`.
* **Watches** run on the address that last answered; when the stream breaks the caller
  lists or watches again from the last ``resource_version`` it saw, as with any
  Kubernetes watch. Events arrive in revision order.
* Every unary call carries ``timeout`` as its gRPC deadline. Leaving the ``async with``
  closes every channel and cancels what is in flight.
"""

from __future__ import annotations

import enum
import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, overload

import trio
from google.protobuf import any_pb2
from google.protobuf.message import Message

from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from proto.apiserver import apiserver_pb2_grpc
from proto.k8s import kinds
from proto.k8s.kinds import KindInfo
from proto.node import node_agent_pb2 as node_pb

from . import errors
from .spread import first_index

M = TypeVar("M", bound=Message)
T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0

_BY_FULL_NAME: Mapping[str, KindInfo] = MappingProxyType(
    {info.message.DESCRIPTOR.full_name: info for info in kinds.KINDS}
)

KindRef = str | KindInfo | type[Message]
"""A kind: any of kubectl's spellings (``"po"``, ``"deployments.apps"``), its
:class:`~proto.k8s.kinds.KindInfo`, or its message class."""


def kind_info(kind: KindRef) -> KindInfo:
    """The :class:`KindInfo` for ``kind``; :class:`~.errors.Invalid` when unknown."""
    if isinstance(kind, KindInfo):
        return kind
    try:
        if isinstance(kind, str):
            return kinds.lookup(kind)
        return kinds.by_message(kind)
    except kinds.UnknownKind as exc:
        raise errors.Invalid(str(exc)) from None


def pack(obj: Message) -> any_pb2.Any:
    envelope = any_pb2.Any()
    envelope.Pack(obj)
    return envelope


def unpack(envelope: any_pb2.Any) -> Message:
    """The object inside ``envelope``, as its kind's message (apiVersion/kind filled in)."""
    full_name = envelope.type_url.rpartition("/")[2]
    info = _BY_FULL_NAME.get(full_name)
    if info is None:
        raise errors.InternalError(f"the server sent an object of unknown type {full_name!r}")
    obj = info.new()
    envelope.Unpack(obj)
    if not obj.api_version:
        obj.api_version = info.api_version
        obj.kind = info.kind
    return obj


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


_EVENT_TYPES = {
    pb.WatchEvent.ADDED: EventType.ADDED,
    pb.WatchEvent.MODIFIED: EventType.MODIFIED,
    pb.WatchEvent.DELETED: EventType.DELETED,
    pb.WatchEvent.BOOKMARK: EventType.BOOKMARK,
}


@dataclass(frozen=True)
class WatchEvent:
    """One change; a BOOKMARK's object carries only ``metadata.resourceVersion``."""

    type: EventType
    object: Message

    @property
    def resource_version(self) -> str:
        return str(self.object.metadata.resource_version)


@dataclass(frozen=True)
class ObjectList:
    """A page of objects, the store revision it was read at, and the next page's token."""

    items: list[Message]
    resource_version: str
    continue_: str


@dataclass(frozen=True)
class Deleted:
    """The object as deleted, or as it stays while finalizers or a grace period hold it."""

    object: Message
    pending: bool


class WatchStream:
    """The events of one watch, in revision order: ``async for event in stream``."""

    def __init__(self, responses: rpc.ResponseStream[pb.WatchEvent]) -> None:
        self._responses = responses

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            message = await self._responses.receive()
        except rpc.RpcError as exc:
            raise errors.translate(exc) from None
        if message is None:
            raise StopAsyncIteration
        return WatchEvent(type=_EVENT_TYPES[message.type], object=unpack(message.object))


def _not_an_api_server(address: str, exc: rpc.RpcError) -> str:
    return (
        f"{address} answers gRPC but does not serve this Raftsman API call "
        f"(UNIMPLEMENTED: {exc.message}); is it an API server of this version?"
    )


class ApiClient:
    """A client of one or more API servers; see the module doc for what it guarantees.

    Made by :func:`open_api_client`. Namespaced requests that leave ``namespace`` empty
    mean ``default`` (the server's rule); cluster-scoped kinds ignore it.
    """

    def __init__(self, stubs: Sequence[tuple[str, Any]], *, timeout: float, start: int = 0) -> None:
        if not stubs:
            raise ValueError("an API client needs at least one address")
        if not 0 <= start < len(stubs):
            raise ValueError(f"start must index one of the {len(stubs)} addresses, not {start}")
        self._stubs = list(stubs)
        self._current = start
        self.timeout = timeout

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for address, _ in self._stubs)

    @property
    def address(self) -> str:
        """The address that last answered (before any call: the one tried first)."""
        return self._stubs[self._current][0]

    # ------------------------------------------------------------------ plumbing

    async def _read(self, call: Callable[[Any], Awaitable[T]]) -> T:
        failures: list[str] = []
        unreachable = True
        count = len(self._stubs)
        for step in range(count):
            index = (self._current + step) % count
            address, stub = self._stubs[index]
            try:
                result = await call(stub)
            except (rpc.Unavailable, rpc.DeadlineExceeded) as exc:
                unreachable = unreachable and errors.is_connect_failure(exc)
                failures.append(f"{address}: {exc.message}")
                last = exc
                continue
            except rpc.Unimplemented as exc:
                unreachable = False
                last = errors.ServiceUnavailable(_not_an_api_server(address, exc))
                failures.append(last.message)
                continue
            except rpc.RpcError as exc:
                self._current = index
                raise errors.translate(exc) from None
            self._current = index
            return result
        if unreachable:
            raise errors.Unreachable(
                f"cannot reach the API server at {', '.join(self.addresses)}",
                addresses=self.addresses,
            )
        if count == 1:
            raise errors.translate(last) from None
        raise errors.ServiceUnavailable("no API server answered: " + "; ".join(failures))

    async def _write(self, call: Callable[[Any], Awaitable[T]]) -> T:
        failures: list[str] = []
        unreachable: list[str] = []
        count = len(self._stubs)
        for step in range(count):
            index = (self._current + step) % count
            address, stub = self._stubs[index]
            try:
                result = await call(stub)
            except rpc.Unimplemented as exc:
                failures.append(_not_an_api_server(address, exc))  # nothing was done there
                continue
            except rpc.RpcError as exc:
                if errors.is_connect_failure(exc):
                    unreachable.append(address)  # nothing was sent: safe to send it elsewhere
                    failures.append(f"{address}: {exc.message}")
                    continue
                self._current = index
                raise errors.translate(exc) from None
            self._current = index
            return result
        if len(unreachable) == count:
            raise errors.Unreachable(
                f"cannot reach the API server at {', '.join(self.addresses)}",
                addresses=self.addresses,
            )
        if count == 1:
            raise errors.ServiceUnavailable(failures[0])
        raise errors.ServiceUnavailable("no API server answered: " + "; ".join(failures))

    # ------------------------------------------------------------------ reads

    @overload
    async def get(self, kind: type[M], name: str, *, namespace: str = "") -> M: ...
    @overload
    async def get(self, kind: str | KindInfo, name: str, *, namespace: str = "") -> Message: ...

    async def get(self, kind: KindRef, name: str, *, namespace: str = "") -> Message:
        """The object ``name`` (linearizable: read from the store). :class:`NotFound`."""
        info = kind_info(kind)
        request = pb.GetRequest(kind=info.kind, namespace=namespace, name=name)
        response = await self._read(lambda s: s.Get(request, timeout=self.timeout))
        return unpack(response.object)

    async def list(
        self,
        kind: KindRef,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
    ) -> ObjectList:
        """Objects of ``kind`` in ``namespace`` (None or ``""``: every namespace).

        With ``limit``, at most that many; pass the result's ``continue_`` back for the
        next page (every page is read at the first page's revision).
        """
        info = kind_info(kind)
        request = pb.ListRequest(
            kind=info.kind,
            namespace=(namespace or "") if info.namespaced else "",
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            **{"continue": continue_},
        )
        response = await self._read(lambda s: s.List(request, timeout=self.timeout))
        return ObjectList(
            items=[unpack(item) for item in response.items],
            resource_version=response.resource_version,
            continue_=getattr(response, "continue"),
        )

    async def list_all(self, kind: KindRef, **kw: Any) -> ObjectList:
        """Every page of :meth:`list` joined (``limit`` is the page size)."""
        page = await self.list(kind, **kw)
        items = list(page.items)
        while page.continue_:
            page = await self.list(kind, **{**kw, "continue_": page.continue_})
            items.extend(page.items)
        return ObjectList(items=items, resource_version=page.resource_version, continue_="")

    # ------------------------------------------------------------------ writes

    async def create(self, obj: M) -> M:
        """Create ``obj`` (``metadata.generateName`` lets the server pick the name)."""
        request = pb.CreateRequest(object=pack(obj))
        response = await self._write(lambda s: s.Create(request, timeout=self.timeout))
        return unpack(response.object)

    async def update(self, obj: M) -> M:
        """Replace ``obj`` (not its status); a set resourceVersion must be the current one."""
        request = pb.UpdateRequest(object=pack(obj))
        response = await self._write(lambda s: s.Update(request, timeout=self.timeout))
        return unpack(response.object)

    async def update_status(self, obj: M) -> M:
        """Replace ``obj``'s status only."""
        request = pb.UpdateStatusRequest(object=pack(obj))
        response = await self._write(lambda s: s.UpdateStatus(request, timeout=self.timeout))
        return unpack(response.object)

    async def patch_merge(
        self,
        kind: KindRef,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str = "",
        status: bool = False,
    ) -> Message:
        """Apply a JSON merge patch (RFC 7386, Kubernetes field names) to ``name``.

        ``metadata.resourceVersion`` in the patch is a precondition (:class:`Conflict`).
        """
        info = kind_info(kind)
        request = pb.PatchRequest(
            kind=info.kind,
            namespace=namespace,
            name=name,
            merge_patch=json.dumps(patch),
            status=status,
        )
        response = await self._write(lambda s: s.Patch(request, timeout=self.timeout))
        return unpack(response.object)

    async def delete(
        self,
        kind: KindRef,
        name: str,
        *,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        uid: str = "",
        resource_version: str = "",
    ) -> Deleted:
        """Delete ``name``; ``pending`` when finalizers or a grace period keep it a while."""
        info = kind_info(kind)
        request = pb.DeleteRequest(
            kind=info.kind,
            namespace=namespace,
            name=name,
            propagation_policy=propagation_policy,
            preconditions=pb.Preconditions(uid=uid, resource_version=resource_version),
        )
        if grace_period_seconds is not None:
            request.grace_period_seconds = grace_period_seconds
        response = await self._write(lambda s: s.Delete(request, timeout=self.timeout))
        return Deleted(object=unpack(response.object), pending=response.pending)

    async def bind(
        self, name: str, node_name: str, *, namespace: str = "", uid: str = ""
    ) -> Message:
        """Bind the pod ``name`` to ``node_name`` (:class:`Conflict` if already bound)."""
        request = pb.BindRequest(namespace=namespace, name=name, node_name=node_name, uid=uid)
        response = await self._write(lambda s: s.Bind(request, timeout=self.timeout))
        return unpack(response.object)

    async def record_event(self, event: Message) -> Message:
        """Record an Event (the server names it and aggregates repeats); see RecordEvent."""
        request = pb.RecordEventRequest(event=pack(event))
        response = await self._write(lambda s: s.RecordEvent(request, timeout=self.timeout))
        return unpack(response.object)

    # ------------------------------------------------------------------ watch

    @asynccontextmanager
    async def watch(
        self,
        kind: KindRef,
        *,
        namespace: str | None = None,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = False,
    ) -> AsyncIterator[WatchStream]:
        """Watch ``kind``: ``async with api.watch("pods") as events: async for e in events``.

        ``resource_version`` ``""``/``"0"``: an ADDED event per current object first.
        A start before the server's history raises :class:`Expired` from the stream.
        """
        info = kind_info(kind)
        request = pb.WatchRequest(
            kind=info.kind,
            namespace=(namespace or "") if info.namespaced else "",
            resource_version=resource_version,
            label_selector=label_selector,
            field_selector=field_selector,
            allow_bookmarks=allow_bookmarks,
        )
        _, stub = self._stubs[self._current]
        async with stub.Watch(request) as responses:
            yield WatchStream(responses)

    # ------------------------------------------------------------------ node agents

    async def logs(
        self,
        name: str,
        *,
        namespace: str = "",
        container: str = "",
        follow: bool = False,
        previous: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
        since_seconds: int | None = None,
        since_time: str = "",
        limit_bytes: int | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The log of a pod's container, in chunks of whole lines (``kubectl logs``).

        ``async for chunk in api.logs("web-1", follow=True)``; wrap it in
        :func:`contextlib.aclosing` when the loop may stop early. With ``follow`` it ends
        when the container exits. The container defaults to the pod's default container.
        """
        request = node_pb.LogsRequest(
            namespace=namespace,
            pod=name,
            container=container,
            follow=follow,
            previous=previous,
            timestamps=timestamps,
            since_time=since_time,
        )
        if tail_lines is not None:
            request.tail_lines = tail_lines
        if since_seconds is not None:
            request.since_seconds = since_seconds
        if limit_bytes is not None:
            request.limit_bytes = limit_bytes
        _, stub = self._stubs[self._current]
        try:
            async with stub.PodLogs(request) as chunks:
                async for chunk in chunks:
                    yield chunk.data
        except rpc.RpcError as exc:
            raise errors.translate(exc) from None

    async def exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        namespace: str = "",
        container: str = "",
        stdin: AsyncIterable[bytes] | None = None,
        stdout: Callable[[bytes], Awaitable[None]] | None = None,
        stderr: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> int:
        """Run ``command`` in a running container of pod ``name``; its exit code.

        ``stdin`` chunks are sent as they come (its end closes the command's stdin;
        None: the command reads nothing). Output chunks are awaited into ``stdout`` and
        ``stderr`` in order (None discards them).
        """
        start = node_pb.ExecStart(
            namespace=namespace,
            pod=name,
            container=container,
            command=list(command),
            stdin=stdin is not None,
        )
        _, stub = self._stubs[self._current]
        failure: rpc.RpcError | None = None
        code: int | None = None
        try:
            async with stub.PodExec() as call:
                await call.send(node_pb.ExecRequest(start=start))

                async def feed() -> None:
                    assert stdin is not None
                    try:
                        async for chunk in stdin:
                            await call.send(node_pb.ExecRequest(stdin=chunk))
                        await call.done_writing()
                    except rpc.RpcError:
                        pass  # the call ended; its status arrives with the responses

                async with trio.open_nursery() as nursery:
                    if stdin is not None:
                        nursery.start_soon(feed)
                    else:
                        await call.done_writing()
                    try:
                        async for response in call:
                            if response.stdout and stdout is not None:
                                await stdout(response.stdout)
                            if response.stderr and stderr is not None:
                                await stderr(response.stderr)
                            if response.HasField("exit_code"):
                                code = response.exit_code
                    except rpc.RpcError as exc:
                        failure = exc
                    nursery.cancel_scope.cancel()
        except rpc.RpcError as exc:
            failure = exc
        if failure is not None:
            raise errors.translate(failure) from None
        if code is None:
            raise errors.InternalError("the exec stream ended without an exit code")
        return code

    async def top_nodes(self, *, name: str = "", label_selector: str = "") -> pb.TopResponse:
        """cpu and memory usage of nodes (all, or ``name``), measured by their agents."""
        request = pb.TopRequest(kind="nodes", name=name, label_selector=label_selector)
        response: pb.TopResponse = await self._read(lambda s: s.Top(request, timeout=self.timeout))
        return response

    async def top_pods(
        self, *, namespace: str | None = None, name: str = "", label_selector: str = ""
    ) -> pb.TopResponse:
        """cpu and memory usage of running pods of ``namespace`` (None or ``""``: all)."""
        request = pb.TopRequest(
            kind="pods", namespace=namespace or "", name=name, label_selector=label_selector
        )
        response: pb.TopResponse = await self._read(lambda s: s.Top(request, timeout=self.timeout))
        return response


@asynccontextmanager
async def open_api_client(
    addresses: str | Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    identity: str | None = None,
    in_order: bool = False,
) -> AsyncIterator[ApiClient]:
    """A client of the API server(s) at ``addresses`` ("host:port", or several).

    With several addresses the first call goes to the one a stable hash of ``identity``
    (the caller's name: a node, a component's replica) picks, or a random one when no
    identity is given; ``in_order`` starts at the first instead (see :mod:`.spread`).
    Opening connects lazily: an unreachable address shows on the first call.
    """
    targets = [addresses] if isinstance(addresses, str) else list(addresses)
    targets = [t.strip().removeprefix("http://") for t in targets if t.strip()]
    if not targets:
        raise ValueError("open_api_client needs at least one address")
    start = first_index(len(targets), identity=identity, in_order=in_order)
    async with AsyncExitStack() as stack:
        stubs = []
        for target in targets:
            channel = await stack.enter_async_context(rpc.connect(target))
            stubs.append((target, channel.stub(apiserver_pb2_grpc.ApiServerStub)))
        yield ApiClient(stubs, timeout=timeout, start=start)
