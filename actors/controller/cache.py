"""The informer's local store: objects of one kind by key, with secondary indexes.

A control loop asks its cache questions the API server would answer more slowly: "the pod
``web/web-1``", "every pod in namespace ``web``", "every pod bound to node ``n1``". The
cache answers from memory, kept current by an :class:`~.informer.Informer`.

Keys are client-go's: ``namespace/name`` for namespaced objects, ``name`` for cluster-scoped
ones (:func:`object_key`, :func:`split_key`).

Indexes map an index name to a function from an object to the values it is filed under
(``"namespace"`` is always present). ``by_index("nodeName", "n1")`` is a dictionary lookup,
not a scan, so a node agent of a 1,000-pod cluster finds its pods without walking them all.

Objects handed out are the cache's own: never mutate one. Copy it first
(``copy = type(obj)(); copy.CopyFrom(obj)``) when you want to change and write it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from google.protobuf.message import Message

__all__ = ["NAMESPACE_INDEX", "Cache", "IndexFunc", "object_key", "split_key"]

IndexFunc = Callable[[Any], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def object_key(obj: Any) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object."""
    meta = obj.metadata
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def split_key(key: str) -> tuple[str, str]:
    """``(namespace, name)`` from a key; the namespace is ``""`` for cluster-scoped keys."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def _namespace(obj: Any) -> Iterable[str]:
    return (obj.metadata.namespace,)


class Cache:
    """Objects by key plus inverted indexes; single-task use (no locking needed on trio)."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Message] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: _namespace, **(indexers or {})}
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in self._indexers}

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Any | None:
        return self._items.get(key)

    def get_by_name(self, namespace: str, name: str) -> Any | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items.values()))

    def keys(self) -> list[str]:
        return list(self._items)

    def list(self, namespace: str | None = None) -> builtins.list[Any]:
        """Every object, or those in ``namespace``."""
        if namespace is None:
            return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[Any]:
        """Objects filed under ``value`` in ``index``; KeyError for an unknown index."""
        if index not in self._indexes:
            raise KeyError(f"no index named {index!r} (have: {', '.join(sorted(self._indexes))})")
        keys = self._indexes[index].get(value, ())
        return [self._items[key] for key in sorted(keys)]

    def index_values(self, index: str) -> builtins.list[str]:
        """The values that currently have objects filed under them in ``index``."""
        return sorted(self._indexes[index])

    # ------------------------------------------------------------------ writes (informer)

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        """Add an index (files existing objects too); re-adding one name is an error."""
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = func
        self._indexes[name] = {}
        self._filed[name] = {}
        for key, obj in self._items.items():
            self._file(name, key, obj)

    def put(self, obj: Message) -> Any | None:
        """Store ``obj``; returns the object it replaced."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unfile_all(key)
        self._items[key] = obj
        for name in self._indexers:
            self._file(name, key, obj)
        return old

    def remove(self, key: str) -> Any | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unfile_all(key)
        return old

    def _file(self, name: str, key: str, obj: Message) -> None:
        values = tuple(dict.fromkeys(self._indexers[name](obj)))
        self._filed[name][key] = values
        index = self._indexes[name]
        for value in values:
            index.setdefault(value, set()).add(key)

    def _unfile_all(self, key: str) -> None:
        for name, filed in self._filed.items():
            index = self._indexes[name]
            for value in filed.pop(key, ()):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
