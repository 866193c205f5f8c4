"""Subprocesses for integration tests: own process group, log file, always stopped.

A test that starts a server must stop it, and everything the server forked, however the
test ends. So each process starts in a new session (its own process group), its stdout and
stderr go to a log file that a failing test can print, and :func:`running` stops the group
on exit: SIGTERM, then SIGKILL after a grace period. Processes are addressed by pid and
process group, never by name, so parallel test runs cannot kill each other's servers.

Waiting is always polling a condition against a deadline (:func:`wait_for`,
:func:`async_wait_for`), never a fixed sleep.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, overload

import trio

T = TypeVar("T")

DEFAULT_GRACE = 5.0


class WaitTimeout(AssertionError):
    """A polled condition did not hold before its deadline."""


@dataclass
class Process:
    """A started subprocess that leads its own process group."""

    argv: tuple[str, ...]
    log_path: Path
    popen: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self, *, tail: int = 8000) -> str:
        """The last ``tail`` characters of the process's log."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)  # the pid is the group id: start_new_session=True
        except ProcessLookupError:
            pass

    def kill(self) -> int:
        """SIGKILL the whole group now and reap the process; its exit status."""
        self._signal_group(signal.SIGKILL)
        return self.popen.wait()

    def stop(self, *, grace: float = DEFAULT_GRACE) -> int:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; the exit status."""
        if self.alive:
            self._signal_group(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Also reaches children left behind by a leader that already exited.
        self._signal_group(signal.SIGKILL)
        return self.popen.wait()


def start(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start ``argv`` in a new process group with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return Process(argv=tuple(argv), log_path=log_path, popen=popen)


@contextmanager
def running(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    grace: float = DEFAULT_GRACE,
) -> Iterator[Process]:
    """:func:`start` a process; stop it (and its group) when the block ends, however it ends."""
    process = start(argv, log_path=log_path, env=env, cwd=cwd)
    try:
        yield process
    finally:
        process.stop(grace=grace)


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; that value.

    Raises :class:`WaitTimeout` (with ``message``) when ``timeout`` seconds pass first.
    Exceptions from ``predicate`` propagate: a predicate that can fail transiently catches
    its own expected errors.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {text}")
        time.sleep(interval)


@overload
async def async_wait_for(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> T: ...
@overload
async def async_wait_for(
    predicate: Callable[[], T], *, timeout: float, interval: float = ..., message: str = ...
) -> T: ...
async def async_wait_for(
    predicate: Callable[[], Awaitable[T]] | Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """:func:`wait_for` for trio: call (and await, if async) ``predicate`` until truthy."""
    deadline = trio.current_time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if trio.current_time() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {message}")
        await trio.sleep(interval)
