"""The API client's error taxonomy: one class per way a request can fail.

Each class subclasses the :mod:`proto.rpc` error of the status code the API server answers
with (so ``except rpc.NotFound`` still catches :class:`NotFound`), and adds ``reason``:
the word Kubernetes uses for that failure (``NotFound``, ``AlreadyExists``, ``Conflict``,
``Invalid``, ...), which the CLI prints as ``Error from server (Reason): message``.
``message`` is the server's, unchanged.

Transport failures are wrapped here, at the boundary: a call that cannot reach any
address raises :class:`Unreachable` (a :class:`ServiceUnavailable`), naming every address
tried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import grpc

from proto import rpc


class ApiError(rpc.RpcError):
    """Base of every error the API client raises; ``reason`` names the failure."""

    reason: ClassVar[str] = "InternalError"


class NotFound(ApiError, rpc.NotFound):
    reason = "NotFound"


class AlreadyExists(ApiError, rpc.AlreadyExists):
    reason = "AlreadyExists"


class Conflict(ApiError, rpc.Aborted):
    """A stale resourceVersion or a failed precondition: re-read and try again."""

    reason = "Conflict"


class Invalid(ApiError, rpc.InvalidArgument):
    """An invalid object, selector, patch or kind; ``message`` says which field and why."""

    reason = "Invalid"


class Forbidden(ApiError, rpc.FailedPrecondition):
    """The namespace is being deleted, or the object may not be deleted."""

    reason = "Forbidden"


class Expired(ApiError, rpc.OutOfRange):
    """A watch or continue token starts before the history the server keeps: list again."""

    reason = "Expired"


class Timeout(ApiError, rpc.DeadlineExceeded):
    reason = "Timeout"


class ServiceUnavailable(ApiError, rpc.Unavailable):
    """The API server answered but cannot reach its store, or the call failed in transit."""

    reason = "ServiceUnavailable"


class Unreachable(ServiceUnavailable):
    """No API server address answered; ``addresses`` are the ones tried."""

    def __init__(self, message: str, *, addresses: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.addresses = tuple(addresses)


class InternalError(ApiError, rpc.Internal):
    reason = "InternalError"


_BY_CODE: Mapping[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.INVALID_ARGUMENT: Invalid,
    grpc.StatusCode.FAILED_PRECONDITION: Forbidden,
    grpc.StatusCode.OUT_OF_RANGE: Expired,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailable,
}

# grpc core's wording when no connection could be made (as opposed to a server that
# answered UNAVAILABLE because its store is down).
_CONNECT_FAILURES = ("failed to connect", "connection refused", "dns resolution failed")


def is_connect_failure(exc: rpc.RpcError) -> bool:
    """True when ``exc`` says the address could not be reached at all."""
    text = exc.message.lower()
    return isinstance(exc, rpc.Unavailable) and any(s in text for s in _CONNECT_FAILURES)


def translate(exc: rpc.RpcError) -> ApiError:
    """The :class:`ApiError` for an error from a call (already an ApiError: itself)."""
    if isinstance(exc, ApiError):
        return exc
    cls = _BY_CODE.get(exc.code, InternalError)
    return cls(exc.message)


__all__ = [
    "AlreadyExists",
    "ApiError",
    "Conflict",
    "Expired",
    "Forbidden",
    "InternalError",
    "Invalid",
    "NotFound",
    "ServiceUnavailable",
    "Timeout",
    "Unreachable",
    "is_connect_failure",
    "translate",
]
