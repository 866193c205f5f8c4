"""Bounded mailboxes: how messages reach an actor.

An actor owns its state and changes it only in reaction to messages taken one at a time
from its mailbox. The mailbox is a bounded FIFO queue over a trio memory channel.

Overflow policy
    A mailbox never grows past ``capacity``. What happens to a sender that finds it full
    is the sender's choice, made at the call site:

    * :meth:`Mailbox.send` waits until there is room (back-pressure). Use it when the
      sender can afford to slow down to the actor's pace.
    * :meth:`Mailbox.try_send` returns ``False`` and drops nothing that was already
      queued; the new message is simply not accepted. Use it from writers that must never
      block (a watch fan-out, a timer): the caller decides whether to drop, coalesce or
      retry later.
    * :meth:`Mailbox.send_nowait` is the same but raises :class:`MailboxFull`, for callers
      to whom a full mailbox is an error worth propagating.

    Rejected: an unbounded queue (hides a slow actor until memory runs out) and silently
    dropping the oldest or newest message (loses data behind the sender's back).

Guarantees
    * FIFO: messages are received in the order their sends completed.
    * Nothing is lost inside the mailbox: every accepted message is received exactly once,
      even after :meth:`~Mailbox.close` (receivers drain what was queued, then see the
      end).
    * One consumer is the convention (the actor). Several receivers share the work: each
      message goes to exactly one of them.
    * A mailbox outlives the actor that reads it. Under a supervisor, the restarted actor
      reads the same mailbox, so senders keep one stable address and queued messages
      survive a crash; only a message the crashed actor had already received is lost.

Closing
    :meth:`~Mailbox.close` ends the mailbox for senders: later sends, and sends blocked
    waiting for room, raise :class:`MailboxClosed`. Receivers get the messages already
    queued, then :meth:`~Mailbox.receive` raises :class:`MailboxClosed` and ``async for``
    stops.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

from .errors import MailboxClosed, MailboxFull

__all__ = ["Mailbox"]

T = TypeVar("T")


class Mailbox(Generic[T]):
    """A bounded FIFO of messages of type ``T``; see the module docstring for the policy."""

    def __init__(self, *, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be int, not {type(capacity).__name__}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}")
        self._capacity = capacity
        self._send, self._receive = trio.open_memory_channel[T](capacity)

    @property
    def capacity(self) -> int:
        """How many messages the mailbox holds before senders must wait."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called (messages may still be queued)."""
        return self._send.statistics().open_send_channels == 0

    def __len__(self) -> int:
        """The number of messages queued and not yet received."""
        return self._send.statistics().current_buffer_used

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Mailbox {len(self)}/{self._capacity} {state}>"

    async def send(self, message: T) -> None:
        """Queue ``message``, waiting while the mailbox is full.

        Raises :class:`MailboxClosed` if the mailbox is closed before or while waiting.
        If cancelled while waiting, the message was not queued.
        """
        try:
            await self._send.send(message)
        except trio.ClosedResourceError:
            raise MailboxClosed("mailbox is closed") from None

    def send_nowait(self, message: T) -> None:
        """Queue ``message`` now, or raise :class:`MailboxFull` (nothing is queued).

        Raises :class:`MailboxClosed` if the mailbox is closed.
        """
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull(capacity=self._capacity) from None
        except trio.ClosedResourceError:
            raise MailboxClosed("mailbox is closed") from None

    def try_send(self, message: T) -> bool:
        """Queue ``message`` now if there is room; return whether it was queued.

        A full mailbox is an expected condition here and answers ``False``; a closed one
        is a lifecycle error and raises :class:`MailboxClosed`.
        """
        try:
            self.send_nowait(message)
        except MailboxFull:
            return False
        return True

    async def receive(self) -> T:
        """Take the oldest message, waiting until there is one.

        Raises :class:`MailboxClosed` once the mailbox is closed and drained.
        """
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise MailboxClosed("mailbox is closed and drained") from None

    def __aiter__(self) -> Mailbox[T]:
        return self

    async def __anext__(self) -> T:
        """The next message; iteration stops once the mailbox is closed and drained."""
        try:
            return await self.receive()
        except MailboxClosed:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop accepting messages; idempotent. Queued messages are still delivered."""
        self._send.close()
