"""Per-key history: the revisions of one key, grouped into generations.

A key's life is a sequence of *generations*. A generation starts with the put that creates
the key, collects every later put, and ends with the tombstone written by the delete. The
next put after a delete starts a new generation. Only the last generation may be open
(no tombstone yet); an open last generation means the key exists now.

Worked example. With these writes to key ``k`` (revision ``main.sub``)::

    put k @2.0   put k @4.0   delete k @6.0   put k @8.0   put k @9.1

the index holds two generations::

    generation 0: [2.0, 4.0, 6.0(tombstone)]   created at 2, closed at 6
    generation 1: [8.0, 9.1]                   created at 8, open

and reads at a revision ``r`` resolve like this:

======  ===========================  =====================================
``r``   record returned by get(r)    why
======  ===========================  =====================================
1       none                         before the first generation
3       2.0 (version 1, create 2)    latest record <= 3 in generation 0
5       4.0 (version 2, create 2)
6, 7    none                         generation 0 is closed by 6.0
8       8.0 (version 1, create 8)    generation 1 re-created the key
9+      9.1 (version 2, create 8)
======  ===========================  =====================================

``compact(at)`` keeps, per generation, the newest record ``<= at`` and everything after it;
a generation that is closed at or below ``at`` disappears completely (the key did not exist
at ``at``). Compacting the example at 5 leaves ``[4.0, 6.0] [8.0, 9.1]``; at 6 or 7 it
leaves ``[8.0, 9.1]``; at 9 it leaves ``[9.1]``.

The records themselves carry value, version and create revision, so the index needs no
other bookkeeping. Generations are short lists searched with :mod:`bisect`; a key rarely
has more than a handful of generations, so they are scanned newest first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from operator import attrgetter

from raftstore.mvcc.record import Record, revision_of

__all__ = ["Generation", "KeyIndex"]

_main = attrgetter("main")


class Generation:
    """One life of a key: puts in revision order, closed by a tombstone or still open."""

    __slots__ = ("closed", "records")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.closed = False

    def __repr__(self) -> str:
        revs = ", ".join(f"{r.main}.{r.sub}{'t' if r.tombstone else ''}" for r in self.records)
        return f"Generation([{revs}]{', closed' if self.closed else ''})"


class KeyIndex:
    """The history of one key. Invariant: every generation but the last is closed and
    non-empty; records are appended in strictly increasing revision order."""

    __slots__ = ("generations", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.generations: list[Generation] = []

    def __repr__(self) -> str:
        return f"KeyIndex({self.key!r}, {self.generations!r})"

    # ------------------------------------------------------------------ writes

    def put(self, record: Record) -> None:
        """Append a put; starts a new generation if the key does not exist now."""
        assert not record.tombstone and record.key == self.key
        if not self.generations or self.generations[-1].closed:
            self.generations.append(Generation())
        self._append(self.generations[-1], record)

    def tombstone(self, record: Record) -> None:
        """Append a tombstone, closing the current generation. The key must exist."""
        assert record.tombstone and record.key == self.key
        if not self.generations or self.generations[-1].closed:
            raise AssertionError(f"tombstone for {self.key!r}, which does not exist")
        generation = self.generations[-1]
        self._append(generation, record)
        generation.closed = True

    @staticmethod
    def _append(generation: Generation, record: Record) -> None:
        if generation.records and generation.records[-1].revision >= record.revision:
            raise AssertionError(
                f"revision {record.revision} after {generation.records[-1].revision}"
            )
        generation.records.append(record)

    # ------------------------------------------------------------------ reads

    def latest(self) -> Record | None:
        """The key's current put record, or None if it does not exist now."""
        if not self.generations or self.generations[-1].closed:
            return None
        return self.generations[-1].records[-1]

    def get(self, at: int) -> Record | None:
        """The put record visible at main revision ``at``, or None if the key did not exist."""
        for generation in reversed(self.generations):
            records = generation.records
            if records[0].main > at:
                continue
            i = bisect_right(records, at, key=_main) - 1
            found = records[i]
            return None if found.tombstone else found
        return None

    def previous(self, record: Record) -> Record | None:
        """The put that ``record`` replaced or deleted; None when ``record`` created the key
        (or when that history has been compacted away)."""
        for generation in reversed(self.generations):
            records = generation.records
            if records[0].revision > record.revision:
                continue
            i = bisect_left(records, record.revision, key=revision_of)
            if i >= len(records) or records[i].revision != record.revision:
                return None
            return records[i - 1] if i > 0 else None
        return None

    def records(self) -> Iterator[Record]:
        for generation in self.generations:
            yield from generation.records

    def is_empty(self) -> bool:
        return not self.generations

    # ------------------------------------------------------------------ compaction

    def compact(self, at: int) -> list[Record]:
        """Forget history older than ``at`` (see the module docstring); return the records
        dropped so the caller can drop them from the history log too."""
        dropped: list[Record] = []
        kept: list[Generation] = []
        for generation in self.generations:
            records = generation.records
            if records[-1].main <= at:
                if generation.closed:
                    dropped.extend(records)
                    continue
                dropped.extend(records[:-1])
                generation.records = records[-1:]
            else:
                n = bisect_right(records, at, key=_main)
                if n > 1:
                    dropped.extend(records[: n - 1])
                    generation.records = records[n - 1 :]
            kept.append(generation)
        self.generations = kept
        return dropped
