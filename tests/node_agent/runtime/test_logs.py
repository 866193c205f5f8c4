"""Container logs: the CRI line format, rotation, tail, follow across rotation, previous attempt."""

from __future__ import annotations

import re
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from node_agent.runtime import logs
from node_agent.runtime.logs import LogRecord, LogRotation
from node_agent.runtime.process import ProcessRuntime
from node_agent.runtime.shim import MAX_RECORD, LogWriter
from tests.node_agent.runtime.conftest import SpecFactory

RECORD = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$")


async def test_stdout_and_stderr_are_captured_line_by_line(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        "talker", ["sh", "-c", "echo one; echo two >&2; printf 'three'; echo four >&2"]
    )
    await runtime.wait(await runtime.start(spec))
    raw = spec.log_path.read_bytes().splitlines()
    assert raw and all(RECORD.match(line) for line in raw), raw
    records = logs.read_log(spec.log_path)
    assert sorted((r.stream, r.content) for r in records) == [
        ("stderr", b"four"),
        ("stderr", b"two"),
        ("stdout", b"one"),
        ("stdout", b"three"),  # no final newline: written when the stream closes
    ]
    stdout = [r.content for r in records if r.stream == "stdout"]
    assert stdout == [b"one", b"three"]
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=1) < r.time <= now for r in records)


def test_render_shows_or_hides_the_timestamp() -> None:
    record = LogRecord("2024-05-01T12:00:00.123456789Z", "stdout", b"hello")
    assert record.render() == b"hello\n"
    assert record.render(timestamps=True) == b"2024-05-01T12:00:00.123456789Z hello\n"
    assert record.time == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _writer(path: Path, max_bytes: int = 4096, keep: int = 2) -> LogWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    return LogWriter(str(path), max_bytes, keep)


def test_rotation_keeps_the_newest_files_within_the_size(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = _writer(path, max_bytes=4096, keep=2)
    for n in range(400):
        writer.feed(b"stdout", b"line %03d %s\n" % (n, b"x" * 20))
    writer.close()
    files = logs.log_files(path)
    assert [f.name for f in files] == ["0.log.2", "0.log.1", "0.log"]
    assert all(f.stat().st_size <= 4096 for f in files)
    contents = [r.content for r in logs.read_log(path)]
    # The oldest lines are gone, the rest is complete and in order.
    numbers = [int(c.split()[1]) for c in contents]
    assert numbers == list(range(numbers[0], 400))
    assert numbers[0] > 0


def test_tail_reads_back_across_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = _writer(path, max_bytes=2048, keep=5)
    for n in range(100):
        writer.feed(b"stdout" if n % 2 else b"stderr", b"entry %d\n" % n)
    writer.close()
    assert len(logs.log_files(path)) > 2
    assert [r.content for r in logs.tail(path, 3)] == [b"entry 97", b"entry 98", b"entry 99"]
    current_lines = len(path.read_bytes().splitlines())
    many = logs.tail(path, current_lines + 5)
    assert [r.content for r in many] == [
        b"entry %d" % n for n in range(100 - current_lines - 5, 100)
    ]
    assert logs.tail(path, 0) == []
    assert len(logs.tail(path, None)) == len(logs.read_log(path))


def test_long_lines_are_split_and_joined_again(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = _writer(path, max_bytes=1 << 20)
    long_line = bytes(range(97, 123)) * (MAX_RECORD // 10)
    writer.feed(b"stdout", long_line[:5000])
    writer.feed(b"stderr", b"between\n")
    writer.feed(b"stdout", long_line[5000:] + b"\nshort\n")
    writer.close()
    tags = [line.split(b" ")[2] for line in path.read_bytes().splitlines()]
    assert tags.count(b"P") >= 2 and all(
        len(line) < MAX_RECORD + 100 for line in path.read_bytes().splitlines()
    )
    records = logs.read_log(path)
    assert [(r.stream, r.content) for r in records if r.stream == "stdout"] == [
        ("stdout", long_line),
        ("stdout", b"short"),
    ]
    assert [r.content for r in records if r.stream == "stderr"] == [b"between"]
    assert [r.content for r in logs.tail(path, 1)] == [b"short"]


async def test_follow_yields_new_lines_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = _writer(path, max_bytes=1024, keep=3)
    for n in range(5):
        writer.feed(b"stdout", b"before %d\n" % n)
    done = trio.Event()
    seen: list[bytes] = []

    async def reader() -> None:
        async with aclosing(
            logs.follow(path, tail_lines=2, until=done, poll_interval=0.01)
        ) as lines:
            async for record in lines:
                seen.append(record.content)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        with trio.fail_after(10):
            while len(seen) < 2:  # noqa: ASYNC110 - the reader's progress, polled
                await trio.sleep(0.01)
        # Several rotations between two polls: the follower must read the middle files too.
        for n in range(120):
            writer.feed(b"stdout", b"after %03d\n" % n)
            if n % 40 == 0:
                await trio.sleep(0.03)
        writer.close()
        done.set()
    assert seen == [b"before 3", b"before 4"] + [b"after %03d" % n for n in range(120)]


async def test_follow_a_running_container_until_it_exits(
    tmp_path: Path, make_spec: SpecFactory
) -> None:
    runtime = ProcessRuntime(state_dir=tmp_path / "c", rotation=LogRotation(max_bytes=2048, keep=3))
    script = "i=0; while [ $i -lt 150 ]; do echo line $i; i=$((i+1)); done; sleep 0.2; echo last"
    spec = make_spec("chatty", ["sh", "-c", script])
    container_id = await runtime.start(spec)
    exited = trio.Event()
    seen: list[bytes] = []

    async def watch_exit() -> None:
        await runtime.wait(container_id)
        exited.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_exit)
        with trio.fail_after(20):
            async with aclosing(
                logs.follow(spec.log_path, until=exited, poll_interval=0.02)
            ) as lines:
                async for record in lines:
                    seen.append(record.content)
    # Everything the rotation kept, in order, once; the last line after the pause too.
    assert seen[-1] == b"last"
    numbers = [int(x.split()[1]) for x in seen[:-1]]
    assert numbers == list(range(numbers[0], 150))
    await runtime.remove(container_id)


async def test_follow_waits_for_the_file_and_stops_when_told(tmp_path: Path) -> None:
    path = tmp_path / "late" / "0.log"
    done = trio.Event()
    done.set()
    async with aclosing(logs.follow(path, until=done)) as lines:
        assert [r async for r in lines] == []


def test_previous_attempt_is_the_newest_older_log(tmp_path: Path) -> None:
    directory = logs.container_log_dir(tmp_path, "default", "web", "uid-9", "app")
    assert directory == tmp_path / "default_web_uid-9" / "app"
    assert logs.previous_attempt(directory, 3) is None
    directory.mkdir(parents=True)
    for attempt in (0, 2, 5):
        (directory / f"{attempt}.log").touch()
    (directory / "2.log.1").touch()
    assert (
        logs.container_log_path(tmp_path, "default", "web", "uid-9", "app", 5)
        == directory / "5.log"
    )
    assert logs.previous_attempt(directory, 5) == 2
    assert logs.previous_attempt(directory, 2) == 0
    assert logs.previous_attempt(directory, 0) is None


def test_rotation_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_bytes must be at least 1024"):
        LogRotation(max_bytes=10)
    with pytest.raises(ValueError, match="keep must be >= 0"):
        LogRotation(keep=-1)
