"""Actors: a task that owns its state and reacts to the messages in its mailbox.

An actor is any object with ``async def run(self, mailbox)``. It reads messages with
``async for message in mailbox`` (or ``await mailbox.receive()``), keeps its state in its
own attributes and shares it with nobody; other tasks talk to it only by sending
messages. ``run`` returns when the actor is done (typically when its mailbox is closed and
drained) and raises to crash.

:func:`actor_child` turns an actor factory and a mailbox into a
:class:`~actors.runtime.spec.ChildSpec`. The factory is called for every incarnation, so a
restarted actor starts from fresh state (let it crash: rebuild from the source of truth,
do not patch up state a bug may have corrupted), while the mailbox is shared by all
incarnations, so senders keep one stable address across restarts.

A Protocol rather than a base class: actors need no inherited behaviour, and any class
with the right ``run`` method fits, including test doubles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from .mailbox import Mailbox
from .spec import ChildSpec, RestartPolicy

__all__ = ["Actor", "actor_child"]

T = TypeVar("T")


class Actor(Protocol[T]):
    """Something that runs by reading messages of type ``T`` from a mailbox.

    Invariant in ``T`` because :class:`Mailbox` is: an actor both receives from the
    mailbox and may hand it on to others who send to it.
    """

    async def run(self, mailbox: Mailbox[T], /) -> None:
        """Process messages until done; return normally to stop, raise to crash."""
        ...


def actor_child(
    *,
    name: str,
    factory: Callable[[], Actor[T]],
    mailbox: Mailbox[T],
    restart: RestartPolicy = RestartPolicy.PERMANENT,
) -> ChildSpec:
    """A child spec that runs ``factory().run(mailbox)``: a fresh actor per incarnation."""

    async def run_incarnation() -> None:
        await factory().run(mailbox)

    return ChildSpec(name=name, target=run_incarnation, restart=restart)
