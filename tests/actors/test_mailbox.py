"""Mailbox: bounded FIFO, the three overflow behaviours, closing; on trio's fake clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.runtime import Mailbox, MailboxClosed, MailboxError, MailboxFull


def test_capacity_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError, match=r"^capacity must be at least 1, not 0$"):
        Mailbox[int](capacity=0)
    with pytest.raises(TypeError, match=r"^capacity must be int, not float$"):
        Mailbox[int](capacity=1.5)  # type: ignore[arg-type]


async def test_messages_arrive_in_fifo_order() -> None:
    mailbox = Mailbox[int](capacity=4)
    for n in range(4):
        await mailbox.send(n)
    assert len(mailbox) == 4
    assert [await mailbox.receive() for _ in range(4)] == [0, 1, 2, 3]
    assert len(mailbox) == 0


async def test_send_waits_while_full(autojump_clock: trio.testing.MockClock) -> None:
    mailbox = Mailbox[str](capacity=2)
    sent_at: dict[str, float] = {}

    async def sender() -> None:
        for message in ("a", "b", "c"):
            await mailbox.send(message)
            sent_at[message] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.sleep(5)
        assert sent_at == {"a": 0.0, "b": 0.0}  # "c" is waiting for room
        assert len(mailbox) == 2
        assert await mailbox.receive() == "a"
    assert sent_at == {"a": 0.0, "b": 0.0, "c": 5.0}
    assert [await mailbox.receive(), await mailbox.receive()] == ["b", "c"]


async def test_try_send_refuses_when_full_and_keeps_what_was_queued() -> None:
    mailbox = Mailbox[int](capacity=2)
    assert mailbox.try_send(1)
    assert mailbox.try_send(2)
    assert not mailbox.try_send(3)
    assert len(mailbox) == 2
    assert [await mailbox.receive(), await mailbox.receive()] == [1, 2]
    assert mailbox.try_send(4)


async def test_send_nowait_raises_mailbox_full() -> None:
    mailbox = Mailbox[int](capacity=1)
    mailbox.send_nowait(1)
    with pytest.raises(MailboxFull) as caught:
        mailbox.send_nowait(2)
    assert caught.value.capacity == 1
    assert str(caught.value) == "mailbox is full (1 messages queued)"
    assert isinstance(caught.value, MailboxError)
    assert await mailbox.receive() == 1


async def test_cancelled_send_queues_nothing(autojump_clock: trio.testing.MockClock) -> None:
    mailbox = Mailbox[int](capacity=1)
    await mailbox.send(1)
    with trio.move_on_after(3) as scope:
        await mailbox.send(2)
    assert scope.cancelled_caught
    assert trio.current_time() == 3.0
    assert len(mailbox) == 1


async def test_close_drains_queued_messages_then_ends_iteration() -> None:
    mailbox = Mailbox[int](capacity=3)
    for n in range(3):
        mailbox.send_nowait(n)
    mailbox.close()
    mailbox.close()  # idempotent
    assert mailbox.closed
    assert [message async for message in mailbox] == [0, 1, 2]
    with pytest.raises(MailboxClosed, match=r"^mailbox is closed and drained$"):
        await mailbox.receive()


async def test_sending_to_a_closed_mailbox_raises() -> None:
    mailbox = Mailbox[int](capacity=3)
    mailbox.close()
    with pytest.raises(MailboxClosed):
        await mailbox.send(1)
    with pytest.raises(MailboxClosed):
        mailbox.send_nowait(1)
    with pytest.raises(MailboxClosed):
        mailbox.try_send(1)


async def test_close_wakes_blocked_senders_and_receivers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    full = Mailbox[int](capacity=1)
    full.send_nowait(0)
    empty = Mailbox[int](capacity=1)
    outcomes: dict[str, tuple[str, float]] = {}

    async def blocked_sender() -> None:
        with pytest.raises(MailboxClosed):
            await full.send(1)
        outcomes["sender"] = ("closed", trio.current_time())

    async def blocked_receiver() -> None:
        with pytest.raises(MailboxClosed):
            await empty.receive()
        outcomes["receiver"] = ("closed", trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_sender)
        nursery.start_soon(blocked_receiver)
        await trio.sleep(2)
        full.close()
        empty.close()
    assert outcomes == {"sender": ("closed", 2.0), "receiver": ("closed", 2.0)}
    assert await full.receive() == 0  # what was queued before closing is still delivered


async def test_async_iteration_follows_a_live_producer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[int](capacity=1)
    received: list[tuple[int, float]] = []

    async def producer() -> None:
        for n in range(3):
            await trio.sleep(1)
            await mailbox.send(n)
        mailbox.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        async for message in mailbox:
            received.append((message, trio.current_time()))
    assert received == [(0, 1.0), (1, 2.0), (2, 3.0)]


def test_repr_shows_fill_and_state() -> None:
    mailbox = Mailbox[int](capacity=2)
    mailbox.send_nowait(1)
    assert repr(mailbox) == "<Mailbox 1/2 open>"
    mailbox.close()
    assert repr(mailbox) == "<Mailbox 1/2 closed>"
