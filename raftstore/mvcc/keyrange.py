"""etcd's key-range convention, in one place.

A request names keys with ``(key, range_end)``:

=====================  ==============================================
``range_end``          keys selected
=====================  ==============================================
``b""``                exactly ``key``
``b"\\0"``             every key ``>= key`` (so ``key=b"\\0"`` means all)
anything else          the half-open interval ``[key, range_end)``;
                       empty when ``range_end <= key``
=====================  ==============================================

A prefix query is just ``range_end = prefix_end(prefix)``.
"""

from __future__ import annotations

__all__ = ["ALL_KEYS_END", "in_range", "prefix_end"]

ALL_KEYS_END = b"\0"


def in_range(candidate: bytes, key: bytes, range_end: bytes) -> bool:
    """Whether ``candidate`` is selected by ``(key, range_end)``."""
    if not range_end:
        return candidate == key
    if range_end == ALL_KEYS_END:
        return candidate >= key
    return key <= candidate < range_end


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix`` (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    # Every byte was 0xff (or the prefix was empty): no upper bound.
    return ALL_KEYS_END
