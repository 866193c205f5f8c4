"""The actor runtime's error taxonomy.

Expected conditions are named errors that callers can catch precisely; nothing in the
runtime raises a bare ``Exception`` or signals failure through a return code that could be
ignored by accident (the one deliberate exception is :meth:`Mailbox.try_send`, whose whole
point is a ``bool``).

::

    ActorRuntimeError
    ├── MailboxError
    │   ├── MailboxFull        a non-blocking send found the mailbox at capacity
    │   └── MailboxClosed      the mailbox was closed (and, for receivers, drained)
    └── SupervisorError
        ├── TooManyRestarts    a child crashed too often; the supervisor gave up
        ├── DuplicateChild     a child with that name is already supervised
        ├── UnknownChild       no child with that name is supervised
        └── SupervisorClosed   the supervisor is shutting down or has stopped
"""

from __future__ import annotations

__all__ = [
    "ActorRuntimeError",
    "DuplicateChild",
    "MailboxClosed",
    "MailboxError",
    "MailboxFull",
    "SupervisorClosed",
    "SupervisorError",
    "TooManyRestarts",
    "UnknownChild",
]


class ActorRuntimeError(Exception):
    """Base class of every error the actor runtime raises on purpose."""


class MailboxError(ActorRuntimeError):
    """Base class of mailbox errors."""


class MailboxFull(MailboxError):
    """A non-blocking send found the mailbox at capacity; the message was not queued."""

    def __init__(self, *, capacity: int) -> None:
        super().__init__(f"mailbox is full ({capacity} messages queued)")
        self.capacity = capacity


class MailboxClosed(MailboxError):
    """The mailbox was closed: senders may not send, receivers have drained it."""


class SupervisorError(ActorRuntimeError):
    """Base class of supervisor errors."""


class TooManyRestarts(SupervisorError):
    """A child terminated more often than the restart intensity allows.

    Raised out of the supervisor after every other child has been cancelled. The
    exception that ended the child's last run (``None`` if a permanent child kept
    returning normally) is both :attr:`last_error` and ``__cause__``.
    """

    def __init__(
        self,
        *,
        supervisor: str,
        child: str,
        restarts: int,
        window: float,
        last_error: BaseException | None,
    ) -> None:
        super().__init__(
            f"supervisor {supervisor!r}: child {child!r} terminated {restarts} times "
            f"within {window:g}s; giving up (last error: {last_error!r})"
        )
        self.supervisor = supervisor
        self.child = child
        self.restarts = restarts
        self.window = window
        self.last_error = last_error


class DuplicateChild(SupervisorError):
    """A child with this name is already supervised."""

    def __init__(self, *, supervisor: str, child: str) -> None:
        super().__init__(f"supervisor {supervisor!r} already has a child named {child!r}")
        self.supervisor = supervisor
        self.child = child


class UnknownChild(SupervisorError):
    """No child with this name is supervised (it never existed or has terminated)."""

    def __init__(self, *, supervisor: str, child: str) -> None:
        super().__init__(f"supervisor {supervisor!r} has no child named {child!r}")
        self.supervisor = supervisor
        self.child = child


class SupervisorClosed(SupervisorError):
    """The supervisor is shutting down or has stopped; it accepts no new children."""

    def __init__(self, *, supervisor: str) -> None:
        super().__init__(f"supervisor {supervisor!r} is shutting down; no new children")
        self.supervisor = supervisor
