"""Keys, values and key ranges.

Keys and values are bytes on the wire; the client accepts ``str`` (encoded as UTF-8) or
``bytes`` everywhere and always returns ``bytes``. A range is etcd's half-open
``[key, range_end)``: no ``range_end`` means the one key, ``prefix=True`` means every key
that starts with ``key``, and a ``range_end`` of ``b"\\0"`` means every key ``>= key``.
"""

from __future__ import annotations

Data = str | bytes

ALL_KEYS_FROM = b"\0"  # as range_end: every key >= key


def to_bytes(data: Data) -> bytes:
    """``data`` as bytes: str is UTF-8 encoded."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise TypeError(f"keys and values must be str or bytes, not {data!r}")


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with ``prefix``.

    The last byte below 0xff is incremented and the rest dropped; an empty prefix or one
    of only 0xff bytes has no such key, so the range runs to the end (``b"\\0"``).
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return ALL_KEYS_FROM
    return stripped[:-1] + bytes([stripped[-1] + 1])


def key_range(key: Data, *, prefix: bool, range_end: Data | None) -> tuple[bytes, bytes]:
    """``(key, range_end)`` bytes for a request; ``range_end`` is ``b""`` for one key."""
    start = to_bytes(key)
    if prefix and range_end is not None:
        raise ValueError("give prefix=True or range_end, not both")
    if prefix:
        return start, prefix_end(start)
    return start, b"" if range_end is None else to_bytes(range_end)
