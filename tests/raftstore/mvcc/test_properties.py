"""Property tests: MvccStore against a deliberately naive reference model.

The model keeps one full dict per revision and a flat event list, and knows nothing about
generations, logs or compaction internals. Random sequences of put / delete / txn /
compact / lease operations are applied to both; after every step, reads at random past
revisions and watch histories from random starts must agree, and a second store fed the
same commands must produce identical results and hashes. At the end, a store restored from
a snapshot must be indistinguishable from the original, now and after more commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto.etcdserverpb import rpc_pb2 as pb
from proto.mvccpb import kv_pb2
from raftstore.mvcc import ApplyResult, MvccStore, errors, make_command
from raftstore.mvcc.commands import Request

KEYS = [b"a", b"ab", b"b", b"ba", b"c"]
RANGE_ENDS = [b"", b"", b"\0", b"b", b"c", b"d", b"ab"]


# ============================================================================ the model


@dataclass(frozen=True)
class KV:
    value: bytes
    create: int
    mod: int
    version: int
    lease: int = 0


@dataclass(frozen=True)
class Ev:
    rev: int
    deleted: bool
    key: bytes
    kv: KV | None  # None for a delete
    prev: KV | None


def selects(candidate: bytes, key: bytes, end: bytes) -> bool:
    if end == b"":
        return candidate == key
    if end == b"\0":
        return candidate >= key
    return key <= candidate < end


@dataclass
class Model:
    states: list[dict[bytes, KV]] = field(default_factory=lambda: [{}, {}])  # index = revision
    events: list[Ev] = field(default_factory=list)
    compacted: int = 0
    leases: dict[int, int] = field(default_factory=dict)

    @property
    def rev(self) -> int:
        return len(self.states) - 1

    def select(self, state: dict[bytes, KV], key: bytes, end: bytes) -> list[tuple[bytes, KV]]:
        return sorted((k, v) for k, v in state.items() if selects(k, key, end))

    # -- writes on a working copy; `changes` collects events for revision rev+1

    def put(
        self, work: dict[bytes, KV], changes: list[Ev], key: bytes, value: bytes, lease: int
    ) -> None:
        prev = work.get(key)
        new_rev = self.rev + 1
        kv = KV(
            value, prev.create if prev else new_rev, new_rev, prev.version + 1 if prev else 1, lease
        )
        work[key] = kv
        changes.append(Ev(new_rev, False, key, kv, prev))

    def delete(self, work: dict[bytes, KV], changes: list[Ev], key: bytes, end: bytes) -> int:
        targets = self.select(work, key, end)
        for k, kv in targets:
            del work[k]
            changes.append(Ev(self.rev + 1, True, k, None, kv))
        return len(targets)

    def commit(self, work: dict[bytes, KV], changes: list[Ev]) -> None:
        if changes:
            self.states.append(work)
            self.events.extend(changes)


# ============================================================================ operations

keys = st.sampled_from(KEYS)
values = st.sampled_from([b"", b"x", b"y", b"zz"])
ranges = st.tuples(keys, st.sampled_from(RANGE_ENDS))


@st.composite
def txn_ops(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    n = draw(st.integers(0, 4))
    ops: list[tuple[Any, ...]] = []
    for _ in range(n):
        kind = draw(st.sampled_from(["put", "put", "delete", "range"]))
        if kind == "put":
            ops.append(("put", draw(keys), draw(values)))
        else:
            key, end = draw(ranges)
            ops.append((kind, key, end))
    return ops


@st.composite
def compares(draw: st.DrawFn) -> pb.Compare:
    key, end = draw(st.sampled_from([(k, b"") for k in KEYS] + [(b"a", b"b"), (b"b", b"\0")]))
    target = draw(st.sampled_from(["VERSION", "CREATE", "MOD", "VALUE"]))
    result = draw(st.sampled_from(["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]))
    compare = pb.Compare(
        key=key,
        range_end=end,
        target=getattr(pb.Compare, target),
        result=getattr(pb.Compare, result),
    )
    if target == "VALUE":
        compare.value = draw(values)
    else:
        setattr(
            compare,
            {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision"}[target],
            draw(st.integers(0, 6)),
        )
    return compare


def compare_model(model: Model, compare: pb.Compare) -> bool:
    found = model.select(model.states[model.rev], compare.key, compare.range_end)
    target = pb.Compare.CompareTarget.Name(compare.target)
    result = pb.Compare.CompareResult.Name(compare.result)
    if not found:
        if target == "VALUE":
            return False
        found = [(compare.key, KV(b"", 0, 0, 0))]
    for _, kv in found:
        ours, theirs = {
            "VERSION": (kv.version, compare.version),
            "CREATE": (kv.create, compare.create_revision),
            "MOD": (kv.mod, compare.mod_revision),
            "VALUE": (kv.value, compare.value),
        }[target]
        ok = {
            "EQUAL": ours == theirs,
            "NOT_EQUAL": ours != theirs,
            "GREATER": ours > theirs,  # type: ignore[operator]
            "LESS": ours < theirs,  # type: ignore[operator]
        }[result]
        if not ok:
            return False
    return True


def to_request_op(op: tuple[Any, ...]) -> pb.RequestOp:
    if op[0] == "put":
        return pb.RequestOp(request_put=pb.PutRequest(key=op[1], value=op[2], prev_kv=True))
    if op[0] == "delete":
        return pb.RequestOp(
            request_delete_range=pb.DeleteRangeRequest(key=op[1], range_end=op[2], prev_kv=True)
        )
    return pb.RequestOp(request_range=pb.RangeRequest(key=op[1], range_end=op[2]))


def has_duplicates(ops: list[tuple[Any, ...]]) -> bool:
    puts = [op[1] for op in ops if op[0] == "put"]
    deletes = [(op[1], op[2]) for op in ops if op[0] == "delete"]
    return len(puts) != len(set(puts)) or any(selects(p, k, e) for p in puts for k, e in deletes)


# ============================================================================ checks


def kv_of(kv: kv_pb2.KeyValue) -> KV:
    return KV(kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def check_range_kvs(kvs: Any, expected: list[tuple[bytes, KV]]) -> None:
    assert [(kv.key, kv_of(kv)) for kv in kvs] == expected


def check_events(got: list[kv_pb2.Event] | tuple[kv_pb2.Event, ...], expected: list[Ev]) -> None:
    summary = []
    for e in got:
        deleted = e.type == kv_pb2.Event.DELETE
        if deleted:
            assert (e.kv.value, e.kv.version, e.kv.create_revision) == (b"", 0, 0)
        prev = kv_of(e.prev_kv) if e.HasField("prev_kv") else None
        summary.append(
            Ev(e.kv.mod_revision, deleted, e.kv.key, None if deleted else kv_of(e.kv), prev)
        )
    assert summary == expected


def check_reads(store: MvccStore, model: Model, data: st.DataObject) -> None:
    key, end = data.draw(ranges, label="read range")
    edges = st.sampled_from([model.compacted - 1, model.compacted, model.compacted + 1])
    revision = data.draw(
        st.integers(0, model.rev + 1) | edges.filter(lambda r: r >= 0), label="read revision"
    )
    limit = data.draw(st.sampled_from([0, 0, 1, 2]), label="limit")
    request = pb.RangeRequest(key=key, range_end=end, revision=revision, limit=limit)
    at = revision or model.rev
    try:
        response = store.range(request)
    except errors.FutureRevisionError:
        assert at > model.rev
        return
    except errors.CompactedError as exc:
        assert at < model.compacted and exc.compact_revision == model.compacted
        return
    assert model.compacted <= at <= model.rev
    expected = model.select(model.states[at], key, end)
    assert response.count == len(expected) and response.header.revision == model.rev
    shown = expected[:limit] if limit else expected
    check_range_kvs(response.kvs, shown)
    assert response.more == (len(shown) < len(expected))

    start = data.draw(st.integers(0, model.rev + 1) | edges, label="watch start")
    wkey, wend = data.draw(ranges, label="watch range")
    try:
        got = store.events_since(start, wkey, wend, prev_kv=True)
    except errors.CompactedError:
        assert max(start, 1) < model.compacted
        return
    assert max(start, 1) >= model.compacted
    check_events(got, [e for e in model.events if e.rev >= start and selects(e.key, wkey, wend)])


# ============================================================================ the driver


class Twin:
    """Two stores fed identical commands; their results must match exactly."""

    def __init__(self) -> None:
        self.stores = [MvccStore(), MvccStore()]
        self.index = 0

    def apply(self, request: Request) -> ApplyResult:
        self.index += 1
        command = make_command(request)
        first, second = (s.apply(command, index=self.index) for s in self.stores)
        assert first == second
        return first


def step(twin: Twin, model: Model, data: st.DataObject) -> None:
    store = twin.stores[0]
    kind = data.draw(
        st.sampled_from(["put", "put", "put", "delete", "txn", "txn", "compact", "lease"])
    )
    work = dict(model.states[model.rev])
    changes: list[Ev] = []
    before = store.revision

    if kind == "put":
        key, value = data.draw(keys), data.draw(values)
        lease = data.draw(st.sampled_from([0, *model.leases, 999]))
        result = twin.apply(pb.PutRequest(key=key, value=value, lease=lease, prev_kv=True))
        if lease and lease not in model.leases:
            assert isinstance(result.error, errors.LeaseNotFound)
            return
        prev = work.get(key)
        model.put(work, changes, key, value, lease)
        assert isinstance(result.response, pb.PutResponse)
        assert (
            kv_of(result.response.prev_kv) if result.response.HasField("prev_kv") else None
        ) == prev

    elif kind == "delete":
        key, end = data.draw(ranges)
        result = twin.apply(pb.DeleteRangeRequest(key=key, range_end=end, prev_kv=True))
        expected_prev = model.select(work, key, end)
        deleted = model.delete(work, changes, key, end)
        assert isinstance(result.response, pb.DeleteRangeResponse)
        assert result.response.deleted == deleted
        check_range_kvs(result.response.prev_kvs, expected_prev)

    elif kind == "txn":
        cmps = data.draw(st.lists(compares(), max_size=2))
        success, failure = data.draw(txn_ops()), data.draw(txn_ops())
        request = pb.TxnRequest(
            compare=cmps,
            success=[to_request_op(op) for op in success],
            failure=[to_request_op(op) for op in failure],
        )
        result = twin.apply(request)
        if has_duplicates(success) or has_duplicates(failure):
            assert isinstance(result.error, errors.DuplicateKey)
            return
        succeeded = all(compare_model(model, c) for c in cmps)
        response = result.response
        assert isinstance(response, pb.TxnResponse) and response.succeeded == succeeded
        for op, out in zip(success if succeeded else failure, response.responses, strict=True):
            if op[0] == "put":
                model.put(work, changes, op[1], op[2], 0)
            elif op[0] == "delete":
                assert out.response_delete_range.deleted == model.delete(
                    work, changes, op[1], op[2]
                )
            else:
                check_range_kvs(out.response_range.kvs, model.select(work, op[1], op[2]))
                assert out.response_range.header.revision == model.rev + (1 if changes else 0)

    elif kind == "compact":
        revision = data.draw(st.integers(0, model.rev + 1))
        result = twin.apply(pb.CompactionRequest(revision=revision))
        if revision <= model.compacted:
            assert isinstance(result.error, errors.CompactedError)
        elif revision > model.rev:
            assert isinstance(result.error, errors.FutureRevisionError)
        else:
            assert result.error is None
            model.compacted = revision
        return

    else:  # lease: grant, or revoke (which deletes the attached keys)
        if len(model.leases) > 0 and data.draw(st.booleans()):
            lease = data.draw(st.sampled_from(sorted(model.leases)))
            result = twin.apply(pb.LeaseRevokeRequest(ID=lease))
            assert result.error is None
            attached = sorted(k for k, kv in work.items() if kv.lease == lease)
            for k in attached:
                model.delete(work, changes, k, b"")
            del model.leases[lease]
        else:
            result = twin.apply(pb.LeaseGrantRequest(TTL=data.draw(st.integers(0, 100))))
            assert isinstance(result.response, pb.LeaseGrantResponse)
            model.leases[result.response.ID] = result.response.TTL

    assert result.error is None
    check_events(result.events, changes)
    model.commit(work, changes)
    assert store.revision == model.rev == before + (1 if changes else 0)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_store_matches_model(data: st.DataObject) -> None:
    twin, model = Twin(), Model()
    for _ in range(data.draw(st.integers(1, 30), label="steps")):
        step(twin, model, data)
        check_reads(twin.stores[0], model, data)
        assert twin.stores[0].hash() == twin.stores[1].hash()
    store = twin.stores[0]
    assert store.compact_revision == model.compacted
    assert store.leases() == sorted(model.leases)
    for lease in model.leases:
        assert store.lease_keys(lease) == sorted(
            k for k, kv in model.states[model.rev].items() if kv.lease == lease
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_restore_behaves_identically(data: st.DataObject) -> None:
    twin, model = Twin(), Model()
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        step(twin, model, data)
    original = twin.stores[0]
    restored = MvccStore.restore(original.snapshot())
    assert restored.snapshot() == original.snapshot() and restored.hash() == original.hash()
    for rev in range(max(model.compacted, 1), model.rev + 1):
        for key, end in [(b"\0", b"\0"), (b"a", b"b"), (b"b", b"")]:
            request = pb.RangeRequest(key=key, range_end=end, revision=rev)
            assert restored.range(request) == original.range(request)
        assert restored.events_since(rev, b"\0", b"\0", prev_kv=True) == original.events_since(
            rev, b"\0", b"\0", prev_kv=True
        )
    # From here on, the restored store replaces the twin: same commands, same results.
    twin.stores[1] = restored
    for _ in range(data.draw(st.integers(1, 10), label="more steps")):
        step(twin, model, data)
        check_reads(restored, model, data)
    assert restored.hash() == original.hash()
