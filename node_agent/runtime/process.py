"""The ``process`` runtime: containers as supervised process groups on the host, no root needed.

Design. Every container gets a state directory ``<state_dir>/<id>/`` and a shim
(:mod:`node_agent.runtime.shim`), a small Python process that is the container's parent:
it starts the container in a session of its own, copies its stdout/stderr into the log
file, and writes ``started.json`` and ``exit.json``. The runtime spawns the shim with
``posix_spawn`` in a new session, reads its one-line handshake, and from then on only
reads files and sends signals. Because nothing about a running container lives only in
the agent's memory, the agent can die at any moment: the shims keep running, and a new
:class:`ProcessRuntime` on the same directory finds every container again
(:meth:`~ProcessRuntime.containers`), with exit codes and finish times even for those that
ended while no agent ran.

Files of a container (``<state_dir>/<id>/``)
    ``spec.json``     the :class:`~node_agent.runtime.base.ContainerSpec` and the cgroup
                      paths, written before the shim starts
    ``launch.bin``    what the shim needs (argv, env, cwd, limits, log settings), marshal
    ``started.json``  written by the shim once exec succeeded: pids and their /proc start
                      times (pid reuse defense), start time
    ``exit.json``     written by the shim when the container exited (or by the runtime
                      when it finds the shim gone without one)
    ``shim.log``      the shim's own stderr, for diagnosing the runtime

Exit notification. :meth:`~ProcessRuntime.wait` opens a pidfd on the shim (checked
against its recorded start time) and sleeps until it is readable, i.e. until the shim has
written ``exit.json`` and exited: the agent learns of an exit within milliseconds, also
for containers it adopted and is not the parent of. (Where pidfds are unavailable it
polls every 50 ms.)

Limits (``enforcement``)
    * ``cgroup v2`` / ``cgroup v1`` -- when :mod:`node_agent.runtime.cgroups` finds a
      writable hierarchy (root, or a delegated subtree): memory and cpu are enforced by
      the kernel, an OOM kill is reported as reason ``OOMKilled``, stats come from the
      cgroup, and stop/exit kill every process in it, also those that left the group.
    * ``memory: watchdog ...`` (:attr:`Enforcement.WATCHDOG`) -- the default without
      writable cgroups. The container's shim samples the resident memory of its process
      group every 200 ms and SIGKILLs the group when it exceeds the limit; the exit is
      reported as the kernel's would be, exit code 137, reason ``OOMKilled`` (see
      :mod:`node_agent.runtime.memwatch`). The cost of not having the kernel's
      accounting: a burst faster than the sampling interval overshoots until the next
      sample, and processes that leave the group escape. ``RLIMIT_AS``, used before, is
      gone: it caps *virtual* memory, which Go and the JVM reserve generously, and turns
      an excess into an allocation error (reason ``Error``) instead of an OOM kill. cpu
      becomes a nice level (:func:`nice_for_cpu`): a priority hint, not a cap. Stats
      report the same memory the watchdog compares with the limit.
    * ``none`` -- limits are ignored.

What a container sees: see :mod:`node_agent.runtime.rootfs` (a root directory of
symlinks for its mounts; ``RAFTSMAN_ROOT`` and ``RAFTSMAN_MOUNT_<NAME>`` in its env).
"""

from __future__ import annotations

import json
import marshal
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from node_agent.runtime import memwatch, procfs, rootfs
from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerId,
    ContainerInfo,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRunningError,
    ContainerRuntimeError,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    Enforcement,
    Limits,
    OutputSink,
    StartError,
    spec_from_json,
    spec_to_json,
)
from node_agent.runtime.cgroups import CgroupDriver, CgroupUnavailable, ContainerCgroup, detect
from node_agent.runtime.logs import LogRotation

__all__ = ["ProcessRuntime", "nice_for_cpu"]

SHIM = Path(__file__).with_name("shim.py")
# Imported rather than run as a script, so that its bytecode is cached (~5 ms a start).
_SHIM_BOOT = f"import sys; sys.path.insert(0, {str(SHIM.parent)!r}); import shim; sys.exit(shim.main(sys.argv))"
_POLL = 0.05
_KILL_TIMEOUT = 10.0


def nice_for_cpu(cpu_millis: int | None) -> int:
    """The nice level standing in for a cpu limit without cgroups (a hint, not a cap)."""
    if cpu_millis is None or cpu_millis >= 1000:
        return 0
    if cpu_millis >= 500:
        return 5
    if cpu_millis >= 250:
        return 10
    return 15


def _now(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    # Not the shim's temporary name: both may write exit.json at once (a shim that is
    # taken for lost but still exits), and each rename must move a whole file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


class ProcessRuntime:
    """Runs containers as process groups under per-container shims; see the module doc.

    ``state_dir`` is the runtime's own directory (the agent passes
    ``<data-dir>/containers``). ``enforcement`` None picks the best available (a cgroup
    hierarchy, else the memory watchdog); asking for a cgroup version the host cannot provide raises
    :class:`~node_agent.runtime.cgroups.CgroupUnavailable`.
    """

    name = "process"

    def __init__(
        self,
        *,
        state_dir: Path,
        enforcement: Enforcement | None = None,
        rotation: LogRotation | None = None,
        python: str = sys.executable,
        cgroup_name: str = "raftsman",
        start_timeout: float = 10.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.rotation = rotation if rotation is not None else LogRotation()
        self.python = python
        self.start_timeout = start_timeout
        self._cgroups: CgroupDriver | None = None
        if enforcement is None:
            try:
                self._cgroups = detect(name=cgroup_name)
                enforcement = self._cgroups.version
            except CgroupUnavailable:
                enforcement = Enforcement.WATCHDOG
        elif enforcement in (Enforcement.CGROUP_V1, Enforcement.CGROUP_V2):
            self._cgroups = detect(enforcement, name=cgroup_name)
        self.enforcement = enforcement
        self._final: dict[ContainerId, ContainerStatus] = {}
        self._starting: set[ContainerId] = set()

    # ----------------------------------------------------------------------------- start

    async def start(self, spec: ContainerSpec) -> ContainerId:
        _validate(spec)
        for info in await self.containers():
            s = info.spec
            if (s.pod_uid, s.container_name, s.attempt) == (
                spec.pod_uid,
                spec.container_name,
                spec.attempt,
            ):
                raise ContainerExistsError(
                    f"container {spec.container_name!r} attempt {spec.attempt} of pod "
                    f"{spec.pod_namespace}/{spec.pod_name} already exists as {info.id}"
                )
        container_id = ContainerId(secrets.token_hex(16))
        directory = self.state_dir / container_id
        self._starting.add(container_id)
        cgroup: ContainerCgroup | None = None
        try:
            directory.mkdir()
            try:
                rootfs.prepare_root(spec.root_dir, spec.mounts)
            except OSError as exc:
                raise StartError(f"preparing the container's root {spec.root_dir}: {exc}") from exc
            cwd = rootfs.working_directory(spec.root_dir, spec.mounts, spec.working_dir)
            env = {**spec.env, **rootfs.mount_env(spec.root_dir, spec.mounts)}
            argv = list(spec.argv)
            if argv[0].startswith("/"):
                argv[0] = str(rootfs.resolve(spec.root_dir, spec.mounts, argv[0]))
            _check_executable(argv[0], env, cwd)
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self._cgroups is not None:
                try:
                    cgroup = self._cgroups.create(container_id, spec.limits)
                except OSError as exc:
                    raise StartError(f"creating the container's cgroup: {exc}") from exc
            launch = self._launch(argv, env, cwd, spec, cgroup)
            _write_json(
                directory / "spec.json",
                {
                    "spec": spec_to_json(spec),
                    "cgroup": None if cgroup is None else cgroup.to_json(),
                },
            )
            (directory / "launch.bin").write_bytes(marshal.dumps(launch))
            await self._spawn_shim(directory)
        except BaseException:
            _abandon(directory, cgroup)
            raise
        finally:
            self._starting.discard(container_id)
        return container_id

    def _launch(
        self,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path,
        spec: ContainerSpec,
        cgroup: ContainerCgroup | None,
    ) -> dict[str, Any]:
        limits = spec.limits
        watched = self.enforcement is Enforcement.WATCHDOG
        return {
            "argv": argv,
            "env": dict(env),
            "cwd": str(cwd),
            "log_path": str(spec.log_path),
            "log_max_bytes": self.rotation.max_bytes,
            "log_keep": self.rotation.keep,
            "memory_limit": limits.memory_bytes if watched else None,
            "watchdog_interval": memwatch.INTERVAL,
            "nice": nice_for_cpu(limits.cpu_millis) if watched else 0,
            "cgroup_procs": [] if cgroup is None else cgroup.procs_files,
            "oom_files": [] if cgroup is None else cgroup.oom_files,
        }

    async def _spawn_shim(self, directory: Path) -> None:
        read_end, write_end = os.pipe()
        try:
            # posix_spawn is a vfork+exec: it returns in about a millisecond.
            with open(directory / "shim.log", "wb") as shim_log:  # noqa: ASYNC230
                pid = os.posix_spawn(  # noqa: ASYNC221
                    self.python,
                    [self.python, "-S", "-I", "-c", _SHIM_BOOT, "run", str(directory)],
                    os.environ,
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_DUP2, write_end, 1),
                        (os.POSIX_SPAWN_DUP2, shim_log.fileno(), 2),
                    ],
                    setsid=True,
                )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        _record_shim(directory, pid)
        stream = trio.lowlevel.FdStream(read_end)
        try:
            line = b""
            with trio.move_on_after(self.start_timeout) as scope:
                while not line.endswith(b"\n"):
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    line += chunk
            if scope.cancelled_caught:
                raise StartError(
                    f"the container's shim did not report within {self.start_timeout:g}s"
                )
        except BaseException:
            _kill_quietly(pid)
            _reap_child(pid, block=True)
            raise
        finally:
            await stream.aclose()
        try:
            reply = json.loads(line)
        except ValueError:
            _reap_child(pid, block=True)
            log = (directory / "shim.log").read_text(errors="replace")[-2000:]
            raise StartError(f"the container's shim failed: {log.strip() or 'no output'}") from None
        if "error" in reply:
            _reap_child(pid, block=True)
            raise StartError(reply["error"])

    # ----------------------------------------------------------------------------- status

    def _directory(self, container_id: ContainerId) -> Path:
        directory = self.state_dir / container_id
        if container_id in self._starting or not (directory / "spec.json").exists():
            raise ContainerNotFoundError(container_id)
        return directory

    async def status(self, container_id: ContainerId) -> ContainerStatus:
        return await self._settled_status(container_id)

    async def _settled_status(self, container_id: ContainerId) -> ContainerStatus:
        """:meth:`_status`, once a shim that is still booting has said how its start went.

        Between spawning the shim and its ``started.json`` (tens of milliseconds) a
        container has neither a start nor an exit on record. If the agent that spawned it
        died meanwhile, another runtime on the same directory (the restarted agent,
        ``raftsman down``) must not take the silence for a lost start: the shim carries on
        and the container would run unseen. So while the shim recorded in ``shim.json``
        is alive and has written nothing, wait for it (at most ``start_timeout``).
        """
        directory = self.state_dir / container_id
        if container_id not in self._starting and container_id not in self._final:
            shim = _read_json(directory / "shim.json")
            with trio.move_on_after(self.start_timeout):
                while True:
                    if shim is None or not _booting(directory, shim):
                        break
                    await trio.sleep(0.01)  # a file appearing: polled, tens of ms at most
        return self._status(container_id)

    def _status(self, container_id: ContainerId) -> ContainerStatus:
        final = self._final.get(container_id)
        if final is not None:
            return final
        directory = self._directory(container_id)
        started = _read_json(directory / "started.json")
        ended = _read_json(directory / "exit.json")
        if ended is None and started is not None:
            if procfs.is_running(started["shim_pid"], started["shim_start"]):
                return ContainerStatus(
                    id=container_id,
                    state=ContainerState.RUNNING,
                    started_at=_now(started["started_at_ns"]),
                    pid=started["pid"],
                )
            # The shim is gone: it may have written exit.json just now.
            ended = _read_json(directory / "exit.json")
        if ended is None:
            ended = self._record_lost(container_id, directory, started)
        if started is not None:
            _reap_shim(started["shim_pid"], started["shim_start"])
        sig = ended.get("signal", 0)
        message = ended.get("message", "")
        if sig and not message:
            message = f"killed by signal {sig} ({_signal_name(sig)})"
        status = ContainerStatus(
            id=container_id,
            state=ContainerState.EXITED,
            started_at=None if started is None else _now(started["started_at_ns"]),
            finished_at=_now(ended["finished_at_ns"]),
            exit_code=ended["exit_code"],
            signal=sig,
            reason=ended["reason"],
            message=message,
            pid=None if started is None else started["pid"],
        )
        self._final[container_id] = status
        return status

    def _record_lost(
        self, container_id: ContainerId, directory: Path, started: dict[str, Any] | None
    ) -> dict[str, Any]:
        """exit.json for a container whose shim vanished without writing one."""
        if started is None:
            ended = {
                "exit_code": 128,
                "signal": 0,
                "reason": "StartError",
                "message": "the node agent stopped while starting the container",
                "finished_at_ns": time.time_ns(),
            }
        else:
            if procfs.is_running(started["pid"], started["pid_start"]):
                _killpg_quietly(started["pid"], signal.SIGKILL)
            cgroup = self._cgroup_of(directory)
            if cgroup is not None:
                cgroup.kill()
            ended = {
                "exit_code": 137,
                "signal": 0,
                "reason": "ContainerStatusUnknown",
                "message": (
                    f"the container's supervisor (shim pid {started['shim_pid']}) died; "
                    "its exit status is unknown"
                ),
                "finished_at_ns": time.time_ns(),
            }
        _write_json(directory / "exit.json", ended)
        return ended

    def _cgroup_of(self, directory: Path) -> ContainerCgroup | None:
        data = _read_json(directory / "spec.json")
        if data is None or data.get("cgroup") is None:
            return None
        return ContainerCgroup.from_json(data["cgroup"])

    async def containers(self) -> list[ContainerInfo]:
        found = []
        for entry in sorted(os.listdir(self.state_dir)):
            container_id = ContainerId(entry)
            directory = self.state_dir / entry
            if container_id in self._starting or not directory.is_dir():
                continue
            data = _read_json(directory / "spec.json")
            if data is None:
                # Left by an agent that died before writing the spec: nothing ran.
                shutil.rmtree(directory, ignore_errors=True)
                continue
            try:
                status = await self._settled_status(container_id)
            except ContainerNotFoundError:
                continue
            found.append(ContainerInfo(container_id, spec_from_json(data["spec"]), status))
        return found

    async def wait(self, container_id: ContainerId) -> ContainerStatus:
        while True:
            status = await self._settled_status(container_id)
            if status.state is ContainerState.EXITED:
                return status
            started = _read_json(self.state_dir / container_id / "started.json")
            assert started is not None  # RUNNING implies it
            await _wait_for_exit(started["shim_pid"], started["shim_start"])

    # ----------------------------------------------------------------------------- stop

    async def stop(self, container_id: ContainerId, *, grace: float) -> ContainerStatus:
        status = await self._settled_status(container_id)
        if status.state is ContainerState.EXITED:
            return status
        if grace > 0:
            self._signal(container_id, signal.SIGTERM)
            with trio.move_on_after(grace):
                return await self.wait(container_id)
        self._signal(container_id, signal.SIGKILL)
        with trio.move_on_after(_KILL_TIMEOUT):
            return await self.wait(container_id)
        raise ContainerRuntimeError(
            f"container {container_id} did not exit {_KILL_TIMEOUT:g}s after SIGKILL"
        )

    def _signal(self, container_id: ContainerId, sig: signal.Signals) -> None:
        """Signal the container's process group (and, for SIGKILL, its whole cgroup).

        Only while its shim runs: the shim reaps the container's main process (the group
        leader) last, just before it exits, so until then the group id cannot be reused.
        """
        directory = self.state_dir / container_id
        started = _read_json(directory / "started.json")
        if started is None or not procfs.is_running(started["shim_pid"], started["shim_start"]):
            return
        _killpg_quietly(started["pid"], sig)
        if sig == signal.SIGKILL:
            cgroup = self._cgroup_of(directory)
            if cgroup is not None:
                cgroup.kill()

    async def remove(self, container_id: ContainerId) -> None:
        status = self._status(container_id)
        if status.state is ContainerState.RUNNING:
            raise ContainerRunningError(f"container {container_id} is running; stop it first")
        directory = self.state_dir / container_id
        cgroup = self._cgroup_of(directory)
        if cgroup is not None:
            with trio.move_on_after(_KILL_TIMEOUT):
                while not cgroup.remove():
                    cgroup.kill()
                    await trio.sleep(_POLL)
        shutil.rmtree(directory, ignore_errors=True)
        self._final.pop(container_id, None)

    # ----------------------------------------------------------------------------- exec, stats

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
        status = self._status(container_id)
        if status.state is not ContainerState.RUNNING:
            raise ContainerNotRunningError(f"container {container_id} is not running")
        directory = self.state_dir / container_id
        process = await trio.lowlevel.open_process(
            [self.python, "-S", "-I", "-c", _SHIM_BOOT, "exec", str(directory), *argv],
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with trio.open_nursery() as nursery:
                assert process.stdout is not None and process.stderr is not None
                nursery.start_soon(_pump, process.stdout, stdout)
                nursery.start_soon(_pump, process.stderr, stderr)
                feeding = trio.CancelScope()
                if stdin is not None:
                    assert process.stdin is not None
                    nursery.start_soon(_feed, stdin, process.stdin, feeding)
                await process.wait()
                # The command is gone: stop waiting for more of the caller's stdin.
                feeding.cancel()
        finally:
            if process.returncode is None:
                _killpg_quietly(process.pid, signal.SIGKILL)
                with trio.CancelScope(shield=True):
                    await process.wait()
        code = process.returncode
        assert code is not None
        return 128 - code if code < 0 else code

    async def stats(self, container_id: ContainerId) -> ContainerStats:
        status = self._status(container_id)
        if status.state is not ContainerState.RUNNING or status.pid is None:
            raise ContainerNotRunningError(f"container {container_id} is not running")
        cgroup = self._cgroup_of(self.state_dir / container_id)
        if cgroup is not None:
            members = [s for s in map(procfs.read_stat, cgroup.members()) if s is not None]
        else:
            members = procfs.group_members(status.pid)
        memory = cgroup.memory_bytes() if cgroup is not None else None
        if memory is None:
            memory = sum(memwatch.charged_bytes(m.pid) or 0 for m in members)
        return ContainerStats(
            cpu_seconds=sum(m.cpu_seconds for m in members),
            memory_bytes=memory,
            processes=len(members),
            timestamp=time.time(),
        )


# ---------------------------------------------------------------------------------------
# Helpers


def _abandon(directory: Path, cgroup: ContainerCgroup | None) -> None:
    """Undo a start that failed or was cancelled: kill what may run, delete its state."""
    started = _read_json(directory / "started.json") if directory.exists() else None
    if started is not None:
        if procfs.is_running(started["pid"], started["pid_start"]):
            _killpg_quietly(started["pid"], signal.SIGKILL)
        if procfs.is_running(started["shim_pid"], started["shim_start"]):
            _kill_quietly(started["shim_pid"])
            _reap_child(started["shim_pid"], block=True)
    if cgroup is not None:
        cgroup.kill()
        for _ in range(100):
            if cgroup.remove():
                break
            time.sleep(0.01)
    shutil.rmtree(directory, ignore_errors=True)


def _validate(spec: ContainerSpec) -> None:
    if not spec.argv or not spec.argv[0]:
        raise StartError("no command specified")
    if spec.attempt < 0:
        raise StartError(f"attempt must be >= 0, got {spec.attempt}")
    for key in spec.env:
        if not key or "=" in key or "\0" in key:
            raise StartError(f"invalid environment variable name {key!r}")
    limits: Limits = spec.limits
    if limits.memory_bytes is not None and limits.memory_bytes <= 0:
        raise StartError(f"memory limit must be positive, got {limits.memory_bytes}")
    if limits.cpu_millis is not None and limits.cpu_millis <= 0:
        raise StartError(f"cpu limit must be positive, got {limits.cpu_millis}m")


def _check_executable(argv0: str, env: Mapping[str, str], cwd: Path) -> None:
    """runc's errors, before anything is spawned: not found, not executable, a directory."""
    if "/" in argv0:
        candidates = [cwd / argv0]
    else:
        candidates = [Path(d or ".") / argv0 for d in os.get_exec_path(dict(env))]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return
    if "/" not in argv0:
        raise StartError(f'exec: "{argv0}": executable file not found in $PATH')
    target = candidates[0]
    if not target.exists():
        raise StartError(f'exec: "{argv0}": no such file or directory')
    if target.is_dir():
        raise StartError(f'exec: "{argv0}": is a directory')
    raise StartError(f'exec: "{argv0}": permission denied')


async def _wait_for_exit(pid: int, start_ticks: int) -> None:
    """Return once the process ``pid`` (started at ``start_ticks``) has exited."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while procfs.is_running(pid, start_ticks):  # noqa: ASYNC110 - no pidfd: poll
            await trio.sleep(_POLL)
        return
    try:
        if not procfs.is_running(pid, start_ticks):
            return
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def _reap_shim(pid: int, start_ticks: int) -> None:
    """Reap an exited shim if it is our child (a zombie otherwise until init reaps it)."""
    stat = procfs.read_stat(pid)
    if stat is None or stat.start_ticks != start_ticks or stat.state != "Z":
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        pass
    finally:
        os.close(pidfd)


def _reap_child(pid: int, *, block: bool = False) -> None:
    try:
        os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        pass


def _booting(directory: Path, shim: Mapping[str, Any]) -> bool:
    """The shim recorded in ``shim`` runs and has recorded neither a start nor an exit."""
    return (
        not (directory / "started.json").exists()
        and not (directory / "exit.json").exists()
        and procfs.is_running(shim["pid"], shim["start"])
    )


def _record_shim(directory: Path, pid: int) -> None:
    """``shim.json``: which process is the container's shim, from its first moment (see
    :meth:`ProcessRuntime._settled_status`)."""
    stat = procfs.read_stat(pid)
    if stat is not None:
        _write_json(directory / "shim.json", {"pid": pid, "start": stat.start_ticks})


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _killpg_quietly(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


async def _pump(source: trio.abc.ReceiveStream, sink: OutputSink | None) -> None:
    while True:
        chunk = await source.receive_some(65536)
        if not chunk:
            return
        if sink is not None:
            await sink(bytes(chunk))


async def _feed(
    source: AsyncIterable[bytes], target: trio.abc.SendStream, scope: trio.CancelScope
) -> None:
    with scope:
        try:
            async for chunk in source:
                await target.send_all(chunk)
        except trio.BrokenResourceError:
            pass
        finally:
            await target.aclose()
