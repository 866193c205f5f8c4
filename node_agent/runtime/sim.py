"""The ``sim`` runtime: containers that run on trio's clock and nothing else.

Kubernetes tests its control plane at scale with kubemark: "hollow" nodes whose kubelet
does everything except start containers. This runtime is that for Raftsman: it has the
same interface as the process runtime, so a node agent on it exercises all of its code
paths (pod sync, restart policy, backoff, probes, status) except the launch itself, and
hundreds of simulated nodes fit in one process. A container costs a small object; there
are no tasks, threads or processes: :meth:`SimRuntime.wait` simply sleeps on trio's clock
until the container's exit time, so tests run it on ``autojump_clock`` and 100 nodes x 10
pods take well under a second.

How a sim container behaves -- the convention
    A container runs forever unless its spec says otherwise, in this order:

    1. ``SIM_START_ERROR=<message>`` in its env: :meth:`~SimRuntime.start` raises
       :class:`~node_agent.runtime.base.StartError` with that message.
    2. ``SIM_EXIT_AFTER=<seconds>`` and/or ``SIM_EXIT_CODE=<n>`` in its env: it exits
       after that many seconds (default 0) with that code (default 0).
    3. Its argv, read as a tiny shell: ``sleep N`` (exits 0 after N seconds; ``sleep
       infinity`` never), ``true``, ``false``, or ``sh -c SCRIPT`` (also ``bash``,
       ``dash``, ``ash``, ``busybox sh``) where SCRIPT is statements joined by ``;``,
       ``&&``, ``||`` or newlines, each one of ``sleep N``, ``exit [N]``, ``true``,
       ``false``, ``:``, ``echo ...``. The container exits when the script would, with
       the code it would have. A script with any other statement (a loop, a server)
       runs forever, as a real one would until stopped.

    Stopping sends a simulated SIGTERM: the container exits at once with code 143
    (signal 15). With ``SIM_IGNORE_TERM=1`` it ignores it and is killed after the grace
    period with code 137 (signal 9) -- unless it exits on its own first.

    ``exec`` reads its argv the same way and returns the script's exit code (0 for a
    command it does not understand) with no output; a simulated ``sleep`` in it takes its
    time. Its stdin is consumed as it arrives and discarded; the command does not wait
    for it to end (as a real ``sleep`` would not). The exception is ``cat`` without file
    arguments (also ``cat -`` and ``sh -c cat``): it streams, writing each stdin chunk to
    stdout as soon as it arrives, and exits 0 when stdin ends. ``stats`` reports ``SIM_CPU_MILLIS`` (cpu used per second of running) and
    ``SIM_MEMORY_BYTES`` from the env, 0 without them.

Times: ``started_at``/``finished_at`` map trio's clock onto the wall clock (the offset is
taken on first use), so they look like real timestamps and advance with virtual time.
"""

from __future__ import annotations

import math
import secrets
import shlex
import time
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio

from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerId,
    ContainerInfo,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRunningError,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    Enforcement,
    OutputSink,
    StartError,
)

__all__ = ["Behaviour", "SimRuntime", "behaviour_of"]

_SHELLS = {"sh", "bash", "dash", "ash", "zsh"}
_TERM_CODE = 128 + 15
_KILL_CODE = 128 + 9


@dataclass(frozen=True)
class Behaviour:
    """When a sim container exits on its own (None: never) and with which code."""

    exit_after: float | None
    exit_code: int = 0


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _script_of(argv: Sequence[str]) -> str | None:
    words = list(argv)
    if words and _basename(words[0]) == "busybox":
        words = words[1:]
    if len(words) >= 3 and _basename(words[0]) in _SHELLS and words[1] == "-c":
        return words[2]
    return None


def _seconds(text: str) -> float | None:
    if text == "infinity":
        return math.inf
    try:
        value = float(text.rstrip("s"))
    except ValueError:
        return None
    return value if value >= 0 and math.isfinite(value) else None


def _tokens(script: str) -> list[str] | None:
    lexer = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return None


def _run_script(words: list[str]) -> Behaviour | None:
    """Simulate ``words`` (a tokenized script); None when a statement is not understood."""
    elapsed, status = 0.0, 0
    statements: list[tuple[str, list[str]]] = []
    current: list[str] = []
    separator = ";"
    for word in [*words, ";"]:
        if word in (";", "&&", "||", "&&;", ";;"):
            if current:
                statements.append((separator, current))
            current, separator = [], word if word in ("&&", "||") else ";"
        else:
            current.append(word)
    for separator, statement in statements:
        if (separator == "&&" and status != 0) or (separator == "||" and status == 0):
            continue
        name, args = statement[0], statement[1:]
        if name == "sleep" and len(args) == 1 and _seconds(args[0]) is not None:
            seconds = _seconds(args[0])
            assert seconds is not None
            if seconds == math.inf:
                return Behaviour(None)
            elapsed += seconds
            status = 0
        elif name == "exit" and len(args) <= 1:
            if args:
                try:
                    status = int(args[0]) & 0xFF
                except ValueError:
                    return None
            return Behaviour(elapsed, status)
        elif name in ("true", ":", "echo"):
            status = 0
        elif name == "false" and not args:
            status = 1
        else:
            return None
    return Behaviour(elapsed, status)


def behaviour_of(argv: Sequence[str], env: Mapping[str, str]) -> Behaviour:
    """How a container with ``argv`` and ``env`` behaves (see the module docstring)."""
    after_text, code_text = env.get("SIM_EXIT_AFTER"), env.get("SIM_EXIT_CODE")
    if after_text is not None or code_text is not None:
        after = 0.0 if after_text is None else _seconds(after_text)
        if after is None:
            raise StartError(f"SIM_EXIT_AFTER must be a number of seconds >= 0, got {after_text!r}")
        try:
            code = 0 if code_text is None else int(code_text)
        except ValueError:
            raise StartError(f"SIM_EXIT_CODE must be an integer, got {code_text!r}") from None
        return Behaviour(None if after == math.inf else after, code)
    script = _script_of(argv)
    words = _tokens(script) if script is not None else list(argv)
    if not words:
        return Behaviour(None)
    if script is None:
        words[0] = _basename(words[0])
    behaviour = _run_script(words)
    return behaviour if behaviour is not None else Behaviour(None)


def _is_cat(argv: Sequence[str]) -> bool:
    """``cat`` reading its stdin: no file arguments other than ``-``."""
    script = _script_of(argv)
    words = (_tokens(script) or []) if script is not None else list(argv)
    if words and _basename(words[0]) == "busybox":
        words = words[1:]
    return bool(words) and _basename(words[0]) == "cat" and all(w == "-" for w in words[1:])


async def _discard(stdin: AsyncIterable[bytes]) -> None:
    async for _ in stdin:
        pass


@dataclass
class _Container:
    id: ContainerId
    spec: ContainerSpec
    started: float
    exit_at: float | None
    exit_code: int
    changed: trio.Event = field(default_factory=trio.Event)
    finished: float | None = None
    code: int | None = None
    signal: int = 0

    def settle(self, now: float) -> None:
        """Apply a scheduled exit that is due."""
        if self.finished is None and self.exit_at is not None and now >= self.exit_at:
            self.end(self.exit_at, self.exit_code)

    def end(self, at: float, code: int, sig: int = 0) -> None:
        if self.finished is None:
            self.finished, self.code, self.signal = at, code, sig
            self.changed.set()


class SimRuntime:
    """Simulated containers; see the module docstring for how they behave."""

    name = "sim"
    enforcement = Enforcement.NONE

    def __init__(self) -> None:
        self._containers: dict[ContainerId, _Container] = {}
        self._keys: dict[tuple[str, str, int], ContainerId] = {}
        self._offset: float | None = None

    def _wall(self, at: float) -> datetime:
        if self._offset is None:
            self._offset = time.time() - trio.current_time()
        return datetime.fromtimestamp(self._offset + at, UTC)

    def _get(self, container_id: ContainerId) -> _Container:
        try:
            container = self._containers[container_id]
        except KeyError:
            raise ContainerNotFoundError(container_id) from None
        container.settle(trio.current_time())
        return container

    async def start(self, spec: ContainerSpec) -> ContainerId:
        await trio.lowlevel.checkpoint()
        if not spec.argv or not spec.argv[0]:
            raise StartError("no command specified")
        if "SIM_START_ERROR" in spec.env:
            raise StartError(spec.env["SIM_START_ERROR"])
        key = (spec.pod_uid, spec.container_name, spec.attempt)
        if key in self._keys:
            raise ContainerExistsError(
                f"container {spec.container_name!r} attempt {spec.attempt} of pod "
                f"{spec.pod_namespace}/{spec.pod_name} already exists as {self._keys[key]}"
            )
        behaviour = behaviour_of(spec.argv, spec.env)
        now = trio.current_time()
        self._wall(now)
        container_id = ContainerId(secrets.token_hex(16))
        self._containers[container_id] = _Container(
            id=container_id,
            spec=spec,
            started=now,
            exit_at=None if behaviour.exit_after is None else now + behaviour.exit_after,
            exit_code=behaviour.exit_code,
        )
        self._keys[key] = container_id
        return container_id

    def _status(self, container: _Container) -> ContainerStatus:
        if container.finished is None:
            return ContainerStatus(
                id=container.id,
                state=ContainerState.RUNNING,
                started_at=self._wall(container.started),
            )
        code = container.code
        assert code is not None
        return ContainerStatus(
            id=container.id,
            state=ContainerState.EXITED,
            started_at=self._wall(container.started),
            finished_at=self._wall(container.finished),
            exit_code=code,
            signal=container.signal,
            reason="Completed" if code == 0 else "Error",
            message=f"killed by signal {container.signal}" if container.signal else "",
        )

    async def status(self, container_id: ContainerId) -> ContainerStatus:
        await trio.lowlevel.checkpoint()
        return self._status(self._get(container_id))

    async def containers(self) -> list[ContainerInfo]:
        await trio.lowlevel.checkpoint()
        return [
            ContainerInfo(c.id, c.spec, self._status(self._get(c.id)))
            for c in list(self._containers.values())
        ]

    async def wait(self, container_id: ContainerId) -> ContainerStatus:
        container = self._get(container_id)
        while container.finished is None:
            deadline = math.inf if container.exit_at is None else container.exit_at
            with trio.move_on_at(deadline):
                await container.changed.wait()
            container.settle(trio.current_time())
        await trio.lowlevel.checkpoint()
        return self._status(container)

    async def stop(self, container_id: ContainerId, *, grace: float) -> ContainerStatus:
        container = self._get(container_id)
        if container.finished is None:
            if container.spec.env.get("SIM_IGNORE_TERM") == "1" and grace > 0:
                with trio.move_on_after(grace):
                    await self.wait(container_id)
                container.end(trio.current_time(), _KILL_CODE, 9)
            else:
                container.end(trio.current_time(), _TERM_CODE, 15)
        return await self.wait(container_id)

    async def remove(self, container_id: ContainerId) -> None:
        await trio.lowlevel.checkpoint()
        container = self._get(container_id)
        if container.finished is None:
            raise ContainerRunningError(f"container {container_id} is running; stop it first")
        del self._containers[container_id]
        spec = container.spec
        self._keys.pop((spec.pod_uid, spec.container_name, spec.attempt), None)

    async def exec(
        self,
        container_id: ContainerId,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None = None,
        stdout: OutputSink | None = None,
        stderr: OutputSink | None = None,
    ) -> int:
        if not argv:
            raise ValueError("exec needs a command")
        container = self._get(container_id)
        if container.finished is not None:
            raise ContainerNotRunningError(f"container {container_id} is not running")
        if _is_cat(argv):
            await trio.lowlevel.checkpoint()
            if stdin is not None:
                async for chunk in stdin:
                    if stdout is not None and chunk:
                        await stdout(bytes(chunk))
            return 0
        behaviour = behaviour_of(argv, {})
        async with trio.open_nursery() as nursery:
            if stdin is not None:
                nursery.start_soon(_discard, stdin)
            if behaviour.exit_after is None:
                await trio.lowlevel.checkpoint()
                code = 0
            else:
                await trio.sleep(behaviour.exit_after)
                code = behaviour.exit_code
            # The command is done: stop reading the caller's stdin.
            nursery.cancel_scope.cancel()
        return code

    async def stats(self, container_id: ContainerId) -> ContainerStats:
        await trio.lowlevel.checkpoint()
        container = self._get(container_id)
        if container.finished is not None:
            raise ContainerNotRunningError(f"container {container_id} is not running")
        env = container.spec.env
        try:
            cpu_millis = int(env.get("SIM_CPU_MILLIS", "0"))
            memory = int(env.get("SIM_MEMORY_BYTES", "0"))
        except ValueError:
            cpu_millis, memory = 0, 0
        now = trio.current_time()
        return ContainerStats(
            cpu_seconds=cpu_millis / 1000 * (now - container.started),
            memory_bytes=memory,
            processes=1,
            timestamp=self._wall(now).timestamp(),
        )
