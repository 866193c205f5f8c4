"""Container logs: where they live, their line format, and reading them (tail, follow).

Format. Each line of a log file is one record in the CRI logging format that
containerd and CRI-O write and the kubelet reads::

    2024-05-01T12:00:00.123456789Z stdout F hello world
    <RFC3339Nano UTC timestamp>   <stream> <tag> <content>

The tag is ``F`` for a full line and ``P`` for a piece of a line longer than 16 KiB
(several ``P`` records of one stream and a final ``F`` make one logical line). The writer
is the process runtime's shim (:mod:`node_agent.runtime.shim`); keeping the timestamp in
the file is what lets ``logs --timestamps`` show or hide it.

Rotation. The writer never lets ``<log>`` grow past ``max_bytes`` (10 MiB by default):
before a write would, it renames ``<log>.<k>`` to ``<log>.<k+1>`` (dropping the oldest
beyond ``keep``, 3 by default), ``<log>`` to ``<log>.1``, and starts a new ``<log>``.
Readers here read all of them, oldest first (Kubernetes reads only the newest file).

Layout. As the kubelet does, the agent keeps one directory per container of a pod and
one file per attempt: ``<logs>/<namespace>_<pod>_<uid>/<container>/<attempt>.log``
(:func:`container_log_path`); the previous instance's log (``logs --previous``) is the
newest attempt before the current one (:func:`previous_attempt`).

Following. :func:`follow` polls the file (every 0.1 s by default; no inotify in the
standard library) and follows it across rotation by inode: when ``<log>`` is replaced,
it finishes the file it has open, reads any rotated file it has not seen yet, then
continues with the new ``<log>`` -- no line is lost or repeated as long as the reader
keeps up within ``keep`` rotations.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trio

__all__ = [
    "LogRecord",
    "LogRotation",
    "container_log_dir",
    "container_log_path",
    "follow",
    "log_files",
    "parse_records",
    "previous_attempt",
    "read_log",
    "tail",
]

_BLOCK = 64 * 1024


@dataclass(frozen=True)
class LogRotation:
    """Size-based rotation: at most ``max_bytes`` per file, ``keep`` rotated files."""

    max_bytes: int = 10 * 1024 * 1024
    keep: int = 3

    def __post_init__(self) -> None:
        if self.max_bytes < 1024:
            raise ValueError(f"max_bytes must be at least 1024, got {self.max_bytes}")
        if self.keep < 0:
            raise ValueError(f"keep must be >= 0, got {self.keep}")


@dataclass(frozen=True)
class LogRecord:
    """One logical line: its first piece's timestamp, stream and content (no newline)."""

    timestamp: str
    stream: str
    content: bytes

    @property
    def time(self) -> datetime:
        """The timestamp as an aware datetime (microsecond precision)."""
        text = self.timestamp.rstrip("Z")
        whole, _, fraction = text.partition(".")
        return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")

    def render(self, *, timestamps: bool = False) -> bytes:
        """The line as ``logs`` prints it, with the timestamp first when asked."""
        if timestamps:
            return self.timestamp.encode() + b" " + self.content + b"\n"
        return self.content + b"\n"


# ---------------------------------------------------------------------------------------
# Paths


def container_log_dir(
    logs_dir: Path, namespace: str, pod_name: str, pod_uid: str, container: str
) -> Path:
    return logs_dir / f"{namespace}_{pod_name}_{pod_uid}" / container


def container_log_path(
    logs_dir: Path, namespace: str, pod_name: str, pod_uid: str, container: str, attempt: int
) -> Path:
    return container_log_dir(logs_dir, namespace, pod_name, pod_uid, container) / f"{attempt}.log"


def previous_attempt(container_dir: Path, current: int) -> int | None:
    """The newest attempt before ``current`` that has a log in ``container_dir``."""
    attempts = []
    try:
        names = os.listdir(container_dir)
    except FileNotFoundError:
        return None
    for name in names:
        stem, dot, ext = name.partition(".")
        if dot and ext == "log" and stem.isdigit() and int(stem) < current:
            attempts.append(int(stem))
    return max(attempts, default=None)


def log_files(path: Path) -> list[Path]:
    """``path`` and its rotated files that exist, oldest first."""
    rotated = []
    index = 1
    while True:
        candidate = path.with_name(f"{path.name}.{index}")
        if not candidate.exists():
            break
        rotated.append(candidate)
        index += 1
    files = list(reversed(rotated))
    if path.exists():
        files.append(path)
    return files


# ---------------------------------------------------------------------------------------
# Parsing


class _Assembler:
    """Joins ``P`` pieces to their ``F`` record, per stream."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, bytes]] = {}

    def feed(self, raw: bytes) -> LogRecord | None:
        parts = raw.split(b" ", 3)
        if len(parts) < 3:
            return None  # not a record (a torn or foreign line): skipped
        timestamp = parts[0].decode(errors="replace")
        stream = parts[1].decode(errors="replace")
        tag = parts[2]
        content = parts[3] if len(parts) == 4 else b""
        first, before = self._pending.pop(stream, (timestamp, b""))
        if tag == b"P":
            self._pending[stream] = (first, before + content)
            return None
        return LogRecord(first, stream, before + content)


def parse_records(lines: Iterable[bytes]) -> Iterator[LogRecord]:
    """Logical lines from raw record lines (without their newlines)."""
    assembler = _Assembler()
    for raw in lines:
        record = assembler.feed(raw)
        if record is not None:
            yield record


def read_log(path: Path, *, since: datetime | None = None) -> list[LogRecord]:
    """Every logical line of ``path`` and its rotated files, oldest first."""
    return tail(path, None, since=since)


def tail(path: Path, lines: int | None, *, since: datetime | None = None) -> list[LogRecord]:
    """The last ``lines`` logical lines (all when None) of ``path`` and its rotated files.

    Reads backwards from the end of the newest file in 64 KiB blocks, into older rotated
    files only while it has not found enough lines.
    """
    handles = []
    try:
        for file in log_files(path):
            try:
                handles.append(open(file, "rb"))  # closed below
            except FileNotFoundError:
                continue
        sources = [(h.fileno(), os.fstat(h.fileno()).st_size) for h in handles]
        return _tail_sources(sources, lines, since)
    finally:
        for h in handles:
            h.close()


def _tail_sources(
    sources: list[tuple[int, int]], lines: int | None, since: datetime | None
) -> list[LogRecord]:
    """The last ``lines`` logical lines of ``(fd, size)`` sources, oldest source first."""
    if lines is not None and lines <= 0:
        return []
    chunks: list[bytes] = []
    for fd, size in reversed(sources):
        data = b""
        position = size
        while position > 0:
            step = min(_BLOCK, position)
            position -= step
            data = os.pread(fd, step, position) + data
            if lines is not None and data.count(b"\n") > lines:
                found = _records(b"".join([data[data.index(b"\n") + 1 :], *chunks]))
                if len(found) >= lines:
                    return _since(found[-lines:], since)
        chunks.insert(0, data)
    found = _records(b"".join(chunks))
    return _since(found if lines is None else found[-lines:], since)


def _records(data: bytes) -> list[LogRecord]:
    raw = data.split(b"\n")
    raw.pop()  # after the last newline: empty, or a record still being written
    return list(parse_records(raw))


def _since(records: list[LogRecord], since: datetime | None) -> list[LogRecord]:
    if since is None:
        return records
    return [r for r in records if r.time >= since]


# ---------------------------------------------------------------------------------------
# Following


async def follow(
    path: Path,
    *,
    tail_lines: int | None = None,
    until: trio.Event | None = None,
    poll_interval: float = 0.1,
) -> AsyncGenerator[LogRecord, None]:
    """Yield the last ``tail_lines`` lines (all when None), then every new line as written.

    Follows ``path`` across rotation. Ends when ``until`` is set (after reading what was
    written until then), else runs until cancelled. The file need not exist yet. Use it
    with :func:`contextlib.aclosing` when the loop may stop early.
    """
    while True:
        try:
            handle = open(path, "rb")  # noqa: ASYNC230 - a local file, opened in microseconds
            break
        except FileNotFoundError:
            if until is not None and until.is_set():
                return
            await _pause(until, poll_interval)
    try:
        inode = os.fstat(handle.fileno()).st_ino
        # The lines already written: a snapshot up to the last complete record.
        size = os.fstat(handle.fileno()).st_size
        head = os.pread(handle.fileno(), size, 0)
        boundary = head.rfind(b"\n") + 1
        handle.seek(boundary)
        rotated = []
        try:
            for file in log_files(path)[:-1]:
                rotated.append(open(file, "rb"))  # noqa: ASYNC230 - local file
            sources = [(h.fileno(), os.fstat(h.fileno()).st_size) for h in rotated]
            sources.append((handle.fileno(), boundary))
            initial = _tail_sources(sources, tail_lines, None)
        finally:
            for h in rotated:
                h.close()
        for record in initial:
            yield record
        assembler = _Assembler()
        leftover = b""
        while True:
            finished = until is not None and until.is_set()
            chunk = handle.read()
            if chunk:
                *complete, leftover = (leftover + chunk).split(b"\n")
                for record in _feed(assembler, complete):
                    yield record
                continue
            following = _rotated_since(path, inode)
            if following is None:
                if finished:
                    return
                await _pause(until, poll_interval)
                continue
            # The writer closes a file before renaming it: what we have not read of it is
            # complete now. Then come rotated files we never opened, then the new file.
            rest = leftover + handle.read()
            handle.close()
            leftover = b""
            for record in _feed(assembler, rest.split(b"\n")):
                yield record
            for older in following[:-1]:
                try:
                    data = older.read_bytes()
                except FileNotFoundError:
                    continue
                for record in _feed(assembler, data.split(b"\n")):
                    yield record
            handle = open(following[-1], "rb")  # noqa: ASYNC230 - local file
            inode = os.fstat(handle.fileno()).st_ino
    finally:
        handle.close()


def _feed(assembler: _Assembler, lines: Iterable[bytes]) -> Iterator[LogRecord]:
    for raw in lines:
        if raw:
            record = assembler.feed(raw)
            if record is not None:
                yield record


def _rotated_since(path: Path, inode: int) -> list[Path] | None:
    """None while ``path`` is still the file with ``inode``; else the files to read next.

    The list holds the rotated files newer than the one with ``inode`` (oldest first) and
    ends with the path of the current file.
    """
    try:
        if os.stat(path).st_ino == inode:
            return None
    except FileNotFoundError:
        return None
    newer = []
    for file in reversed(log_files(path)[:-1]):  # newest rotated first
        try:
            if os.stat(file).st_ino == inode:
                break
        except FileNotFoundError:
            continue
        newer.append(file)
    return [*reversed(newer), path]


async def _pause(until: trio.Event | None, seconds: float) -> None:
    if until is None:
        await trio.sleep(seconds)
    else:
        with trio.move_on_after(seconds):
            await until.wait()
