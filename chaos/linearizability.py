"""Is a recorded history of key-value operations linearizable?

The question. Concurrent clients called a store; for each operation we know when it was
invoked, when it returned (if it did), and what it returned. The history is
*linearizable* if every operation can be given one instant between its invocation and
its response at which it took effect, such that the operations in that order, applied
one by one to a plain sequential key-value map, return exactly what the clients saw.
That is the contract etcd (and so raftstore) promises for its KV API; a store that loses
an acknowledged write, serves a stale read after a newer write was acknowledged, or
applies a compare-and-swap twice, produces a history that is not.

The algorithm is Wing and Gong's search, with Lowe's memoization, as used by Knossos and
Porcupine:

* Each operation becomes a *call* and a *return* entry in one list sorted by time.
  (Ties put calls first: two operations whose times touch count as concurrent, so a
  coarse clock can only make the check more permissive, never report a false violation.)
* Walk the list. At a call, try to linearize that operation now: if the model accepts
  it from the current state, remove its call and return from the list, push
  ``(entry, previous state)`` on a stack, and start again from the head. At a return
  whose call has not been linearized, that operation had to take effect before this
  point and could not: backtrack -- pop the last linearized operation, put its entries
  back, and try the next call after it.
* Lowe's memoization: the pair (set of linearized operations, model state) determines
  everything that can follow, so a pair seen before is never explored again. The set is
  a Python int used as a bitset.

* Read-only operations go first without branching: a get, a failed cas or a delete
  that found nothing, allowed in the current state, can be moved to the front of any
  valid continuation (it changes nothing, and no pending operation returned before it
  was called), so trying alternatives to it is wasted work. Checked against a brute-force
  enumeration of small histories in the tests.

It succeeds when every operation with a known outcome is linearized.

Indeterminate operations -- a write that timed out or whose connection broke, so it may
or may not have taken effect -- have no return entry (their response time is infinite):
the search may linearize them anywhere after their invocation, or not at all (which is
indistinguishable from linearizing them after everything else). Their output is unknown
and not checked. A read that failed has no effect and is simply left out of the history.

Locality (Herlihy and Wing): a history is linearizable iff the sub-history of every
object is. Every operation here touches one key, so the history is split per key and each
key is checked alone (:func:`check`), which turns one exponential search into many small
ones. Worst case remains exponential (linearizability checking is NP-complete), so each
check has a time budget; running out gives :attr:`Verdict.UNKNOWN`, never a guess.

The model (:class:`KVModel`): a key's state is its value or ``None`` (absent).
``put(v)`` sets it; ``get`` returns it; ``cas(expected, new)`` sets ``new`` and returns
True iff the value equals ``expected`` (``None``: iff absent), else returns False and
changes nothing; ``delete`` removes it and returns how many keys it deleted (0 or 1).
"""

from __future__ import annotations

import enum
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class OpKind(enum.StrEnum):
    PUT = "put"
    GET = "get"
    CAS = "cas"
    DELETE = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One client operation on one key.

    ``value``: the value a put or cas writes. ``expected``: the value a cas compares
    against (None: the key must be absent). ``output``: what came back -- a get's value
    (None: absent), a cas's success (bool), a delete's count of deleted keys; None for a
    put and for every indeterminate operation. ``ret`` is ``math.inf`` for an operation
    whose outcome is unknown.
    """

    client: int
    key: str
    kind: OpKind
    call: float
    ret: float
    value: str | None = None
    expected: str | None = None
    output: Any = None

    @property
    def indeterminate(self) -> bool:
        return math.isinf(self.ret)

    def __post_init__(self) -> None:
        if self.ret < self.call:
            raise ValueError(f"operation returns ({self.ret}) before it is called ({self.call})")

    def describe(self) -> str:
        kind = self.kind.value
        if self.kind is OpKind.PUT:
            what = f"put({self.value!r})"
        elif self.kind is OpKind.CAS:
            what = f"cas({self.expected!r} -> {self.value!r})"
        else:
            what = f"{kind}()"
        out = "?" if self.indeterminate else repr(self.output)
        ret = "inf" if self.indeterminate else f"{self.ret:.6f}"
        return f"client {self.client} {self.key} {what} -> {out} [{self.call:.6f}, {ret}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "key": self.key,
            "kind": self.kind.value,
            "call": self.call,
            "ret": None if self.indeterminate else self.ret,
            "value": self.value,
            "expected": self.expected,
            "output": self.output,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Operation:
        ret = raw.get("ret")
        return cls(
            client=int(raw["client"]),
            key=str(raw["key"]),
            kind=OpKind(raw["kind"]),
            call=float(raw["call"]),
            ret=math.inf if ret is None else float(ret),
            value=raw.get("value"),
            expected=raw.get("expected"),
            output=raw.get("output"),
        )


class KVModel:
    """The sequential specification of one key (see the module doc)."""

    init: str | None = None

    @staticmethod
    def step(state: str | None, op: Operation) -> tuple[bool, str | None]:
        """Whether ``op`` may happen in ``state`` with the output it had; the next state."""
        unknown = op.indeterminate
        if op.kind is OpKind.GET:
            return (unknown or op.output == state), state
        if op.kind is OpKind.PUT:
            return True, op.value
        if op.kind is OpKind.CAS:
            matches = state == op.expected
            if unknown:
                return True, op.value if matches else state
            if op.output:
                return matches, op.value
            return not matches, state
        if op.kind is OpKind.DELETE:
            if unknown:
                return True, None
            return (op.output == (0 if state is None else 1)), None
        raise ValueError(f"unknown operation kind {op.kind!r}")


class Verdict(enum.StrEnum):
    OK = "linearizable"
    VIOLATION = "not linearizable"
    UNKNOWN = "unknown (time budget exhausted)"


@dataclass(frozen=True)
class KeyResult:
    """The verdict for one key; for a violation, where the search got stuck."""

    key: str
    verdict: Verdict
    operations: int
    longest_prefix: tuple[Operation, ...] = ()
    """The longest sequence of operations the search could linearize (violations)."""
    stuck_on: Operation | None = None
    """An operation that had to take effect before that point and could not."""

    def explain(self) -> str:
        if self.verdict is Verdict.OK:
            return f"{self.key}: linearizable ({self.operations} operations)"
        if self.verdict is Verdict.UNKNOWN:
            return f"{self.key}: {self.verdict.value} after checking {self.operations} operations"
        lines = [
            f"{self.key}: NOT linearizable ({self.operations} operations); "
            f"the longest linearizable prefix has {len(self.longest_prefix)}:"
        ]
        lines += [f"    {op.describe()}" for op in self.longest_prefix[-8:]]
        if self.stuck_on is not None:
            lines.append(f"  then no order allows: {self.stuck_on.describe()}")
        return "\n".join(lines)


@dataclass(frozen=True)
class CheckResult:
    verdict: Verdict
    operations: int
    indeterminate: int
    keys: tuple[KeyResult, ...] = field(default=())
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def failures(self) -> list[KeyResult]:
        return [k for k in self.keys if k.verdict is not Verdict.OK]

    def explain(self) -> str:
        head = (
            f"{self.verdict.value}: {self.operations} operations on {len(self.keys)} keys "
            f"({self.indeterminate} indeterminate), checked in {self.seconds:.2f}s"
        )
        return "\n".join([head, *(k.explain() for k in self.failures())])


class _Budget(Exception):
    pass


def _read_only(op: Operation) -> bool:
    """Whether ``op``'s outcome says it changed nothing, wherever it is linearized."""
    if op.indeterminate:
        return False
    if op.kind is OpKind.GET:
        return True
    if op.kind is OpKind.CAS:
        return op.output is False
    return op.kind is OpKind.DELETE and op.output == 0


def check_key(
    ops: Sequence[Operation], *, key: str = "", model: type[KVModel] = KVModel, deadline: float
) -> KeyResult:
    """Check the history of one key (Wing-Gong search with Lowe's memoization)."""
    ops = sorted(ops, key=lambda o: o.call)
    n = len(ops)
    # Entries: (time, 0 for call / 1 for return, op index). Indeterminate ops: call only.
    raw = [(op.call, 0, i) for i, op in enumerate(ops)]
    raw += [(op.ret, 1, i) for i, op in enumerate(ops) if not op.indeterminate]
    raw.sort()
    size = len(raw) + 1  # slot 0 is the head sentinel
    nil = -1
    is_call = [False] * size
    op_of = [0] * size
    match = [nil] * size  # call entry -> its return entry
    call_entry = [0] * n
    for slot, (_, kind, i) in enumerate(raw, start=1):
        is_call[slot] = kind == 0
        op_of[slot] = i
        if kind == 0:
            call_entry[i] = slot
        else:
            match[call_entry[i]] = slot
    nxt = [slot + 1 for slot in range(size)]
    nxt[-1] = nil
    prv = [slot - 1 for slot in range(size)]

    def unlink(x: int) -> None:
        nxt[prv[x]] = nxt[x]
        if nxt[x] != nil:
            prv[nxt[x]] = prv[x]

    def relink(x: int) -> None:
        nxt[prv[x]] = x
        if nxt[x] != nil:
            prv[nxt[x]] = x

    step = model.step
    read_only = [_read_only(op) for op in ops]
    remaining = sum(1 for op in ops if not op.indeterminate)
    state: str | None = model.init
    linearized = 0
    seen: set[tuple[int, str | None]] = set()
    # (call entry, state before it, forced): a forced entry is an operation that left the
    # state unchanged; it was the only choice worth trying there (see below).
    stack: list[tuple[int, str | None, bool]] = []
    best: list[int] = []
    stuck: int | None = None
    entry = nxt[0]
    steps = 0
    while remaining:
        steps += 1
        if steps & 0x3FF == 0 and time.monotonic() > deadline:
            return KeyResult(key, Verdict.UNKNOWN, n)
        backtrack = False
        if entry != nil and is_call[entry]:
            op = ops[op_of[entry]]
            ok, new_state = step(state, op)
            if ok:
                # A read-only operation (by its outcome: a get, a cas that failed, a
                # delete that found nothing) that is allowed now can always go first: in
                # any valid order that puts it later it changes nothing either, and
                # moving it here breaks no real-time order, since no pending operation
                # returned before it was called (we met no return on the way). So it is
                # linearized without trying alternatives, and if that fails, so does
                # every alternative at this point. (Not for indeterminate operations: a
                # cas of unknown outcome may fail here and take effect later.)
                forced = read_only[op_of[entry]]
                bit = 1 << op_of[entry]
                memo = (linearized | bit, new_state)
                if memo not in seen:
                    seen.add(memo)
                    stack.append((entry, state, forced))
                    state, linearized = new_state, linearized | bit
                    unlink(entry)
                    if match[entry] != nil:
                        unlink(match[entry])
                        remaining -= 1
                    entry = nxt[0]
                    continue
                backtrack = forced
            if not backtrack:
                entry = nxt[entry]
                continue
        # A return whose operation is not linearized (or the end of the list), or a
        # forced operation whose outcome is known to fail: backtrack.
        if len(stack) >= len(best):
            best = [e for e, _, _ in stack]
            stuck = op_of[entry] if entry != nil and not backtrack else stuck
        while True:
            if not stack:
                prefix = tuple(ops[op_of[e]] for e in best)
                return KeyResult(
                    key,
                    Verdict.VIOLATION,
                    n,
                    longest_prefix=prefix,
                    stuck_on=ops[stuck] if stuck is not None else None,
                )
            entry, state, forced = stack.pop()
            linearized &= ~(1 << op_of[entry])
            if match[entry] != nil:
                relink(match[entry])
                remaining += 1
            relink(entry)
            if not forced:
                break
        entry = nxt[entry]
    return KeyResult(key, Verdict.OK, n)


def _unobserved(ops: Sequence[Operation]) -> set[int]:
    """Indexes of indeterminate writes whose value no operation ever saw or compared with."""
    seen = {op.output for op in ops if op.kind is OpKind.GET and not op.indeterminate}
    seen |= {op.expected for op in ops if op.kind is OpKind.CAS}
    return {
        i
        for i, op in enumerate(ops)
        if op.indeterminate and op.kind in (OpKind.PUT, OpKind.CAS) and op.value not in seen
    }


def _check_pruned_first(
    ops: Sequence[Operation], *, key: str, model: type[KVModel], deadline: float
) -> KeyResult:
    """Try without the unobserved indeterminate writes first, then with everything.

    Pending indeterminate operations are what makes the search slow: each may be
    linearized at every point, or never. Leaving one out is the same as deciding it
    never took effect, which is always allowed -- so if the history minus the
    indeterminate writes nobody observed is linearizable, the whole history is. Only if
    it is not do we search with them (they may be what explains a failed cas or a delete
    that found the key), which is exact but may take much longer.
    """
    dropped = _unobserved(ops)
    if dropped:
        fast = [op for i, op in enumerate(ops) if i not in dropped]
        result = check_key(fast, key=key, model=model, deadline=deadline)
        if result.verdict is Verdict.OK:
            return KeyResult(key, Verdict.OK, len(ops))
    return check_key(ops, key=key, model=model, deadline=deadline)


def check(
    history: Iterable[Operation], *, timeout: float = 30.0, model: type[KVModel] = KVModel
) -> CheckResult:
    """Check a whole history, key by key; within ``timeout`` seconds in all.

    Any key that is not linearizable makes the history not linearizable; a key whose
    search ran out of time makes it :attr:`Verdict.UNKNOWN` unless another key already
    proves a violation.
    """
    started = time.monotonic()
    deadline = started + timeout
    by_key: dict[str, list[Operation]] = defaultdict(list)
    total = indeterminate = 0
    for op in history:
        by_key[op.key].append(op)
        total += 1
        indeterminate += op.indeterminate
    results = tuple(
        _check_pruned_first(ops, key=key, model=model, deadline=deadline)
        for key, ops in sorted(by_key.items())
    )
    verdicts = {r.verdict for r in results}
    if Verdict.VIOLATION in verdicts:
        verdict = Verdict.VIOLATION
    elif Verdict.UNKNOWN in verdicts:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.OK
    return CheckResult(
        verdict=verdict,
        operations=total,
        indeterminate=indeterminate,
        keys=results,
        seconds=time.monotonic() - started,
    )
