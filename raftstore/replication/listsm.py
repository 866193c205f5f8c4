"""``ListStateMachine``: the smallest useful state machine, for tests, demos and benchmarks.

It appends every command to a list and returns the new length. Snapshot format: u32 count,
then for each item u32 length + bytes.
"""

from __future__ import annotations

import struct
import threading


class ListStateMachine:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # readers run in other threads than apply
        self._items: list[bytes] = []
        self.last_index = 0

    def apply(self, command: bytes, *, index: int) -> object:
        with self._lock:
            self._items.append(command)
            self.last_index = index
            return len(self._items)

    def snapshot(self) -> bytes:
        with self._lock:
            parts = [struct.pack("<I", len(self._items))]
            for item in self._items:
                parts.append(struct.pack("<I", len(item)))
                parts.append(item)
            return b"".join(parts)

    def restore(self, data: bytes) -> None:
        (count,) = struct.unpack_from("<I", data)
        pos, items = 4, []
        for _ in range(count):
            (size,) = struct.unpack_from("<I", data, pos)
            items.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        with self._lock:
            self._items = items

    def items(self) -> list[bytes]:
        with self._lock:
            return list(self._items)
