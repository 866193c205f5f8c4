"""A typed trio client of the API server: ``async with open_api_client(address) as api``.

See :mod:`.client` for the guarantees (read failover, writes sent once, watches),
:mod:`.spread` for which API server a client starts with, and
:mod:`.errors` for the error taxonomy.
"""

from .client import (
    DEFAULT_TIMEOUT,
    ApiClient,
    Deleted,
    EventType,
    KindRef,
    ObjectList,
    WatchEvent,
    WatchStream,
    kind_info,
    open_api_client,
    pack,
    unpack,
)
from .errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Expired,
    Forbidden,
    InternalError,
    Invalid,
    NotFound,
    ServiceUnavailable,
    Timeout,
    Unreachable,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AlreadyExists",
    "ApiClient",
    "ApiError",
    "Conflict",
    "Deleted",
    "EventType",
    "Expired",
    "Forbidden",
    "InternalError",
    "Invalid",
    "KindRef",
    "NotFound",
    "ObjectList",
    "ServiceUnavailable",
    "Timeout",
    "Unreachable",
    "WatchEvent",
    "WatchStream",
    "kind_info",
    "open_api_client",
    "pack",
    "unpack",
]
