"""raftstore's MVCC state machine: etcd v3 key-value semantics, pure and deterministic.

Modules, one topic each (read them in this order):

* :mod:`.record`, :mod:`.key_index`, :mod:`.index` -- how history is stored;
* :mod:`.keyrange` -- etcd's ``(key, range_end)`` convention;
* :mod:`.validation`, :mod:`.compare`, :mod:`.range_query` -- request rules;
* :mod:`.leases` -- the replicated lease table;
* :mod:`.commands` -- the versioned envelope of replicated commands;
* :mod:`.snapshot` -- the snapshot format;
* :mod:`.errors` -- the error taxonomy;
* :mod:`.store` -- :class:`MvccStore`, which ties them together.
"""

from raftstore.mvcc.commands import (
    Command,
    CommandKind,
    barrier,
    decode_command,
    encode_command,
    make_command,
)
from raftstore.mvcc.errors import CommandDecodeError, CompactedError, MvccError, SnapshotFormatError
from raftstore.mvcc.keyrange import prefix_end
from raftstore.mvcc.store import ApplyResult, MvccStore

__all__ = [
    "ApplyResult",
    "Command",
    "CommandDecodeError",
    "CommandKind",
    "CompactedError",
    "MvccError",
    "MvccStore",
    "SnapshotFormatError",
    "barrier",
    "decode_command",
    "encode_command",
    "make_command",
    "prefix_end",
]
