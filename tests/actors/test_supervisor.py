"""Supervisor: restarts, backoff, escalation, shutdown, dynamic children, logging.

Every test runs on trio's fake clock (``autojump_clock``): time jumps straight to the
next deadline whenever all tasks are blocked, so the exact virtual times asserted here
are the supervisor's own schedule, with no real waiting.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import pytest
import trio
import trio.testing

from actors.runtime import (
    BackoffPolicy,
    ChildSpec,
    ChildState,
    DuplicateChild,
    Mailbox,
    RestartIntensity,
    RestartPolicy,
    SupervisorClosed,
    TooManyRestarts,
    UnknownChild,
    actor_child,
    open_supervisor,
    run_supervisor,
)

# Powers of two keep virtual times exact in binary floating point.
ONE_SECOND = BackoffPolicy(initial=1.0, factor=2.0, max_delay=64.0, reset_after=1000.0)
LENIENT = RestartIntensity(max_restarts=1000, window=1000.0)


class Boom(Exception):
    pass


class Recorder:
    """A child target that records when each incarnation starts and then behaves as told.

    ``runs[i]`` is how long incarnation ``i`` runs before it crashes (or returns, if
    ``crash`` is False); incarnations past the end run forever. ``cancel_after`` cancels
    the given supervisor once that many incarnations have started.
    """

    def __init__(self, runs: Sequence[float] = (), *, crash: bool = True) -> None:
        self.runs = list(runs)
        self.crash = crash
        self.starts: list[float] = []
        self.finally_ran = 0
        self.on_start: Callable[[int], None] = lambda n: None

    async def __call__(self) -> None:
        incarnation = len(self.starts)
        self.starts.append(trio.current_time())
        self.on_start(len(self.starts))
        try:
            if incarnation >= len(self.runs):
                await trio.sleep_forever()
            await trio.sleep(self.runs[incarnation])
            if self.crash:
                raise Boom(f"incarnation {incarnation}")
        finally:
            self.finally_ran += 1


def crash_at_once(n: int) -> Recorder:
    return Recorder([0.0] * n)


async def test_default_backoff_restarts_at_point_one_point_three_point_seven(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = crash_at_once(4)
    async with open_supervisor(children=[ChildSpec(name="worker", target=child)]) as sup:
        child.on_start = lambda n: sup.cancel() if n == 5 else None
    assert child.starts == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5], abs=1e-9)


async def test_restart_delays_double_each_time(autojump_clock: trio.testing.MockClock) -> None:
    child = crash_at_once(4)
    async with open_supervisor(
        children=[ChildSpec(name="worker", target=child)], backoff=ONE_SECOND
    ) as sup:
        child.on_start = lambda n: sup.cancel() if n == 5 else None
    assert child.starts == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert trio.current_time() == 15.0


async def test_restart_delay_is_capped(autojump_clock: trio.testing.MockClock) -> None:
    child = crash_at_once(6)
    policy = BackoffPolicy(initial=1.0, factor=2.0, max_delay=4.0)
    async with open_supervisor(
        children=[ChildSpec(name="worker", target=child)], backoff=policy
    ) as sup:
        child.on_start = lambda n: sup.cancel() if n == 7 else None
    # delays 1, 2, 4, 4, 4, 4
    assert child.starts == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0, 19.0]


@pytest.mark.parametrize(
    ("third_run", "expected_starts"),
    [
        # The third incarnation runs for reset_after (10 s): healthy, so the next delay
        # starts again from 1 s: crash at 13, restart at 14, crash, restart at 16.
        (10.0, [0.0, 1.0, 3.0, 14.0, 16.0]),
        # Just short of it: not healthy, delays keep growing (4 s, then 8 s).
        (9.5, [0.0, 1.0, 3.0, 16.5, 24.5]),
    ],
)
async def test_backoff_resets_after_a_healthy_run(
    autojump_clock: trio.testing.MockClock, third_run: float, expected_starts: list[float]
) -> None:
    child = Recorder([0.0, 0.0, third_run, 0.0])
    policy = BackoffPolicy(initial=1.0, factor=2.0, max_delay=64.0, reset_after=10.0)
    async with open_supervisor(
        children=[ChildSpec(name="worker", target=child)], backoff=policy
    ) as sup:
        child.on_start = lambda n: sup.cancel() if n == 5 else None
    assert child.starts == expected_starts


async def test_escalates_after_too_many_crashes_within_the_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = crash_at_once(100)
    sibling = Recorder()
    body_cancelled = False
    with pytest.raises(TooManyRestarts) as caught:
        async with open_supervisor(
            name="root",
            children=[
                ChildSpec(name="sibling", target=sibling),
                ChildSpec(name="worker", target=child),
            ],
            backoff=ONE_SECOND,
            intensity=RestartIntensity(max_restarts=3, window=60.0),
        ):
            try:
                await trio.sleep_forever()
            finally:
                body_cancelled = True
    # Crashes at 0, 1, 3 are restarted; the fourth, at 7, is one too many.
    assert child.starts == [0.0, 1.0, 3.0, 7.0]
    assert trio.current_time() == 7.0
    error = caught.value
    assert (error.supervisor, error.child, error.restarts, error.window) == (
        "root",
        "worker",
        4,
        60.0,
    )
    assert isinstance(error.last_error, Boom)
    assert error.__cause__ is error.last_error
    assert str(error) == (
        "supervisor 'root': child 'worker' terminated 4 times within 60s; "
        "giving up (last error: Boom('incarnation 3'))"
    )
    assert sibling.finally_ran == 1
    assert body_cancelled


@pytest.mark.parametrize(("window", "escalates_at"), [(5.0, None), (10.0, 11.0)])
async def test_crashes_older_than_the_window_are_forgotten(
    autojump_clock: trio.testing.MockClock, window: float, escalates_at: float | None
) -> None:
    # Each incarnation runs 3 s and crashes; the restart delay is always 1 s: crashes
    # at 3, 7, 11, 15, ... With max_restarts=2, a 5 s window never holds more than two
    # of them, a 10 s window holds three at t=11.
    child = Recorder([3.0] * 100)
    steady = BackoffPolicy(initial=1.0, factor=1.0, max_delay=1.0)
    intensity = RestartIntensity(max_restarts=2, window=window)
    spec = ChildSpec(name="worker", target=child)
    if escalates_at is None:
        async with open_supervisor(children=[spec], backoff=steady, intensity=intensity) as sup:
            child.on_start = lambda n: sup.cancel() if n == 6 else None
        assert child.starts == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
    else:
        with pytest.raises(TooManyRestarts):
            async with open_supervisor(children=[spec], backoff=steady, intensity=intensity):
                pass
        assert trio.current_time() == escalates_at


@pytest.mark.parametrize(
    ("policy", "crash", "restarted"),
    [
        (RestartPolicy.PERMANENT, True, True),
        (RestartPolicy.PERMANENT, False, True),
        (RestartPolicy.TRANSIENT, True, True),
        (RestartPolicy.TRANSIENT, False, False),
        (RestartPolicy.TEMPORARY, True, False),
        (RestartPolicy.TEMPORARY, False, False),
    ],
)
async def test_restart_policies(
    autojump_clock: trio.testing.MockClock, policy: RestartPolicy, crash: bool, restarted: bool
) -> None:
    child = Recorder([2.0], crash=crash)
    async with open_supervisor(backoff=ONE_SECOND) as sup:
        sup.start_child(ChildSpec(name="worker", target=child, restart=policy))
        await trio.sleep(10)
        assert ("worker" in sup.children) is restarted
        sup.cancel()
    # Ended at 2; a restart comes after the first backoff delay, 1 s.
    assert child.starts == ([0.0, 3.0] if restarted else [0.0])


async def test_a_supervisor_whose_children_all_finish_ends_its_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done = Recorder([1.0, 1.0], crash=False)
    async with open_supervisor(
        children=[ChildSpec(name="job", target=done, restart=RestartPolicy.TRANSIENT)]
    ) as sup:
        pass
    assert trio.current_time() == 1.0
    assert sup.children == {}
    with pytest.raises(SupervisorClosed):
        sup.start_child(ChildSpec(name="late", target=Recorder()))


async def test_cancellation_shuts_down_every_child(autojump_clock: trio.testing.MockClock) -> None:
    running = Recorder()
    backing_off = crash_at_once(1)
    grandchild_finally: list[float] = []

    async def with_own_tasks() -> None:
        async def grandchild() -> None:
            try:
                await trio.sleep_forever()
            finally:
                grandchild_finally.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(grandchild)
            nursery.start_soon(grandchild)

    long_backoff = BackoffPolicy(initial=100.0, max_delay=100.0)
    with trio.move_on_after(5) as scope:
        async with open_supervisor(backoff=long_backoff) as sup:
            sup.start_child(ChildSpec(name="running", target=running))
            sup.start_child(ChildSpec(name="backing-off", target=backing_off))
            sup.start_child(ChildSpec(name="nested", target=with_own_tasks))
            await trio.sleep(1)
            assert sup.children["backing-off"].state is ChildState.BACKING_OFF
            assert sup.children["running"].state is ChildState.RUNNING
    assert scope.cancelled_caught
    assert trio.current_time() == 5.0
    assert running.finally_ran == 1
    assert backing_off.starts == [0.0]  # never restarted
    assert grandchild_finally == [5.0, 5.0]
    assert sup.children == {}


async def test_a_child_raising_while_cancelled_is_not_restarted_nor_escalated(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def messy() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("cleanup failed")

    with trio.move_on_after(2):
        async with open_supervisor(
            children=[ChildSpec(name="messy", target=messy)],
            intensity=RestartIntensity(max_restarts=0, window=10.0),
        ):
            pass
    assert trio.current_time() == 2.0
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().endswith("error=Boom('cleanup failed') action=stop")


async def test_cancel_method_ends_the_block_without_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Recorder()
    async with open_supervisor(children=[ChildSpec(name="worker", target=child)]) as sup:
        await trio.sleep(3)
        sup.cancel()
        with pytest.raises(SupervisorClosed):
            sup.start_child(ChildSpec(name="other", target=Recorder()))
    assert trio.current_time() == 3.0
    assert child.finally_ran == 1


async def test_children_can_be_started_dynamically(autojump_clock: trio.testing.MockClock) -> None:
    first, second, third = Recorder(), Recorder(), Recorder()

    async def spawner() -> None:
        await trio.sleep(4)
        sup.start_child(ChildSpec(name="third", target=third))
        await trio.sleep_forever()

    async with open_supervisor(children=[ChildSpec(name="first", target=first)]) as sup:
        await trio.sleep(2)
        sup.start_child(ChildSpec(name="second", target=second))
        sup.start_child(ChildSpec(name="spawner", target=spawner))
        with pytest.raises(DuplicateChild, match=r"already has a child named 'second'"):
            sup.start_child(ChildSpec(name="second", target=Recorder()))
        await trio.sleep(10)
        assert sorted(sup.children) == ["first", "second", "spawner", "third"]
        sup.cancel()
    assert (first.starts, second.starts, third.starts) == ([0.0], [2.0], [6.0])


async def test_terminate_child_stops_it_for_good(autojump_clock: trio.testing.MockClock) -> None:
    child, other = Recorder(), Recorder()
    async with open_supervisor(
        children=[ChildSpec(name="worker", target=child), ChildSpec(name="other", target=other)]
    ) as sup:
        await trio.sleep(1)
        await sup.terminate_child("worker")
        assert child.finally_ran == 1
        assert list(sup.children) == ["other"]
        with pytest.raises(UnknownChild, match=r"has no child named 'worker'"):
            await sup.terminate_child("worker")
        # The name is free again.
        sup.start_child(ChildSpec(name="worker", target=child))
        await trio.sleep(1)
        sup.cancel()
    assert child.starts == [0.0, 1.0]
    assert other.starts == [0.0]


async def test_child_status_reports_restarts_and_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = crash_at_once(2)
    async with open_supervisor(
        children=[ChildSpec(name="worker", target=child)], backoff=ONE_SECOND
    ) as sup:
        await trio.sleep(2)  # crashed at 0 and 1, waiting to restart at 3
        status = sup.children["worker"]
        assert status.state is ChildState.BACKING_OFF
        assert status.restarts == 1
        assert repr(status.last_error) == "Boom('incarnation 1')"
        await trio.sleep(2)
        assert sup.children["worker"].state is ChildState.RUNNING
        assert sup.children["worker"].restarts == 2
        sup.cancel()


async def test_run_supervisor_reports_started_once_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Recorder()
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(
            functools.partial(
                run_supervisor, name="svc", children=[ChildSpec(name="worker", target=child)]
            )
        )
        assert sup.name == "svc"
        assert "worker" in sup.children
        sup.start_child(ChildSpec(name="late", target=Recorder()))
        await trio.sleep(1)
        assert child.starts == [0.0]
        nursery.cancel_scope.cancel()
    assert child.finally_ran == 1


async def test_run_supervisor_raises_escalation_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(TooManyRestarts) as caught:
        await run_supervisor(
            children=[ChildSpec(name="worker", target=crash_at_once(10))],
            backoff=ONE_SECOND,
            intensity=RestartIntensity(max_restarts=0, window=1.0),
        )
    assert caught.value.child == "worker"
    assert trio.current_time() == 0.0


async def test_nested_supervisor_escalation_is_a_crash_of_the_parent_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leaf = crash_at_once(100)
    nested = functools.partial(
        run_supervisor,
        name="inner",
        children=[ChildSpec(name="leaf", target=leaf)],
        backoff=ONE_SECOND,
        intensity=RestartIntensity(max_restarts=1, window=100.0),
    )
    with pytest.raises(TooManyRestarts) as caught:
        async with open_supervisor(
            name="outer",
            children=[ChildSpec(name="inner", target=nested)],
            backoff=ONE_SECOND,
            intensity=RestartIntensity(max_restarts=1, window=100.0),
        ):
            pass
    # inner: leaf crashes at 0 (restart at 1), crashes at 1: escalates at 1.
    # outer restarts inner at 2; leaf crashes at 2 and 3: inner escalates at 3;
    # that is inner's second termination: outer escalates at 3.
    assert leaf.starts == [0.0, 1.0, 2.0, 3.0]
    assert trio.current_time() == 3.0
    assert caught.value.child == "inner"
    assert isinstance(caught.value.last_error, TooManyRestarts)
    assert caught.value.last_error.child == "leaf"


async def test_jitter_is_reproducible_under_a_seed(autojump_clock: trio.testing.MockClock) -> None:
    jittery = BackoffPolicy(initial=1.0, factor=2.0, max_delay=64.0, jitter=0.5)

    async def run_once(seed: int) -> list[float]:
        began = trio.current_time()
        child = crash_at_once(5)
        async with open_supervisor(
            children=[ChildSpec(name="worker", target=child)], backoff=jittery, seed=seed
        ) as sup:
            child.on_start = lambda n: sup.cancel() if n == 6 else None
        return [start - began for start in child.starts]

    first, again, other = await run_once(7), await run_once(7), await run_once(8)
    # Identical schedules (up to float rounding: each run starts at a later clock time).
    assert first == pytest.approx(again, abs=1e-9)
    assert first != pytest.approx(other, abs=1e-3)
    delays = [later - earlier for earlier, later in zip(first, first[1:], strict=False)]
    for attempt, delay in enumerate(delays):
        assert 0.5 * 2**attempt - 1e-9 <= delay <= 2**attempt + 1e-9


async def test_crashes_are_logged_with_traceback_and_child_name(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="actors.runtime.supervisor")
    child = crash_at_once(1)
    done = Recorder([0.5], crash=False)
    async with open_supervisor(
        name="root",
        children=[
            ChildSpec(name="worker", target=child),
            ChildSpec(name="job", target=done, restart=RestartPolicy.TRANSIENT),
        ],
    ) as sup:
        await trio.sleep(1)
        sup.cancel()

    records = [r for r in caplog.records if r.name == "actors.runtime.supervisor"]
    crashes = [r for r in records if r.levelno == logging.ERROR]
    assert len(crashes) == 1
    crash = crashes[0]
    assert crash.getMessage() == (
        "child crashed supervisor=root child=worker ran_for=0.000s "
        "error=Boom('incarnation 0') action=restart delay=0.100s"
    )
    assert "\n" not in crash.getMessage()
    assert (getattr(crash, "supervisor", None), getattr(crash, "child", None)) == (
        "root",
        "worker",
    )
    assert crash.exc_info is not None and isinstance(crash.exc_info[1], Boom)
    assert "Traceback (most recent call last)" in caplog.text
    assert 'raise Boom(f"incarnation {incarnation}")' in caplog.text

    exits = [r for r in records if r.getMessage().startswith("child exited")]
    assert [r.getMessage() for r in exits] == [
        "child exited supervisor=root child=job ran_for=0.500s action=stop"
    ]
    assert exits[0].levelno == logging.INFO


async def test_escalation_log_line(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors.runtime.supervisor")
    with pytest.raises(TooManyRestarts):
        await run_supervisor(
            children=[ChildSpec(name="worker", target=crash_at_once(5))],
            intensity=RestartIntensity(max_restarts=0, window=1.0),
        )
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().endswith(
        "child=worker ran_for=0.000s error=Boom('incarnation 0') action=escalate"
    )


class Counter:
    """An actor whose state is a running total; the message "boom" crashes it."""

    def __init__(self, seen: list[tuple[int, str, int]], generation: int) -> None:
        self.seen = seen
        self.generation = generation
        self.total = 0

    async def run(self, mailbox: Mailbox[str], /) -> None:
        async for message in mailbox:
            if message == "boom":
                raise Boom("asked to crash")
            self.total += int(message)
            self.seen.append((self.generation, message, self.total))


async def test_actor_child_restarts_with_fresh_state_on_the_same_mailbox(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int, str, int]] = []
    generations = iter(range(100))
    mailbox = Mailbox[str](capacity=8)
    spec = actor_child(
        name="counter",
        factory=lambda: Counter(seen, next(generations)),
        mailbox=mailbox,
        restart=RestartPolicy.TRANSIENT,
    )
    async with open_supervisor(children=[spec], backoff=ONE_SECOND, intensity=LENIENT):
        for message in ["1", "2", "boom", "3", "4"]:
            mailbox.send_nowait(message)
        await trio.sleep(0.5)
        # Messages queued behind the crash waited in the mailbox for the restart at 1.
        assert seen == [(0, "1", 1), (0, "2", 3)]
        await trio.sleep(1)
        mailbox.close()  # the actor drains, returns normally, and (transient) is done
    assert seen == [(0, "1", 1), (0, "2", 3), (1, "3", 3), (1, "4", 7)]
    assert trio.current_time() == 1.5
