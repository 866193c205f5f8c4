"""All keys the store has history for, kept sorted so that ranges are a bisect away.

The index maps each key to its :class:`~raftstore.mvcc.key_index.KeyIndex` and keeps the
keys in a sorted list. A range ``[key, range_end)`` is two bisections and a slice; a
single-key read is a dict lookup. New keys are inserted with ``insort`` (a memmove, fast at
the sizes a control plane holds); keys whose whole history was compacted away are dropped
in one rebuild per compaction.

Deleted keys stay in the index until compaction removes their last generation, because
reads at older revisions still need them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

from raftstore.mvcc.key_index import KeyIndex
from raftstore.mvcc.keyrange import ALL_KEYS_END

__all__ = ["Index"]


class Index:
    __slots__ = ("_by_key", "_keys")

    def __init__(self) -> None:
        self._by_key: dict[bytes, KeyIndex] = {}
        self._keys: list[bytes] = []  # sorted; same members as _by_key

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: bytes) -> KeyIndex | None:
        return self._by_key.get(key)

    def get_or_create(self, key: bytes) -> KeyIndex:
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = KeyIndex(key)
            insort(self._keys, key)
        return found

    def range(self, key: bytes, range_end: bytes) -> Iterator[KeyIndex]:
        """Key indexes selected by ``(key, range_end)`` (see :mod:`.keyrange`), in key order."""
        if not range_end:
            found = self._by_key.get(key)
            if found is not None:
                yield found
            return
        keys = self._keys
        lo = bisect_left(keys, key)
        hi = len(keys) if range_end == ALL_KEYS_END else bisect_left(keys, range_end)
        by_key = self._by_key
        for i in range(lo, hi):
            yield by_key[keys[i]]

    def __iter__(self) -> Iterator[KeyIndex]:
        by_key = self._by_key
        return (by_key[k] for k in self._keys)

    def remove_all(self, keys: Iterable[bytes]) -> None:
        doomed = set(keys)
        if not doomed:
            return
        for key in doomed:
            del self._by_key[key]
        self._keys = [k for k in self._keys if k not in doomed]
