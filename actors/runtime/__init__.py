"""The actor runtime: bounded mailboxes, actors, and one-for-one supervisors.

An actor is a trio task that owns its state and reacts to messages from a bounded
:class:`Mailbox`. Actors run as children of a supervisor, which restarts them with
exponential backoff when they crash and escalates (:class:`TooManyRestarts`) when they
crash too often. See each module's docstring for its guarantees:

* :mod:`.mailbox` -- :class:`Mailbox` and its overflow policy
* :mod:`.actor` -- the :class:`Actor` protocol and :func:`actor_child`
* :mod:`.spec` -- :class:`ChildSpec`, :class:`RestartPolicy`, :class:`RestartIntensity`
* :mod:`.backoff` -- :class:`BackoffPolicy` and :class:`Backoff`
* :mod:`.supervisor` -- :func:`open_supervisor`, :func:`run_supervisor`, :class:`Supervisor`
* :mod:`.errors` -- the error taxonomy
"""

from .actor import Actor, actor_child
from .backoff import DEFAULT_BACKOFF, Backoff, BackoffPolicy
from .errors import (
    ActorRuntimeError,
    DuplicateChild,
    MailboxClosed,
    MailboxError,
    MailboxFull,
    SupervisorClosed,
    SupervisorError,
    TooManyRestarts,
    UnknownChild,
)
from .mailbox import Mailbox
from .spec import DEFAULT_INTENSITY, ChildSpec, RestartIntensity, RestartPolicy
from .supervisor import ChildState, ChildStatus, Supervisor, open_supervisor, run_supervisor

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_INTENSITY",
    "Actor",
    "ActorRuntimeError",
    "Backoff",
    "BackoffPolicy",
    "ChildSpec",
    "ChildState",
    "ChildStatus",
    "DuplicateChild",
    "MailboxClosed",
    "MailboxError",
    "MailboxFull",
    "Mailbox",
    "RestartIntensity",
    "RestartPolicy",
    "Supervisor",
    "SupervisorClosed",
    "SupervisorError",
    "TooManyRestarts",
    "UnknownChild",
    "actor_child",
    "open_supervisor",
    "run_supervisor",
]
