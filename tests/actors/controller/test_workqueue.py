"""The work queue and its workers, on trio's fake clock: every time asserted is exact."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.controller import (
    DEFAULT_ITEM_BACKOFF,
    PermanentError,
    QueueShutDown,
    RateLimit,
    TransientError,
    WorkQueue,
    run_workers,
)
from actors.runtime import BackoffPolicy


async def drain_ready(queue: WorkQueue[str]) -> list[str]:
    """Every key ready now, in order, each marked done at once."""
    keys = []
    while len(queue):
        key = await queue.get()
        queue.done(key)
        keys.append(key)
    return keys


async def test_a_waiting_key_is_queued_once(autojump_clock: trio.testing.MockClock) -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert await drain_ready(queue) == ["a", "b", "c"]
    queue._check_invariants()


async def test_a_key_added_while_processing_is_processed_once_more_after_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # not handed out while processing
    with trio.move_on_after(1):
        await queue.get()
        pytest.fail("a processing key was handed out again")
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_workers_reprocess_a_key_re_added_during_sync(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    calls: list[tuple[str, float]] = []

    async def sync(key: str) -> None:
        calls.append((key, trio.current_time()))
        if len(calls) == 1:
            for _ in range(3):
                queue.add(key)
        await trio.sleep(1)

    queue.add("a")
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_workers(queue, sync, workers=3, task_status=task_status)
        )
        await trio.sleep(10)
        queue.shut_down()
    assert calls == [("a", 0.0), ("a", 1.0)]


async def test_no_key_is_ever_synced_by_two_workers_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    active: set[str] = set()
    starts: dict[str, list[float]] = {"a": [], "b": []}

    async def sync(key: str) -> None:
        assert key not in active, f"{key} synced by two workers at once"
        active.add(key)
        starts[key].append(trio.current_time())
        await trio.sleep(1)
        active.remove(key)

    async def producer() -> None:
        # Re-add both keys every 0.25 s for 3 s, mostly while they are being synced.
        for _ in range(12):
            queue.add("a")
            queue.add("b")
            await trio.sleep(0.25)
        queue.shut_down()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(run_workers, queue, sync, workers=8))
        nursery.start_soon(producer)
    # Each key is synced at 0, 1 and 2, each time re-added while its sync runs; the adds
    # during the sync at 2 leave it dirty, and a dirty key survives shut_down (t = 3).
    assert starts == {"a": [0.0, 1.0, 2.0, 3.0], "b": [0.0, 1.0, 2.0, 3.0]}
    assert trio.current_time() == 4.0


async def test_rate_limited_retries_back_off_exponentially_up_to_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = BackoffPolicy(initial=0.005, factor=2.0, max_delay=0.04)
    queue: WorkQueue[str] = WorkQueue(backoff=policy)
    times: list[float] = []

    async def sync(key: str) -> None:
        times.append(trio.current_time())
        if len(times) == 7:
            queue.shut_down()
        raise TransientError("api server unavailable")

    queue.add("a")
    await run_workers(queue, sync, workers=2)
    expected = [0.0]
    for delay in [0.005, 0.01, 0.02, 0.04, 0.04, 0.04]:
        expected.append(expected[-1] + delay)
    assert times == expected
    assert queue.num_requeues("a") == 7


def test_default_item_backoff_is_client_gos() -> None:
    delays = [DEFAULT_ITEM_BACKOFF.base_delay(n) for n in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == 0.005 * 2**17  # 655.36 s
    assert delays[18:] == [1000.0, 1000.0]


async def test_forget_resets_the_backoff(autojump_clock: trio.testing.MockClock) -> None:
    queue: WorkQueue[str] = WorkQueue()
    assert [queue.when("a") for _ in range(3)] == [0.005, 0.01, 0.02]
    assert queue.num_requeues("a") == 3
    assert queue.num_requeues("b") == 0
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    start = trio.current_time()
    queue.add_rate_limited("a")
    assert len(queue) == 0
    assert await queue.get() == "a"
    assert trio.current_time() == start + 0.005


async def test_successful_sync_forgets_the_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    times: list[float] = []

    async def sync(key: str) -> None:
        times.append(trio.current_time())
        if len(times) <= 2:
            raise TransientError("not yet")
        assert queue.num_requeues(key) == 2

    queue.add("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(run_workers, queue, sync, workers=1))
        await trio.sleep(1)
        assert queue.num_requeues("a") == 0
        queue.shut_down()
    assert times == [0.0, 0.005, 0.005 + 0.01]


async def test_add_after_hands_keys_out_in_due_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("c", 3)
    queue.add_after("a", 1)
    queue.add_after("b", 2)
    queue.add_after("e", 2)  # same due time as b: call order
    queue.add_after("x", 5)
    queue.add_after("x", 0.5)  # an earlier time moves x up
    queue.add_after("x", 4)  # a later one does not
    queue.add_after("now", 0)
    queue.add("d")
    got = []
    for _ in range(7):
        key = await queue.get()
        queue.done(key)
        got.append((key, trio.current_time()))
    assert got == [
        ("now", 0.0),
        ("d", 0.0),
        ("x", 0.5),
        ("a", 1.0),
        ("b", 2.0),
        ("e", 2.0),
        ("c", 3.0),
    ]
    with trio.move_on_after(100):
        await queue.get()
        pytest.fail("a key was delivered twice")


async def test_due_delayed_keys_keep_fifo_order_with_later_adds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("early", 1)
    await trio.sleep(2)  # nobody was waiting when "early" fell due
    queue.add("late")
    assert await drain_ready(queue) == ["early", "late"]


async def test_token_bucket_spaces_retries_beyond_the_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue(rate_limit=RateLimit(qps=10, burst=2))
    for key in ["k0", "k1", "k2", "k3", "k4"]:
        queue.add_rate_limited(key)
    got = []
    for _ in range(5):
        key = await queue.get()
        queue.done(key)
        got.append((key, trio.current_time()))
    # Two from the burst wait only for their own 5 ms backoff; the rest wait 1/qps each.
    assert got == [("k0", 0.005), ("k1", 0.005), ("k2", 0.1), ("k3", 0.2), ("k4", 0.3)]
    # The debt is paid off at 0.3 s and the bucket refills at 10 tokens/s up to 2.
    await trio.sleep_until(10.0)
    assert [queue.when(f"n{i}") for i in range(4)] == [0.005, 0.005, 0.1, 0.2]


async def test_shut_down_drains_ready_keys_then_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add_after("delayed", 1)
    assert not queue.shutting_down
    queue.shut_down()
    assert queue.shutting_down
    queue.add("ignored")
    queue.add_after("ignored", 0)
    queue.add_rate_limited("ignored")
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    with pytest.raises(QueueShutDown):
        await queue.get()
    queue.done("a")
    queue.done("b")
    await trio.sleep(2)
    with pytest.raises(QueueShutDown):
        await queue.get()
    queue.shut_down()  # idempotent


async def test_shut_down_wakes_a_waiting_get(autojump_clock: trio.testing.MockClock) -> None:
    queue: WorkQueue[str] = WorkQueue()
    raised_at: list[float] = []

    async def getter() -> None:
        with pytest.raises(QueueShutDown):
            await queue.get()
        raised_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(getter)
        await trio.sleep(7)
        queue.shut_down()
    assert raised_at == [7.0]


async def test_run_workers_finishes_in_flight_syncs_on_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    finished: list[tuple[str, float]] = []

    async def sync(key: str) -> None:
        await trio.sleep(5)
        finished.append((key, trio.current_time()))

    for key in ["a", "b", "c"]:
        queue.add(key)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(run_workers, queue, sync, workers=2))
        await trio.sleep(1)
        queue.shut_down()
        await queue.wait_drained()
        assert trio.current_time() == 10.0
    # Two workers finish at the same virtual time, in either order.
    assert sorted(finished) == [("a", 5.0), ("b", 5.0), ("c", 10.0)]


async def test_permanent_errors_are_not_retried_and_other_errors_are(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    calls: list[tuple[str, float]] = []

    async def sync(key: str) -> None:
        calls.append((key, trio.current_time()))
        if key == "bad-spec":
            raise PermanentError("spec.replicas must be >= 0")
        if key == "bug" and len([c for c in calls if c[0] == "bug"]) == 1:
            raise RuntimeError("boom")

    queue.add("bad-spec")
    queue.add("bug")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(run_workers, queue, sync, workers=2))
        await trio.sleep(1)
        queue.shut_down()
    # Two workers start at the same virtual time, in either order.
    assert sorted(calls) == [("bad-spec", 0.0), ("bug", 0.0), ("bug", 0.005)]
    assert queue.num_requeues("bad-spec") == 0
    assert "failed permanently" in caplog.text
    assert "unexpected error" in caplog.text


async def test_cancelling_run_workers_releases_the_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()

    async def sync(key: str) -> None:
        await trio.sleep_forever()

    queue.add("a")
    with trio.move_on_after(3):
        await run_workers(queue, sync, workers=2)
    assert trio.current_time() == 3.0
    queue._check_invariants()
    queue.add("a")
    assert await queue.get() == "a"  # not stuck as "processing"


async def test_argument_errors(autojump_clock: trio.testing.MockClock) -> None:
    queue: WorkQueue[str] = WorkQueue()
    with pytest.raises(ValueError, match="not being processed"):
        queue.done("a")
    with pytest.raises(ValueError, match="nan"):
        queue.add_after("a", float("nan"))

    async def sync(key: str) -> None:
        pass

    with pytest.raises(ValueError, match="workers must be >= 1"):
        await run_workers(queue, sync, workers=0)
    with pytest.raises(ValueError, match="qps"):
        RateLimit(qps=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(qps=1, burst=0)
    with pytest.raises(ValueError, match="rng"):
        WorkQueue(backoff=BackoffPolicy(jitter=0.5))
    WorkQueue(backoff=BackoffPolicy(jitter=0.5), rng=random.Random(1))


KEYS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS),
        st.tuples(st.just("add_after"), KEYS, st.sampled_from([0.0, 0.5, 1.0, 2.0])),
        st.tuples(st.just("add_rate_limited"), KEYS),
        st.tuples(st.just("get")),
        st.tuples(st.just("done"), st.integers(0, 3)),
        st.tuples(st.just("sleep"), st.sampled_from([0.001, 0.5, 1.0])),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_never_yields_a_processing_key_and_never_holds_duplicates(
    ops: list[tuple[Any, ...]],
) -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        processing: list[str] = []
        needs: set[str] = set()  # added since last handed out (a model of "dirty")
        for op in ops:
            if op[0] == "add":
                queue.add(op[1])
                needs.add(op[1])
            elif op[0] == "add_after":
                queue.add_after(op[1], op[2])
                if op[2] == 0:
                    needs.add(op[1])
            elif op[0] == "add_rate_limited":
                queue.add_rate_limited(op[1])
            elif op[0] == "get" and len(queue):
                key = await queue.get()
                assert key not in processing
                processing.append(key)
                needs.discard(key)
            elif op[0] == "done" and processing:
                queue.done(processing.pop(op[1] % len(processing)))
            elif op[0] == "sleep":
                await trio.sleep(op[1])
            ready_count = len(queue)  # promotes delayed keys that are due
            queue._check_invariants()
            ready = list(queue._queue)
            assert len(ready) == len(set(ready)) == ready_count
            assert not set(ready) & set(processing)
            # Everything added directly and not yet handed out is ready or waits on done.
            assert needs <= set(ready) | set(processing)
        # Finishing everything and waiting out every delay empties the queue exactly once.
        for key in processing:
            queue.done(key)
        await trio.sleep(10)
        handed = await drain_ready(queue)
        assert len(handed) == len(set(handed))
        assert len(queue) == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
