"""The scheduling queue on trio's fake clock: exact backoff times, events, the flush."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.scheduler import QueuedPod, SchedulingQueue
from actors.scheduler.events import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    NODE_ADD,
    NODE_TAINT_CHANGE,
)

FIT = frozenset({"NodeResourcesFit"})


async def pop_at(queue: SchedulingQueue) -> tuple[str, float]:
    pod = await queue.pop()
    return pod.key, trio.current_time()


async def test_priority_then_age_then_arrival(autojump_clock: trio.testing.MockClock) -> None:
    queue = SchedulingQueue()
    queue.add("ns/old", created=100.0)
    queue.add("ns/new", created=200.0)
    queue.add("ns/urgent", priority=1000, created=300.0)
    queue.add("ns/same-age", created=100.0)
    order = [(await queue.pop()).key for _ in range(4)]
    assert order == ["ns/urgent", "ns/old", "ns/same-age", "ns/new"]


async def test_backoff_doubles_from_one_second_to_ten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = SchedulingQueue()
    queue.add("ns/p")
    start = trio.current_time()
    pod = await queue.pop()
    retries = []
    for _ in range(6):
        queue.requeue_backoff(pod)
        before = trio.current_time()
        pod = await queue.pop()
        retries.append(trio.current_time() - before)
    assert retries == [1, 2, 4, 8, 10, 10]
    assert pod.attempts == 7
    assert trio.current_time() - start == 35


async def test_unschedulable_pod_waits_for_an_event_that_can_help(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = SchedulingQueue(max_unschedulable=60)
    queue.add("ns/p")
    pod = await queue.pop()
    queue.requeue_unschedulable(pod, FIT)
    assert queue.where("ns/p") == "unschedulable"
    async with trio.open_nursery() as nursery:
        result: list[tuple[str, float]] = []

        async def waiter() -> None:
            result.append(await pop_at(queue))

        nursery.start_soon(waiter)
        await trio.sleep(5)
        assert queue.move(NODE_TAINT_CHANGE) == 0  # taints were not the problem
        assert queue.move(ASSIGNED_POD_ADD) == 0
        await trio.sleep(5)
        assert result == []
        assert queue.move(ASSIGNED_POD_DELETE) == 1  # resources freed: retry now
    assert result == [("ns/p", 10.0)]


async def test_moved_before_its_backoff_expires_it_waits_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = SchedulingQueue()
    queue.add("ns/p")
    pod = await queue.pop()
    queue.requeue_backoff(pod)
    pod = await queue.pop()  # attempt 2 at t=1
    queue.requeue_unschedulable(pod, FIT)  # backoff 2 s: until t=3
    await trio.sleep(0.5)
    assert queue.move(NODE_ADD) == 1
    assert queue.where("ns/p") == "backoff"
    assert await pop_at(queue) == ("ns/p", 3.0)


async def test_left_over_unschedulable_pods_are_flushed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = SchedulingQueue(max_unschedulable=60)
    queue.add("ns/p")
    pod = await queue.pop()
    queue.requeue_unschedulable(pod, FIT)
    assert await pop_at(queue) == ("ns/p", 60.0)


async def test_a_spec_change_retries_but_a_status_change_does_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = SchedulingQueue()
    queue.add("ns/p")
    pod = await queue.pop()
    queue.requeue_unschedulable(pod, FIT)
    await trio.sleep(30)
    queue.update("ns/p", changed=False)
    assert queue.where("ns/p") == "unschedulable"
    queue.update("ns/p", changed=True)
    assert await pop_at(queue) == ("ns/p", 30.0)


async def test_deleted_pods_are_never_handed_out(autojump_clock: trio.testing.MockClock) -> None:
    queue = SchedulingQueue()
    queue.add("ns/a")
    queue.add("ns/b")
    queue.delete("ns/a")
    assert (await queue.pop()).key == "ns/b"
    queue.requeue_backoff(await _pop_new(queue, "ns/c"))
    queue.delete("ns/c")
    with trio.move_on_after(100):
        await queue.pop()
        pytest.fail("a deleted pod was handed out")
    assert len(queue) == 0


async def _pop_new(queue: SchedulingQueue, key: str) -> QueuedPod:
    queue.add(key)
    return await queue.pop()


async def test_pop_waits_for_an_add(autojump_clock: trio.testing.MockClock) -> None:
    queue = SchedulingQueue()
    async with trio.open_nursery() as nursery:
        got: list[tuple[str, float]] = []

        async def waiter() -> None:
            got.append(await pop_at(queue))

        nursery.start_soon(waiter)
        await trio.sleep(7)
        queue.add("ns/late")
    assert got == [("ns/late", 7.0)]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_unschedulable must be a positive number"):
        SchedulingQueue(max_unschedulable=0)
    with pytest.raises(ValueError, match="max_backoff"):
        SchedulingQueue(initial_backoff=5, max_backoff=1)
