"""The store client: etcd's v3 API from trio, for raftstore and a real etcd alike.

::

    async with open_client(["127.0.0.1:2379"]) as client:
        put = await client.put("/registry/pods/default/web", data)
        cas = await client.put_if("/registry/pods/default/web", new, mod_revision=put.revision)
        async with client.watch("/registry/pods/", prefix=True, start_revision=rev) as watch:
            async for batch in watch:
                ...

Modules, one topic each:

* :mod:`.client` -- :func:`open_client`, :class:`Client`: KV, transactions, leases, status.
* :mod:`.transport` -- endpoints, failover and the retry policy (reads retried on another
  endpoint; writes only when provably unsent, else :class:`Indeterminate`).
* :mod:`.watch` -- watches that resume after failures without loss or repeats.
* :mod:`.lease` -- keep-alives that report a lost lease.
* :mod:`.compare`, :mod:`.ops` -- transaction conditions and operations.
* :mod:`.results` -- frozen dataclasses for every result.
* :mod:`.errors` -- the typed errors, mapped from etcd's status codes and messages.
* :mod:`.keys` -- keys, values and ranges.
"""

from raftstore.client.client import Client, open_client
from raftstore.client.compare import (
    Compare,
    CompareTarget,
    compare_create,
    compare_lease,
    compare_mod,
    compare_value,
    compare_version,
    key_absent,
    unchanged_since,
)
from raftstore.client.errors import (
    Compacted,
    DuplicateKey,
    EmptyKey,
    EndpointsUnavailable,
    FutureRevision,
    Indeterminate,
    LeaseExists,
    LeaseLost,
    LeaseNotFound,
    LeaseTtlTooLarge,
    NoLeader,
    NoSpace,
    RequestTooLarge,
    StoreError,
    TooManyOps,
    WatchCanceled,
)
from raftstore.client.keys import prefix_end
from raftstore.client.lease import KeepAlive
from raftstore.client.ops import (
    DeleteOp,
    GetOp,
    Op,
    PutOp,
    Sort,
    SortOrder,
    SortTarget,
    TxnOp,
    op_delete,
    op_get,
    op_put,
    op_txn,
)
from raftstore.client.results import (
    CasResult,
    DeleteResult,
    Event,
    EventType,
    Header,
    KeyValue,
    Lease,
    LeaseInfo,
    Member,
    PutResult,
    RangeResult,
    Status,
    TxnResult,
    WatchBatch,
)
from raftstore.client.watch import Watch, WatchFilter

__all__ = [
    "CasResult",
    "Client",
    "Compacted",
    "Compare",
    "CompareTarget",
    "DeleteOp",
    "DeleteResult",
    "DuplicateKey",
    "EmptyKey",
    "EndpointsUnavailable",
    "Event",
    "EventType",
    "FutureRevision",
    "GetOp",
    "Header",
    "Indeterminate",
    "KeepAlive",
    "KeyValue",
    "Lease",
    "LeaseExists",
    "LeaseInfo",
    "LeaseLost",
    "LeaseNotFound",
    "LeaseTtlTooLarge",
    "Member",
    "NoLeader",
    "NoSpace",
    "Op",
    "PutOp",
    "PutResult",
    "RangeResult",
    "RequestTooLarge",
    "Sort",
    "SortOrder",
    "SortTarget",
    "Status",
    "StoreError",
    "TooManyOps",
    "TxnOp",
    "TxnResult",
    "Watch",
    "WatchBatch",
    "WatchCanceled",
    "WatchFilter",
    "compare_create",
    "compare_lease",
    "compare_mod",
    "compare_value",
    "compare_version",
    "key_absent",
    "op_delete",
    "op_get",
    "op_put",
    "op_txn",
    "open_client",
    "prefix_end",
    "unchanged_since",
]
