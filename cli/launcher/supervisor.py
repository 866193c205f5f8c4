"""The supervisor program: runs a cluster's component processes until told to stop.

``raftsman supervise --dir DIR`` (started detached by ``raftsman up``, or in-process by
``up --foreground``) reads the plan from the state file and runs every process in it.

How
    One :mod:`actors.runtime` supervisor per role (so backoff and restart intensity are
    configured per role, see :mod:`.roles`), each with one child per process. A child is
    one *incarnation* of its process: it starts the process in a new session (so the pid is
    also the process group id), records it, waits for it to exit, and raises
    :class:`ProcessExited` when it does. The actor supervisor then restarts it after the
    role's backoff delay (one-for-one: the other processes are untouched), or, when the
    cluster was started with restarts disabled, leaves it ``failed``.

Guarantees
    * Every change (started, exited, restarting, stopped) is written to the state file
      before anything else happens, atomically; the supervisor is its only writer.
    * On SIGTERM, SIGINT or SIGHUP the roles stop in reverse start order (node agents,
      then the containers they leave running, controller managers, schedulers, API
      servers, stores): every process of a role gets SIGTERM to its process group at
      once, and SIGKILL after its role's grace period; the next role stops once the
      previous one has. The supervisor exits only after every process has exited, with
      the state file saying ``stopped``.
    * If a process crashes more often than its role's restart intensity, the supervisor
      stops everything, records ``failed`` with the reason, and exits with status 1.
      The cluster does not half-run unnoticed.
    * Component output goes to ``logs/<name>.log`` (appended, a banner per incarnation).
      Detached, the process writes the file itself, so it never depends on the
      supervisor reading a pipe. In the foreground the supervisor reads the output, appends
      it to the same file and prints each line prefixed with the process name.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import BinaryIO, TextIO

import trio

from actors.runtime import ChildSpec, RestartPolicy, TooManyRestarts, run_supervisor

from . import links, pids
from .layout import Layout
from .pods import stop_node_pods
from .roles import ROLES, Role, component_env
from .state import (
    ClusterState,
    ProcessRecord,
    ProcessState,
    SupervisorState,
    load,
    save,
)

log = logging.getLogger(__name__)


class ProcessExited(Exception):
    """A component process exited while it was meant to run."""

    def __init__(self, name: str, code: int) -> None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
        super().__init__(f"process {name} {how}")
        self.name = name
        self.code = code


class ClusterSupervisor:
    """Runs the processes of one cluster; its state is the loaded state file."""

    def __init__(self, layout: Layout, *, echo: TextIO | None = None) -> None:
        self.layout = layout
        self.state: ClusterState = load(layout.state_file)
        self._echo = echo
        self._incarnations: dict[str, int] = {}
        self._roles: list[tuple[Role, trio.CancelScope, trio.Event]] = []

    def save(self) -> None:
        save(self.layout.state_file, self.state)

    async def run(self, *, on_running: Callable[[], Awaitable[None]] | None = None) -> int:
        """Run until a stop signal (0) or a role gives up (1). Writes the final state."""
        sup = self.state.supervisor
        sup.pid, sup.pid_start = os.getpid(), pids.start_ticks(os.getpid())
        sup.state, sup.error = SupervisorState.STARTING, None
        for proc in self.state.processes:
            proc.state, proc.pid, proc.pid_start, proc.restarts = ProcessState.DOWN, None, None, 0
        self.save()
        self.layout.create()
        code = 0
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_on_signal, nursery.cancel_scope)
                if links.enabled(self.layout.root):
                    await nursery.start(links.run_links, self.layout)
                for role in ROLES.values():
                    await nursery.start(self._run_role, role)
                sup.state = SupervisorState.RUNNING
                self.save()
                log.info("supervisor running dir=%s", self.layout.root)
                if on_running is not None:
                    nursery.start_soon(on_running)
        except* TooManyRestarts as group:
            error = group.exceptions[0]
            log.error("giving up, stopping the cluster: %s", error)
            sup.error = str(error)
            code = 1
        finally:
            sup.state = SupervisorState.FAILED if code else SupervisorState.STOPPED
            for proc in self.state.processes:
                if proc.state is not ProcessState.FAILED:
                    proc.state = ProcessState.DOWN
            self.save()
            log.info("supervisor %s", sup.state.value)
        return code

    async def _run_role(self, role: Role, *, task_status: trio.TaskStatus[None]) -> None:
        policy = RestartPolicy.PERMANENT if self.state.restart else RestartPolicy.TEMPORARY
        children = [
            ChildSpec(name=proc.name, target=partial(self._incarnation, proc, role), restart=policy)
            for proc in self.state.by_role(role.name)
        ]
        finished = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._roles.append((role, scope, finished))
                async with trio.open_nursery() as nursery:
                    await nursery.start(
                        partial(
                            run_supervisor,
                            name=role.name,
                            children=children,
                            backoff=role.backoff,
                            intensity=role.intensity,
                        )
                    )
                    task_status.started()
        finally:
            finished.set()

    async def _stop_on_signal(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                log.info("stopping on signal=%s", signal.Signals(signum).name)
                self.state.supervisor.state = SupervisorState.STOPPING
                self.save()
                await self._stop_in_order()
                scope.cancel()
                return

    async def _stop_in_order(self) -> None:
        """Stop role by role, last started first (see the module doc)."""
        for role, role_scope, finished in reversed(self._roles):
            role_scope.cancel()
            await finished.wait()
            log.info("stopped role=%s", role.name)
            if role.name == "node-agent" and self.state.runtime == "process":
                for proc in self.state.by_role("node-agent"):
                    if proc.data is not None:
                        try:
                            await stop_node_pods(proc.data)
                        except Exception:
                            log.exception("could not stop the pods of %s", proc.name)

    async def _incarnation(self, proc: ProcessRecord, role: Role) -> None:
        """Run ``proc`` once: start it, wait for its exit, raise :class:`ProcessExited`."""
        count = self._incarnations.get(proc.name, 0)
        self._incarnations[proc.name] = count + 1
        proc.restarts = count
        argv = role.argv(proc, self.state)
        with _open_log(proc.log) as logfile:
            banner = f"--- raftsman supervise: starting {proc.name} at {time.ctime()}"
            logfile.write(f"{banner} (incarnation {count + 1})\n".encode())
            logfile.flush()
            process = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self._echo else logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.layout.root,
                env=component_env(),
            )
        proc.pid, proc.pid_start = process.pid, pids.start_ticks(process.pid)
        proc.state, proc.exit_code = ProcessState.UP, None
        self.save()
        log.info("started process=%s pid=%d restarts=%d", proc.name, process.pid, count)
        try:
            async with trio.open_nursery() as nursery:
                if self._echo is not None and process.stdout is not None:
                    nursery.start_soon(self._echo_output, proc, process.stdout)
                code = await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    await _stop(process, grace=role.stop_grace)
                    log.info("stopped process=%s pid=%d", proc.name, process.pid)
                proc.exit_code = process.returncode
                proc.state = ProcessState.DOWN
                self.save()
        proc.state = ProcessState.RESTARTING if self.state.restart else ProcessState.FAILED
        self.save()
        raise ProcessExited(proc.name, code)

    async def _echo_output(self, proc: ProcessRecord, stream: trio.abc.ReceiveStream) -> None:
        assert self._echo is not None
        prefix = f"{proc.name:<10}| "
        pending = b""
        with _open_log(proc.log) as logfile:
            async for chunk in stream:
                logfile.write(chunk)
                logfile.flush()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._echo.write(prefix + line.decode(errors="replace") + "\n")
                self._echo.flush()
            if pending:
                self._echo.write(prefix + pending.decode(errors="replace") + "\n")
                self._echo.flush()


def _open_log(path: str) -> BinaryIO:
    """Open a log for appending (local disk, small: not worth a thread)."""
    return open(path, "ab")


async def _stop(process: trio.Process, *, grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds; wait for the exit."""
    pids.signal_group(process.pid, signal.SIGTERM)
    with trio.move_on_after(grace):
        await process.wait()
        return
    log.warning("process pid=%d ignored SIGTERM for %gs; SIGKILL", process.pid, grace)
    pids.signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def supervise(
    layout: Layout,
    *,
    echo: TextIO | None = None,
    on_running: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run the cluster at ``layout`` until stopped; the exit status for the process."""
    supervisor = ClusterSupervisor(layout, echo=echo)
    return trio.run(partial(supervisor.run, on_running=on_running))
