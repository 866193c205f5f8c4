"""KeyIndex: generations, reads at a revision, predecessors, compaction (the docstring's example)."""

from __future__ import annotations

import pytest

from raftstore.mvcc.key_index import KeyIndex
from raftstore.mvcc.record import Record

K = b"k"


def put(main: int, sub: int = 0, version: int = 1, create: int = 0) -> Record:
    return Record(K, main, sub, False, f"v{main}".encode(), create or main, version)


def tomb(main: int, sub: int = 0) -> Record:
    return Record(K, main, sub, True)


def example() -> KeyIndex:
    ki = KeyIndex(K)
    ki.put(put(2))
    ki.put(put(4, version=2, create=2))
    ki.tombstone(tomb(6))
    ki.put(put(8))
    ki.put(put(9, sub=1, version=2, create=8))
    return ki


def revs(ki: KeyIndex) -> list[list[tuple[int, int]]]:
    return [[r.revision for r in g.records] for g in ki.generations]


@pytest.mark.parametrize(
    ("at", "expected"),
    [(1, None), (2, 2), (3, 2), (5, 4), (6, None), (7, None), (8, 8), (9, 9), (100, 9)],
)
def test_get_at_revision(at: int, expected: int | None) -> None:
    found = example().get(at)
    assert (found.main if found else None) == expected


def test_latest_and_generations() -> None:
    ki = example()
    assert revs(ki) == [[(2, 0), (4, 0), (6, 0)], [(8, 0), (9, 1)]]
    assert ki.generations[0].closed and not ki.generations[1].closed
    latest = ki.latest()
    assert latest is not None and latest.main == 9
    ki.tombstone(tomb(10))
    assert ki.latest() is None and ki.get(10) is None


def test_previous() -> None:
    ki = example()
    records = list(ki.records())
    prevs = [ki.previous(r) for r in records]
    assert [p.main if p else None for p in prevs] == [None, 2, 4, None, 8]


def test_tombstone_requires_a_live_key() -> None:
    ki = KeyIndex(K)
    with pytest.raises(AssertionError):
        ki.tombstone(tomb(3))
    ki.put(put(2))
    with pytest.raises(AssertionError):
        ki.put(put(2))  # revisions must increase


@pytest.mark.parametrize(
    ("at", "remaining"),
    [
        (1, [[(2, 0), (4, 0), (6, 0)], [(8, 0), (9, 1)]]),
        (3, [[(2, 0), (4, 0), (6, 0)], [(8, 0), (9, 1)]]),
        (5, [[(4, 0), (6, 0)], [(8, 0), (9, 1)]]),
        (6, [[(8, 0), (9, 1)]]),
        (7, [[(8, 0), (9, 1)]]),
        (8, [[(8, 0), (9, 1)]]),
        (9, [[(9, 1)]]),
        (50, [[(9, 1)]]),
    ],
)
def test_compact(at: int, remaining: list[list[tuple[int, int]]]) -> None:
    ki = example()
    before = {r.revision for r in ki.records()}
    dropped = ki.compact(at)
    assert revs(ki) == remaining
    assert {r.revision for r in dropped} == before - {r for g in remaining for r in g}
    # Reads at or after the compaction point are unchanged.
    reference = example()
    for rev in range(at, 12):
        assert ki.get(rev) == reference.get(rev)


def test_compact_deleted_key_disappears() -> None:
    ki = KeyIndex(K)
    ki.put(put(2))
    ki.tombstone(tomb(3))
    assert len(ki.compact(3)) == 2
    assert ki.is_empty()
