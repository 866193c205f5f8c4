"""A key-value workload of concurrent store clients that records what it saw.

The workload is what the store's invariants are checked on: it must be concurrent (so
that reordering can happen), its values must be attributable (so that a read says which
write it saw), and every operation must be recorded with its invocation and response
time and its outcome -- including the ones that failed in a way that leaves the outcome
unknown.

What it does. ``clients`` trio tasks, each with its own store client (endpoints rotated,
so clients start on different members), loop until told to stop, each picking one of:

* ``get`` / ``put`` / ``cas`` / ``delete`` on one of ``keys`` *register* keys
  (``<prefix>reg/<n>``). A put writes a value no one else writes (``c<client>-<seq>``);
  a cas compares with the value this client last read (or "absent") and writes a fresh
  one. These go into :attr:`WorkloadResult.history` for the linearizability checker.
* ``append``: a put of a fresh key ``<prefix>ack/c<client>-<seq>``. An acknowledged append
  must exist forever after (:func:`chaos.invariants.no_lost_writes`).

Outcomes. A write that returned is recorded with its result. A write that failed with
:class:`~raftstore.client.Indeterminate`, a deadline, or our own ``op_timeout`` may have
been applied: it is recorded as indeterminate (response time infinite). A write the
client proves was never sent (:class:`~raftstore.client.EndpointsUnavailable`) is
dropped, as is any failed read (a read changes nothing). Clients do not stop on errors:
they back off briefly and carry on, as an application would.

A watcher task watches the whole prefix from the revision the workload started at and
records every event; when the store is gone longer than the client's timeout, or the
stream fails in another way the client does not resume, it opens the watch again from
the revision after the last event it got (counted in :attr:`WorkloadResult.watch_reopens`);
only a compacted or canceled watch ends it. :func:`chaos.invariants.watch_continuity` compares
what it saw with a fresh replay of the same history.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

import trio

from chaos.linearizability import Operation, OpKind
from proto import rpc
from raftstore.client import (
    Compacted,
    EndpointsUnavailable,
    EventType,
    WatchCanceled,
    compare_value,
    key_absent,
    op_put,
    open_client,
)
from raftstore.client.client import Client

OPS = ("get", "put", "cas", "delete", "append")


@dataclass(frozen=True, kw_only=True)
class WorkloadConfig:
    clients: int = 4
    keys: int = 8
    """Register keys. Keep ``keys >= clients``: the checker's cost grows with the number
    of operations in flight on one key."""
    prefix: str = "/chaos/"
    op_timeout: float = 3.0
    """Give up on one operation after this long (a write then counts as indeterminate)."""
    mix: tuple[tuple[str, float], ...] = (
        ("get", 0.35),
        ("put", 0.2),
        ("cas", 0.15),
        ("delete", 0.05),
        ("append", 0.25),
    )
    seed: int = 0
    watch: bool = True

    def __post_init__(self) -> None:
        if self.clients < 1 or self.keys < 1:
            raise ValueError(f"clients and keys must be >= 1, not {self.clients}, {self.keys}")
        for name, weight in self.mix:
            if name not in OPS or weight < 0:
                raise ValueError(f"mix: {name!r}: weight {weight} (ops: {', '.join(OPS)})")
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise ValueError(f"prefix must start and end with '/', not {self.prefix!r}")


@dataclass(frozen=True)
class WatchedEvent:
    revision: int
    key: str
    type: str  # "PUT" or "DELETE"
    value: str


@dataclass
class WorkloadResult:
    """Everything the workload saw; filled in while it runs."""

    config: WorkloadConfig
    start_revision: int = 0
    history: list[Operation] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)
    """Appends the store acknowledged: key -> value."""
    maybe: dict[str, str] = field(default_factory=dict)
    """Appends whose outcome is unknown."""
    acked_revisions: dict[int, str] = field(default_factory=dict)
    """Revision -> key of every acknowledged write that changed something."""
    watched: list[WatchedEvent] = field(default_factory=list)
    watch_reopens: int = 0
    watch_error: str | None = None
    errors: dict[str, int] = field(default_factory=dict)
    ok: int = 0
    indeterminate: int = 0
    failed: int = 0

    def note_error(self, error: BaseException) -> None:
        name = type(error).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    def summary(self) -> str:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"{self.ok} ok, {self.indeterminate} indeterminate, {self.failed} failed "
            f"({len(self.acked)} acknowledged appends, {len(self.watched)} watched events, "
            f"{self.watch_reopens} watch reopens); errors: {errors}"
        )


def _rotated(endpoints: Sequence[str], n: int) -> list[str]:
    n %= len(endpoints)
    return [*endpoints[n:], *endpoints[:n]]


class _Client:
    """One workload client: its own store client, RNG, last reads and sequence."""

    def __init__(self, index: int, store: Client, result: WorkloadResult) -> None:
        self.index = index
        self.store = store
        self.result = result
        self.config = result.config
        self.rng = random.Random(f"{self.config.seed}/{index}")
        self.seq = 0
        self.last_read: dict[str, str | None] = {}
        names, weights = zip(*self.config.mix, strict=True)
        self.names, self.weights = list(names), list(weights)

    def fresh(self) -> str:
        self.seq += 1
        return f"c{self.index}-{self.seq}"

    async def run(self, stop: trio.Event) -> None:
        while not stop.is_set():
            name = self.rng.choices(self.names, self.weights)[0]
            if name == "append":
                failed = await self.append()
            else:
                failed = await self.register_op(OpKind(name))
            if failed:
                await trio.sleep(0.05 + self.rng.random() * 0.1)

    def _key(self) -> str:
        return f"{self.config.prefix}reg/{self.rng.randrange(self.config.keys)}"

    async def register_op(self, kind: OpKind) -> bool:
        """One register operation, recorded; True if it failed."""
        key = self._key()
        value = self.fresh() if kind in (OpKind.PUT, OpKind.CAS) else None
        expected = self.last_read.get(key) if kind is OpKind.CAS else None
        call = time.monotonic()
        output: object = None
        outcome = await self._attempt(
            kind is not OpKind.GET, self._call(kind, key, value, expected)
        )
        ret = time.monotonic()
        if outcome is _DROPPED:
            return True
        if outcome is _UNKNOWN:
            ret = math.inf
        else:
            output = outcome
            if kind is OpKind.GET:
                self.last_read[key] = outcome  # type: ignore[assignment]
        self.result.history.append(
            Operation(
                client=self.index,
                key=key,
                kind=kind,
                call=call,
                ret=ret,
                value=value,
                expected=expected,
                output=output,
            )
        )
        return outcome is _UNKNOWN

    async def _call(
        self, kind: OpKind, key: str, value: str | None, expected: str | None
    ) -> object:
        store, result = self.store, self.result
        if kind is OpKind.GET:
            got = await store.get(key)
            return None if got.kv is None else got.kv.value.decode()
        if kind is OpKind.PUT:
            assert value is not None
            put = await store.put(key, value)
            result.acked_revisions[put.revision] = key
            return None
        if kind is OpKind.CAS:
            assert value is not None
            compare = key_absent(key) if expected is None else compare_value(key, "=", expected)
            txn = await store.txn(compare=[compare], success=[op_put(key, value)])
            if txn.succeeded:
                result.acked_revisions[txn.revision] = key
            return txn.succeeded
        deleted = await store.delete(key)
        if deleted.deleted:
            result.acked_revisions[deleted.revision] = key
        return deleted.deleted

    async def append(self) -> bool:
        """One append of a fresh key; True if it failed."""
        key = f"{self.config.prefix}ack/{self.fresh()}"
        value = f"v-{key.rsplit('/', 1)[1]}"

        async def put() -> object:
            done = await self.store.put(key, value)
            self.result.acked_revisions[done.revision] = key
            return None

        outcome = await self._attempt(True, put())
        if outcome is _UNKNOWN:
            self.result.maybe[key] = value
        elif outcome is not _DROPPED:
            self.result.acked[key] = value
        return outcome is _UNKNOWN or outcome is _DROPPED

    async def _attempt(self, write: bool, call: Awaitable[object]) -> object:
        """Run one call within the op timeout: its value, or _UNKNOWN / _DROPPED."""
        result = self.result
        failure: BaseException | None = None
        value: object = _UNKNOWN
        with trio.move_on_after(self.config.op_timeout) as scope:
            try:
                value = await call
            except EndpointsUnavailable as exc:
                failure, value = exc, _DROPPED
            except rpc.RpcError as exc:
                failure, value = exc, (_UNKNOWN if write else _DROPPED)
        if scope.cancelled_caught:
            failure = TimeoutError(f"no answer within {self.config.op_timeout:g}s")
            value = _UNKNOWN if write else _DROPPED
        if failure is None:
            result.ok += 1
            return value
        result.note_error(failure)
        if value is _UNKNOWN:
            result.indeterminate += 1
        else:
            result.failed += 1
        return value


_UNKNOWN = object()
_DROPPED = object()


async def _watcher(endpoints: Sequence[str], result: WorkloadResult, stop: trio.Event) -> None:
    prefix = result.config.prefix
    next_revision = result.start_revision
    async with open_client(endpoints, timeout=result.config.op_timeout) as store:
        while not stop.is_set():
            try:
                async with store.watch(prefix, prefix=True, start_revision=next_revision) as w:
                    async for batch in w:
                        for event in batch.events:
                            result.watched.append(
                                WatchedEvent(
                                    revision=event.revision,
                                    key=event.kv.key.decode(),
                                    type="PUT" if event.type is EventType.PUT else "DELETE",
                                    value=event.kv.value.decode(),
                                )
                            )
                            next_revision = event.revision + 1
            except (Compacted, WatchCanceled) as exc:
                # The store cannot continue this watch without a gap.
                result.watch_error = f"{type(exc).__name__}: {exc}"
                return
            except rpc.RpcError as exc:
                # The store was unreachable for longer than the client's timeout, or the
                # stream broke in a way the client does not resume by itself (gRPC says
                # INTERNAL when a member dies mid-stream): open it again from the next
                # revision, as any watcher would.
                result.watch_reopens += 1
                result.note_error(exc)
                await trio.sleep(0.1)


async def current_revision(endpoints: Sequence[str], *, timeout: float) -> int:
    """The store's revision, retrying until it answers or ``timeout`` passes."""
    with trio.fail_after(timeout):
        async with open_client(endpoints, timeout=2.0) as store:
            while True:
                try:
                    return (await store.get("/", count_only=True)).revision
                except rpc.RpcError:
                    await trio.sleep(0.1)


async def run_workload(
    endpoints: Sequence[str],
    config: WorkloadConfig,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[WorkloadResult] = trio.TASK_STATUS_IGNORED,
) -> WorkloadResult:
    """Run the workload until ``stop`` is set; the recorded result.

    ``task_status.started(result)`` once every client and the watcher are running; the
    result fills in as the workload goes. Returns after every client's last operation
    has finished (at most ``op_timeout`` after ``stop``).
    """
    if not endpoints:
        raise ValueError("run_workload needs at least one store endpoint")
    result = WorkloadResult(config=config)
    result.start_revision = await current_revision(endpoints, timeout=30.0) + 1
    async with trio.open_nursery() as nursery:
        watch_stop = trio.Event()
        if config.watch:
            nursery.start_soon(_watcher, endpoints, result, watch_stop)
        async with trio.open_nursery() as clients:
            for index in range(config.clients):
                clients.start_soon(_run_client, index, _rotated(endpoints, index), result, stop)
            task_status.started(result)
        # Let the watcher catch up with the last writes before stopping it.
        if config.watch:
            await _wait_watch_caught_up(endpoints, result, timeout=10.0)
        watch_stop.set()
        nursery.cancel_scope.cancel()
    return result


async def _wait_watch_caught_up(
    endpoints: Sequence[str], result: WorkloadResult, *, timeout: float
) -> None:
    with trio.move_on_after(timeout):
        last = await current_revision(endpoints, timeout=timeout)
        while True:
            seen = result.watched[-1].revision if result.watched else result.start_revision - 1
            if seen >= last or result.watch_error:
                return
            await trio.sleep(0.05)


async def _run_client(
    index: int, endpoints: Sequence[str], result: WorkloadResult, stop: trio.Event
) -> None:
    async with open_client(endpoints, timeout=result.config.op_timeout) as store:
        await _Client(index, store, result).run(stop)
