"""Leader election on an in-memory Lease and trio's fake clock: every time asserted is exact.

Timings are Kubernetes' defaults (lease 15 s, renew deadline 10 s, retry 2 s). Fake RPCs
take no virtual time unless a test slows them, so a candidate started at t=1 attempts at
t=1, 3, 5, ... and a leader that acquired at t=0 renews at t=2, 4, 6, ...

Each candidate's ``leading()`` registers itself in a shared :class:`Acting` record that
fails the test if two candidates ever act at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial

import pytest
import trio
import trio.testing

from actors.client import errors
from actors.controller.leaderelection import (
    LeaderElectionConfig,
    LeaderElector,
    LeaseRecord,
)

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NAMESPACE = "kube-system"
NAME = "kube-scheduler"


def wall_clock() -> dt.datetime:
    """Wall-clock time that follows the fake clock, so written times can be asserted."""
    return EPOCH + dt.timedelta(seconds=trio.current_time())


def at(seconds: float) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=seconds)


class FakeLeaseStore:
    """One Lease in memory with the API server's concurrency rules and versions."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self._version = 0
        self.writes: list[tuple[float, LeaseRecord]] = []

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self._version += 1
        self.record = replace(record, resource_version=str(self._version))
        self.writes.append((trio.current_time(), self.record))
        return self.record

    def get(self) -> LeaseRecord | None:
        return self.record

    def create(self, record: LeaseRecord) -> LeaseRecord:
        if self.record is not None:
            raise errors.AlreadyExists(f'leases "{NAME}" already exists')
        return self._store(record)

    def update(self, record: LeaseRecord, resource_version: str) -> LeaseRecord:
        if self.record is None:
            raise errors.NotFound(f'leases "{NAME}" not found')
        if resource_version != self.record.resource_version:
            raise errors.Conflict("the object has been modified")
        return self._store(record)

    def delete(self) -> None:
        self.record = None

    def force(self, **changes: object) -> None:
        """A write by someone outside the election (an administrator, say)."""
        assert self.record is not None
        self._store(replace(self.record, **changes))  # type: ignore[arg-type]


class FakeLock:
    """One candidate's connection to the store: it can fail (``error``) or hang (``delay``)."""

    def __init__(self, store: FakeLeaseStore) -> None:
        self.store = store
        self.error: Exception | None = None
        self.delay = 0.0
        self.gets = 0

    async def _call(self) -> None:
        if self.delay:
            await trio.sleep(self.delay)
        else:
            await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error

    async def get(self) -> LeaseRecord | None:
        self.gets += 1
        await self._call()
        return self.store.get()

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        await self._call()
        return self.store.create(record)

    async def update(self, record: LeaseRecord, resource_version: str) -> LeaseRecord:
        await self._call()
        return self.store.update(record, resource_version)


@dataclass
class Acting:
    """Who acted when. Fails the acting candidate if another one acts at the same time."""

    now: set[str] = field(default_factory=set)
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    most: int = 0

    def leading(self, name: str) -> Callable[[], Awaitable[None]]:
        async def leading() -> None:
            self.now.add(name)
            self.most = max(self.most, len(self.now))
            assert len(self.now) == 1, f"{sorted(self.now)} act at once"
            start = trio.current_time()
            try:
                await trio.sleep_forever()
            finally:
                self.now.discard(name)
                self.spans.append((name, start, trio.current_time()))

        return leading


@dataclass
class Candidate:
    name: str
    lock: FakeLock
    elector: LeaderElector
    scope: trio.CancelScope
    leaders: list[str] = field(default_factory=list)
    acted: list[float] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)


def config(name: str, **overrides: object) -> LeaderElectionConfig:
    return LeaderElectionConfig(
        lock_namespace=NAMESPACE,
        lock_name=NAME,
        identity=name,
        **overrides,  # type: ignore[arg-type]
    )


async def start(
    nursery: trio.Nursery,
    store: FakeLeaseStore,
    acting: Acting,
    name: str,
    *,
    leading: Callable[[], Awaitable[None]] | None = None,
    **overrides: object,
) -> Candidate:
    """Start candidate ``name``; returns after its first attempt to acquire."""
    lock = FakeLock(store)
    elector = LeaderElector(config(name, **overrides), lock, wall_clock=wall_clock)
    candidate = Candidate(name, lock, elector, trio.CancelScope())
    inner = leading or acting.leading(name)

    async def tracked() -> None:
        candidate.acted.append(trio.current_time())
        try:
            await inner()
        finally:
            candidate.stopped.append(trio.current_time())

    async def run(task_status: trio.TaskStatus[LeaderElector]) -> None:
        with candidate.scope:
            await elector.run(
                tracked, on_new_leader=candidate.leaders.append, task_status=task_status
            )

    started = await nursery.start(run)
    assert started is elector
    return candidate


# --------------------------------------------------------------------------- config


def test_config_defaults_are_kubernetes() -> None:
    c = LeaderElectionConfig(lock_name="kube-controller-manager")
    assert (c.lock_namespace, c.lease_duration, c.renew_deadline, c.retry_period) == (
        "kube-system",
        15.0,
        10.0,
        2.0,
    )
    assert c.release_on_cancel is True
    host, sep, suffix = c.identity.rpartition("_")
    assert host and sep and len(suffix) >= 8
    assert LeaderElectionConfig(lock_name="x").identity != c.identity
    assert c.lease_duration_seconds == 15
    assert LeaderElectionConfig(lock_name="x", lease_duration=1.5, renew_deadline=1.0, retry_period=0.2).lease_duration_seconds == 2  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lease_duration": 10.0}, r"lease_duration \(10.0\) must be greater than renew_deadline \(10.0\)"),
        ({"renew_deadline": 2.4}, r"renew_deadline \(2.4\) must be greater than retry_period \* 1.2 \(2.4\)"),
        ({"retry_period": 0.0}, "retry_period must be a positive number of seconds, not 0.0"),
        ({"lease_duration": float("inf")}, "lease_duration must be a positive number of seconds, not inf"),
        ({"renew_deadline": -1}, "renew_deadline must be a positive number of seconds, not -1"),
        ({"lock_name": "Kube_Scheduler"}, "lock_name must be a DNS subdomain name"),
        ({"lock_name": ""}, "lock_name must be a DNS subdomain name"),
        ({"lock_namespace": "kube.system"}, "lock_namespace must be a DNS label"),
        ({"identity": ""}, "identity must be a non-empty string, not ''"),
    ],
)  # fmt: skip
def test_config_rejects_bad_values_naming_the_field(
    overrides: dict[str, object], message: str
) -> None:
    kwargs: dict[str, object] = {"lock_name": NAME, **overrides}
    with pytest.raises(ValueError, match=message):
        LeaderElectionConfig(**kwargs)  # type: ignore[arg-type]


def test_config_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="retry_period must be a number of seconds, not '2'"):
        LeaderElectionConfig(lock_name=NAME, retry_period="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lease_duration must be a number of seconds, not True"):
        LeaderElectionConfig(lock_name=NAME, lease_duration=True)


# --------------------------------------------------------------------------- acquiring


async def test_first_candidate_creates_the_lease_and_renews_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        assert a.elector.is_leader and a.elector.leader == "a" and a.leaders == ["a"]
        assert store.record == LeaseRecord(
            holder_identity="a",
            lease_duration_seconds=15,
            acquire_time=at(0),
            renew_time=at(0),
            lease_transitions=0,
            resource_version="1",
        )
        await trio.sleep(7)
        assert [t for t, _ in store.writes] == [0, 2, 4, 6]
        assert store.record is not None
        assert (store.record.acquire_time, store.record.renew_time) == (at(0), at(6))
        assert store.record.lease_transitions == 0
        assert a.acted == [0] and a.stopped == []
        nursery.cancel_scope.cancel()


async def test_a_standby_follows_the_leader_and_never_acts_while_it_renews(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep(1)
        b = await start(nursery, store, acting, "b")
        assert not b.elector.is_leader and b.elector.leader == "a" and b.leaders == ["a"]
        await trio.sleep(100)
        assert b.acted == [] and a.stopped == [] and acting.most == 1
        assert store.record is not None and store.record.holder_identity == "a"
        nursery.cancel_scope.cancel()


async def test_candidates_starting_together_elect_exactly_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        for name in "abc":
            nursery.start_soon(partial(start, nursery, store, acting, name))
        await trio.sleep(30)
        assert acting.most == 1 and len(acting.now) == 1
        (winner,) = acting.now
        assert {r.holder_identity for _, r in store.writes} == {winner}
        assert store.record is not None and store.record.lease_transitions == 0
        nursery.cancel_scope.cancel()
    assert [who for who, _, _ in acting.spans] == [winner]


async def test_an_expired_lease_is_taken_over_after_lease_duration_of_silence(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a", release_on_cancel=False)
        await trio.sleep(1)
        b = await start(nursery, store, acting, "b")
        # a crashes at 5.5 (no release); b saw a's last renewal (written at 4) at 5, so
        # the lease is valid until 5 + 15 = 20: b's attempt at 19 waits, at 21 takes it.
        await trio.sleep_until(5.5)
        a.scope.cancel()
        await trio.sleep_until(20.5)
        assert b.acted == [] and b.elector.leader == "a"
        await trio.sleep_until(30)
        assert b.acted == [21] and b.elector.is_leader
        assert store.record is not None
        assert store.record.holder_identity == "b"
        assert store.record.lease_transitions == 1
        assert store.record.acquire_time == at(21)
        assert b.leaders == ["a", "b"]
        nursery.cancel_scope.cancel()


async def test_a_released_lease_is_taken_over_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep(1)
        b = await start(nursery, store, acting, "b")
        await trio.sleep_until(5.5)
        a.scope.cancel()  # a clean shutdown
        await trio.sleep_until(6)
        assert a.stopped == [5.5]
        assert store.record is not None
        assert (store.record.holder_identity, store.record.lease_duration_seconds) == ("", 1)
        assert store.writes[-1][0] == 5.5
        await trio.sleep_until(10)
        assert b.acted == [7]  # b's next attempt, not 15 s later
        assert store.record.holder_identity == "b"
        assert store.record.lease_transitions == 1
        assert b.leaders == ["a", "", "b"]
        nursery.cancel_scope.cancel()


async def test_a_released_lease_goes_to_exactly_one_of_several_standbys(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep(1)
        others = [await start(nursery, store, acting, name) for name in "bc"]
        await trio.sleep_until(5.5)
        a.scope.cancel()
        await trio.sleep_until(20)
        assert sorted(c.acted for c in others) == [[], [7]]
        assert acting.most == 1
        assert store.record is not None and store.record.lease_transitions == 1
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- losing


async def test_a_leader_that_cannot_renew_stops_before_anyone_can_take_over(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors.controller.leaderelection")
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep(1)
        b = await start(nursery, store, acting, "b")
        await trio.sleep_until(5)
        a.lock.error = errors.Unreachable("cannot reach the API server at 127.0.0.1:1")
        # Last successful renewal started at 4: a stops acting at 4 + 10 = 14, which is
        # before 4 + 10 + 2 and before b may take over (not before 5 + 15 = 20).
        await trio.sleep_until(13.9)
        assert a.elector.is_leader and a.stopped == []
        await trio.sleep_until(14.1)
        assert a.stopped == [14] and not a.elector.is_leader
        await trio.sleep_until(25)
        assert b.acted == [21] and acting.most == 1
        # a keeps campaigning: once it can reach the lease again it follows b.
        a.lock.error = None
        await trio.sleep_until(31)
        assert a.elector.leader == "b" and a.acted == [0] and a.leaders == ["a", "b"]
        nursery.cancel_scope.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "'a'" in w and "Unreachable" in w] == [
        "LeaderElector(kube-system/kube-scheduler identity='a'): cannot reach the lease, "
        "will retry: Unreachable: cannot reach the API server at 127.0.0.1:1"
    ]
    assert any("stopped leading: no successful renewal within" in w for w in warnings)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sum("identity='a'): the lease is reachable again" in i for i in infos) == 1


async def test_a_renewal_that_hangs_is_cut_at_the_renew_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep(1)
        b = await start(nursery, store, acting, "b")
        await trio.sleep_until(5)
        a.lock.delay = 1000.0  # every call from a now hangs
        await trio.sleep_until(30)
        assert a.stopped == [14] and b.acted == [21] and acting.most == 1
        nursery.cancel_scope.cancel()


async def test_a_slow_but_successful_renewal_counts_from_when_it_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep_until(5)
        # A renewal is one update (the leader's fast path) and takes 3 s: the renewal
        # started at 6 succeeds at 9 and moves the deadline to 6 + 10 = 16; the next one
        # starts at 11, succeeds at 14, and so on.
        a.lock.delay = 3.0
        await trio.sleep_until(60)
        assert a.stopped == [] and a.elector.is_leader
        assert [t for t, _ in store.writes][:5] == [0, 2, 4, 9, 14]
        nursery.cancel_scope.cancel()


async def test_a_leader_stops_at_once_when_its_renewal_finds_another_holder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep_until(5)
        store.force(holder_identity="intruder")
        await trio.sleep_until(7)
        assert a.stopped == [6] and a.elector.leader == "intruder"
        assert a.leaders == ["a", "intruder"]
        nursery.cancel_scope.cancel()


async def test_a_deleted_lease_stops_the_leader_which_creates_it_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        await trio.sleep_until(5)
        store.delete()
        await trio.sleep_until(7)
        assert a.acted == [0, 6] and a.stopped == [6]
        assert store.record is not None and store.record.holder_identity == "a"
        nursery.cancel_scope.cancel()


async def test_three_candidates_under_rolling_partitions_never_act_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        candidates = []
        for offset, name in enumerate("abc"):
            await trio.sleep_until(offset * 0.5)
            candidates.append(await start(nursery, store, acting, name))
        partitioned: Candidate | None = None
        for step in range(1, 8):
            await trio.sleep_until(step * 40.0)
            leader = next(c for c in candidates if c.elector.is_leader)
            if partitioned is not None:
                partitioned.lock.error = None
            leader.lock.error = errors.ServiceUnavailable("etcdserver: request timed out")
            partitioned = leader
        await trio.sleep_until(8 * 40.0)
        nursery.cancel_scope.cancel()
    assert acting.most == 1
    spans = sorted((began, ended, who) for who, began, ended in acting.spans)
    for (_, ended, _), (began, _, _) in zip(spans, spans[1:], strict=False):
        assert ended < began
    # every partition handed leadership to another candidate, each handover counted once
    holders = [who for _, _, who in spans]
    assert len(holders) == 8 and all(x != y for x, y in zip(holders, holders[1:], strict=False))
    assert store.record is not None and store.record.lease_transitions == 7


# --------------------------------------------------------------------------- ending


async def test_leading_raising_releases_and_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeLeaseStore()
    elector = LeaderElector(config("a"), FakeLock(store), wall_clock=wall_clock)

    async def leading() -> None:
        await trio.sleep(3)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await elector.run(leading)
    assert trio.current_time() == 3 and not elector.is_leader
    assert store.record is not None
    assert (store.record.holder_identity, store.record.lease_duration_seconds) == ("", 1)
    assert store.record.renew_time == at(3)


async def test_leading_returning_releases_and_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeLeaseStore()
    elector = LeaderElector(config("a", release_on_cancel=False), FakeLock(store))

    async def leading() -> None:
        await trio.sleep(3)

    await elector.run(leading)
    assert trio.current_time() == 3
    assert store.record is not None and store.record.holder_identity == ""


async def test_without_release_on_cancel_the_lease_stays_until_it_expires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a", release_on_cancel=False)
        await trio.sleep_until(5.5)
        a.scope.cancel()
        await trio.sleep(1)
        assert store.record is not None and store.record.holder_identity == "a"
        nursery.cancel_scope.cancel()


async def test_api_errors_are_retried_and_started_reports_the_first_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    lock = FakeLock(store)
    lock.error = errors.Timeout("deadline exceeded")
    elector = LeaderElector(config("a"), lock)
    async with trio.open_nursery() as nursery:
        started = await nursery.start(partial(elector.run, acting.leading("a")))
        assert started is elector and trio.current_time() == 0 and not elector.is_leader
        await trio.sleep_until(5)
        lock.error = None
        await trio.sleep_until(6.5)
        assert elector.is_leader and acting.now == {"a"}
        assert store.writes[0][0] == 6
        nursery.cancel_scope.cancel()


async def test_other_api_errors_end_the_run(autojump_clock: trio.testing.MockClock) -> None:
    lock = FakeLock(FakeLeaseStore())
    lock.error = errors.Forbidden('namespace "kube-system" is being terminated')
    elector = LeaderElector(config("a"), lock)
    with pytest.raises(errors.Forbidden):
        await elector.run(Acting().leading("a"))


async def test_an_elector_runs_once_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    elector = LeaderElector(config("a"), FakeLock(FakeLeaseStore()))
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(elector.run, Acting().leading("a")))
        with pytest.raises(RuntimeError, match="already running"):
            await elector.run(Acting().leading("a"))
        nursery.cancel_scope.cancel()


async def test_a_leader_renews_without_reading_until_its_write_conflicts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, acting = FakeLeaseStore(), Acting()
    async with trio.open_nursery() as nursery:
        a = await start(nursery, store, acting, "a")
        reads = a.lock.gets
        await trio.sleep_until(9)  # renewals at 2, 4, 6, 8: one write each, no read
        assert a.lock.gets == reads and len(store.writes) == 5
        store.force(renew_time=at(9))  # someone else's write: the next renewal conflicts
        await trio.sleep_until(11)  # so it reads, sees the Lease still names a, renews
        assert a.lock.gets == reads + 1 and a.elector.is_leader
        assert store.writes[-1][1].holder_identity == "a" and len(store.writes) == 7
        nursery.cancel_scope.cancel()
