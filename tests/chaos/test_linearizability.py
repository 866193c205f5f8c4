"""The linearizability checker on histories whose answer is known.

Small hand-written histories pin the semantics (stale reads, lost writes, double CAS,
indeterminate writes that may or may not have happened, ties); generated histories of
thousands of operations from a simulated linearizable store check both the "yes" answer
and the speed, and one corrupted read in such a history must be found.
"""

from __future__ import annotations

import math
import random
import time

import pytest

from chaos.linearizability import (
    KVModel,
    Operation,
    OpKind,
    Verdict,
    check,
)

pytestmark = pytest.mark.chaos

INF = math.inf


def put(c: int, call: float, ret: float, value: str, key: str = "k") -> Operation:
    return Operation(client=c, key=key, kind=OpKind.PUT, call=call, ret=ret, value=value)


def get(c: int, call: float, ret: float, output: str | None, key: str = "k") -> Operation:
    return Operation(client=c, key=key, kind=OpKind.GET, call=call, ret=ret, output=output)


def cas(
    c: int, call: float, ret: float, expected: str | None, value: str, output: bool | None
) -> Operation:
    return Operation(
        client=c,
        key="k",
        kind=OpKind.CAS,
        call=call,
        ret=ret,
        expected=expected,
        value=value,
        output=output,
    )


def delete(c: int, call: float, ret: float, output: int | None) -> Operation:
    return Operation(client=c, key="k", kind=OpKind.DELETE, call=call, ret=ret, output=output)


def verdict(*ops: Operation) -> Verdict:
    return check(list(ops)).verdict


# ----------------------------------------------------------------------------- basics


def test_sequential_write_then_read_is_linearizable() -> None:
    assert verdict(put(0, 0, 1, "a"), get(1, 2, 3, "a")) is Verdict.OK


def test_read_of_a_never_written_value_is_a_violation() -> None:
    assert verdict(put(0, 0, 1, "a"), get(1, 2, 3, "z")) is Verdict.VIOLATION


def test_stale_read_after_acknowledged_write_is_a_violation() -> None:
    assert verdict(put(0, 0, 1, "a"), put(0, 2, 3, "b"), get(1, 4, 5, "a")) is Verdict.VIOLATION


def test_lost_acknowledged_write_is_a_violation() -> None:
    assert verdict(put(0, 0, 1, "a"), get(1, 2, 3, None)) is Verdict.VIOLATION


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    base = put(0, 0, 1, "a")
    assert verdict(base, put(0, 2, 6, "b"), get(1, 3, 4, "a")) is Verdict.OK
    assert verdict(base, put(0, 2, 6, "b"), get(1, 3, 4, "b")) is Verdict.OK


def test_reads_may_not_flip_back_once_a_newer_value_was_seen() -> None:
    # Both writes overlap both reads, but once b was read, a cannot come back.
    history = [
        put(0, 0, 10, "a"),
        put(1, 0, 10, "b"),
        get(2, 1, 2, "b"),
        get(2, 3, 4, "a"),
        get(2, 5, 6, "b"),
    ]
    assert verdict(*history) is Verdict.VIOLATION


def test_concurrent_writes_then_reads_must_agree_on_the_winner() -> None:
    writes = [put(0, 0, 10, "a"), put(1, 0, 10, "b")]
    assert verdict(*writes, get(2, 11, 12, "a"), get(2, 13, 14, "a")) is Verdict.OK
    assert verdict(*writes, get(2, 11, 12, "a"), get(3, 13, 14, "b")) is Verdict.VIOLATION


def test_touching_intervals_count_as_concurrent() -> None:
    # put returns at t=1, the read is invoked at t=1: either order is allowed.
    assert verdict(put(0, 0, 1, "a"), get(1, 1, 2, None)) is Verdict.OK


# ----------------------------------------------------------------------------- cas, delete


def test_two_successful_cas_from_the_same_value_is_a_violation() -> None:
    start = put(0, 0, 1, "a")
    both = [cas(1, 2, 5, "a", "b", True), cas(2, 2, 5, "a", "c", True)]
    assert verdict(start, *both) is Verdict.VIOLATION
    one = [cas(1, 2, 5, "a", "b", True), cas(2, 2, 5, "a", "c", False)]
    assert verdict(start, *one, get(3, 6, 7, "b")) is Verdict.OK
    assert verdict(start, *one, get(3, 6, 7, "c")) is Verdict.VIOLATION


def test_failed_cas_must_have_seen_another_value() -> None:
    assert verdict(put(0, 0, 1, "a"), cas(1, 2, 3, "a", "b", False)) is Verdict.VIOLATION
    assert verdict(cas(1, 0, 1, None, "b", True), get(0, 2, 3, "b")) is Verdict.OK


def test_delete_reports_whether_the_key_existed() -> None:
    assert verdict(put(0, 0, 1, "a"), delete(1, 2, 3, 1), get(0, 4, 5, None)) is Verdict.OK
    assert verdict(delete(1, 0, 1, 1)) is Verdict.VIOLATION
    assert verdict(put(0, 0, 1, "a"), delete(1, 2, 3, 0)) is Verdict.VIOLATION


# ----------------------------------------------------------------------------- indeterminate


def test_indeterminate_write_may_never_take_effect() -> None:
    assert verdict(put(0, 0, INF, "a"), get(1, 5, 6, None)) is Verdict.OK


def test_indeterminate_write_may_take_effect_long_after_it_was_sent() -> None:
    history = [put(0, 0, INF, "a"), get(1, 5, 6, None), get(1, 7, 8, "a")]
    assert verdict(*history) is Verdict.OK


def test_indeterminate_write_takes_effect_at_most_once() -> None:
    history = [
        put(0, 0, INF, "a"),
        get(1, 5, 6, "a"),
        put(2, 7, 8, "b"),
        get(1, 9, 10, "a"),
    ]
    assert verdict(*history) is Verdict.VIOLATION


def test_indeterminate_write_cannot_take_effect_before_it_was_sent() -> None:
    assert verdict(get(1, 0, 1, "a"), put(0, 2, INF, "a")) is Verdict.VIOLATION


def test_indeterminate_cas_and_delete() -> None:
    history = [put(0, 0, 1, "a"), cas(1, 2, INF, "a", "b", None), get(2, 3, 4, "b")]
    assert verdict(*history) is Verdict.OK
    history = [put(0, 0, 1, "a"), delete(1, 2, INF, None), get(2, 3, 4, None)]
    assert verdict(*history) is Verdict.OK
    history = [put(0, 0, 1, "a"), cas(1, 2, INF, "x", "b", None), get(2, 3, 4, "b")]
    assert verdict(*history) is Verdict.VIOLATION


# ----------------------------------------------------------------------------- keys, reports


def test_keys_are_checked_independently_and_the_failing_key_is_named() -> None:
    history = [
        put(0, 0, 1, "a", key="good"),
        get(1, 2, 3, "a", key="good"),
        put(0, 0, 1, "a", key="bad"),
        put(0, 2, 3, "b", key="bad"),
        get(1, 4, 5, "a", key="bad"),
    ]
    result = check(history)
    assert result.verdict is Verdict.VIOLATION
    assert [k.key for k in result.failures()] == ["bad"]
    failure = result.failures()[0]
    assert failure.stuck_on is not None and failure.stuck_on.kind is OpKind.GET
    assert "bad: NOT linearizable" in result.explain()


def test_operation_json_round_trip_keeps_indeterminate() -> None:
    op = cas(3, 1.5, INF, None, "v", None)
    again = Operation.from_json(op.to_json())
    assert again == op and again.indeterminate


def test_an_operation_cannot_return_before_it_is_called() -> None:
    with pytest.raises(ValueError, match="before it is called"):
        put(0, 5, 4, "a")


# ----------------------------------------------------------------------------- generated


def simulate(
    rng: random.Random,
    *,
    ops: int,
    clients: int,
    keys: int,
    indeterminate: float = 0.0,
) -> list[Operation]:
    """A history of a linearizable store: each op takes effect at a random instant inside
    its interval; outputs come from applying the ops in that order to a dict."""
    planned: list[tuple[float, int, str, OpKind, float, float, str | None, str | None]] = []
    clock = [0.0] * clients
    for n in range(ops):
        c = rng.randrange(clients)
        call = clock[c] + rng.random()
        ret = call + rng.random() * 3
        clock[c] = ret
        point = rng.uniform(call, ret)
        kind = rng.choice([OpKind.PUT, OpKind.GET, OpKind.GET, OpKind.CAS, OpKind.DELETE])
        key = f"k{rng.randrange(keys)}"
        value = f"v{n}"
        expected = f"v{rng.randrange(max(n, 1))}" if rng.random() < 0.5 else None
        planned.append((point, c, key, kind, call, ret, value, expected))
    state: dict[str, str | None] = {}
    history = []
    for _point, c, key, kind, call, ret, value, expected in sorted(planned):
        current = state.get(key)
        lost = kind is not OpKind.GET and rng.random() < indeterminate
        output: object = None
        if kind is OpKind.GET:
            output = current
        elif kind is OpKind.PUT:
            state[key] = value
        elif kind is OpKind.CAS:
            output = current == expected
            if output:
                state[key] = value
        else:
            output = 0 if current is None else 1
            state[key] = None
        if lost:
            # Outcome unknown to the client; half of these really took effect.
            if rng.random() < 0.5:
                state[key] = current
            output = None
        history.append(
            Operation(
                client=c,
                key=key,
                kind=kind,
                call=call,
                ret=INF if lost else ret,
                value=value if kind in (OpKind.PUT, OpKind.CAS) else None,
                expected=expected if kind is OpKind.CAS else None,
                output=output,
            )
        )
    return history


def test_model_agrees_with_the_simulation() -> None:
    history = simulate(random.Random(7), ops=300, clients=1, keys=2)
    for op in history:
        assert op.ret >= op.call
    assert check(history).ok


@pytest.mark.parametrize("seed", range(5))
def test_generated_linearizable_histories_pass(seed: int) -> None:
    history = simulate(random.Random(seed), ops=600, clients=6, keys=3, indeterminate=0.05)
    result = check(history)
    assert result.verdict is Verdict.OK, result.explain()


def test_thousands_of_operations_check_in_seconds() -> None:
    history = simulate(random.Random(42), ops=4000, clients=8, keys=8, indeterminate=0.02)
    started = time.monotonic()
    result = check(history, timeout=20)
    took = time.monotonic() - started
    assert result.verdict is Verdict.OK, result.explain()
    assert took < 5.0, f"{len(history)} operations took {took:.1f}s"


def test_one_corrupted_read_in_a_long_history_is_found() -> None:
    history = simulate(random.Random(3), ops=2000, clients=6, keys=4)
    reads = [i for i, op in enumerate(history) if op.kind is OpKind.GET and op.output]
    victim = history[reads[len(reads) // 2]]
    history[reads[len(reads) // 2]] = Operation(
        client=victim.client,
        key=victim.key,
        kind=OpKind.GET,
        call=victim.call,
        ret=victim.ret,
        output="never-written",
    )
    started = time.monotonic()
    result = check(history, timeout=20)
    assert result.verdict is Verdict.VIOLATION
    assert [k.key for k in result.failures()] == [victim.key]
    assert time.monotonic() - started < 10.0


def test_search_that_runs_out_of_time_says_unknown() -> None:
    # 18 concurrent indeterminate writes and a read of a value nobody wrote: proving the
    # violation means trying every subset of the writes.
    writes = [put(i, 0, INF, f"w{i}") for i in range(18)]
    history = [*writes, put(99, 0, 1, "a"), get(98, 2, 3, "zz")]
    result = check(history, timeout=0.05)
    assert result.verdict is Verdict.UNKNOWN


def test_model_step_is_pure() -> None:
    op = put(0, 0, 1, "a")
    assert KVModel.step(None, op) == (True, "a")
    assert KVModel.step("x", get(0, 0, 1, "x")) == (True, "x")


# ----------------------------------------------------------------------------- brute force


def brute_force(history: list[Operation]) -> bool:
    """Linearizable by definition: some subset of the indeterminate operations, in some
    order respecting real time, together with every determinate one, is legal."""
    import itertools

    determinate = [op for op in history if not op.indeterminate]
    maybe = [op for op in history if op.indeterminate]
    for k in range(len(maybe) + 1):
        for chosen in itertools.combinations(maybe, k):
            ops = determinate + list(chosen)
            for order in itertools.permutations(ops):
                if any(
                    later.ret < earlier.call
                    for i, earlier in enumerate(order)
                    for later in order[i + 1 :]
                ):
                    continue
                state: str | None = None
                for op in order:
                    ok, state = KVModel.step(state, op)
                    if not ok:
                        break
                else:
                    return True
    return False


def random_history(rng: random.Random) -> list[Operation]:
    """A small history with arbitrary (often impossible) outputs on one key."""
    written = ["a", "b", "c"]
    ops = []
    for n in range(rng.randint(2, 6)):
        call = rng.uniform(0, 10)
        ret = INF if rng.random() < 0.2 else call + rng.uniform(0, 4)
        kind = rng.choice(list(OpKind))
        value = written[n % 3] + str(n)
        output: object = None
        if ret != INF:
            if kind is OpKind.GET:
                output = rng.choice([None, *(w + str(i) for i, w in enumerate(written))])
            elif kind is OpKind.CAS:
                output = rng.random() < 0.5
            elif kind is OpKind.DELETE:
                output = rng.randint(0, 1)
        if kind is OpKind.GET and ret == INF:
            ret = call + 1
        expected = rng.choice([None, "a0", "b1", "c2"]) if kind is OpKind.CAS else None
        ops.append(
            Operation(
                client=n,
                key="k",
                kind=kind,
                call=call,
                ret=ret,
                value=value if kind in (OpKind.PUT, OpKind.CAS) else None,
                expected=expected,
                output=output,
            )
        )
    return ops


def test_checker_agrees_with_brute_force_on_small_histories() -> None:
    rng = random.Random(2024)
    verdicts = {True: 0, False: 0}
    for _ in range(600):
        history = random_history(rng)
        expected = brute_force(history)
        got = check(history).verdict
        assert got is (Verdict.OK if expected else Verdict.VIOLATION), "\n".join(
            op.describe() for op in history
        )
        verdicts[expected] += 1
    assert verdicts[True] > 50 and verdicts[False] > 50, verdicts
