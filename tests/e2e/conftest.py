"""One real local cluster for the end-to-end tour: ``raftsman up`` in a subprocess, always down.

:func:`tour` starts the default cluster (``raftsman up --dir TMP``: 3 stores, 2 API
servers, 2 schedulers, 2 controller managers, 3 node agents on the process runtime) once
per module and drives it only through the ``raftsman`` command, the way a user does.
However the module ends, the fixture runs ``raftsman down --dir TMP --purge`` and then
SIGKILLs whatever it had recorded of the cluster that still runs (by pid *and* start
time, never by name), so a failing test cannot leak a cluster onto the machine.

What counts as "the cluster's processes" (:meth:`TourCluster.processes`): the pids that
``raftsman status -o json`` reports, every container and shim pid the node agents'
process runtime recorded under ``DATA/node-N/containers/*/started.json``, and every
process in the sessions of those (each component and each container leads its own
session, so anything they forked is found too).

Everything the tour *does* goes through the ``raftsman`` command, and everything it
shows a user is checked in that command's output. Waiting for the cluster to converge,
though, polls through one API client kept open for the module (:class:`ApiReader`): a
``raftsman`` process costs about half a CPU-second of imports, which on a busy 2-core
machine made polling through the command the slowest part of the tour. Every wait polls a
condition against a deadline (:func:`tests.support.processes.wait_for`).
:attr:`TourCluster.timings` records how long each step of the tour took; it is printed
when the module ends (``pytest -s`` shows it), and the cluster's logs are kept beside the
cluster directory (``.../tour0/logs``) for a post-mortem.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from actors.client import ApiClient, NotFound, ServiceUnavailable, Timeout, open_api_client
from cli.kubectl.config import resolve
from cli.launcher import pids
from proto import rpc
from proto.k8s import codec
from tests.support import processes

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 120.0
T = TypeVar("T")


@dataclass(frozen=True)
class ProcessId:
    """A process we saw running: its pid, its start time (clock ticks) and what it was."""

    pid: int
    start: int
    what: str

    @property
    def alive(self) -> bool:
        return pids.alive(self.pid, self.start)


@dataclass(frozen=True)
class ContainerRecord:
    """One container incarnation as the process runtime recorded it on disk."""

    node: str
    pod_uid: str
    container: str
    attempt: int
    pid: int
    pid_start: int
    shim_pid: int
    shim_start: int
    exited: bool

    @property
    def running(self) -> bool:
        return not self.exited and pids.alive(self.pid, self.pid_start)


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return int(fields[3]) if len(fields) > 3 else None  # field 6: session id


def _sessions_members(sessions: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _session_of(int(entry.name)) in sessions:
            found.append(int(entry.name))
    return found


class ApiReader:
    """Synchronous reads through one API client that a trio run in a thread keeps open.

    ``call(fn)`` runs ``await fn(api)`` in that run and returns its result (or raises its
    exception) in the calling thread. Objects come back as manifests (``dict``), shaped
    as ``raftsman get -o json`` prints them.
    """

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self._addresses = addresses
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._api: ApiClient | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="api-reader", daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            async with rpc.open_loop(), open_api_client(self._addresses) as api:
                self._api, self._stop = api, trio.Event()
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await self._stop.wait()

        try:
            trio.run(serve)
        except BaseException as exc:  # reported to the caller of start()
            self._failure = exc
        finally:
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=60) or self._api is None:
            raise RuntimeError(f"the API reader did not start: {self._failure!r}")

    def close(self) -> None:
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[ApiClient], Awaitable[T]]) -> T:
        assert self._api is not None and self._token is not None, "start() first"
        api = self._api

        async def bounded() -> T:
            with trio.fail_after(30):
                return await fn(api)

        return trio.from_thread.run(bounded, trio_token=self._token)

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        """The object as a manifest, or None when it does not exist."""

        async def read(api: ApiClient) -> dict[str, Any] | None:
            try:
                return codec.encode(await api.get(kind, name, namespace=namespace))
            except NotFound:
                return None

        return self.call(read)

    def list(
        self, kind: str, namespace: str = "default", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        async def read(api: ApiClient) -> list[dict[str, Any]]:
            listed = await api.list_all(kind, namespace=namespace, label_selector=label_selector)
            return [codec.encode(o) for o in listed.items]

        return self.call(read)


_TRANSIENT = re.compile(
    r"Error from server \((ServiceUnavailable|Timeout)\)|error: cannot reach the API server"
)


def _transient(stderr: str) -> bool:
    return bool(_TRANSIENT.search(stderr))


def _repeatable(args: tuple[str, ...]) -> bool:
    """Can the command run twice with the effect of once? (Not create, delete, undo.)"""
    return args[0] not in ("create", "delete") and args[:2] != ("rollout", "undo")


@dataclass
class TourCluster:
    """One cluster directory, driven through ``python -m cli.main`` like a user's shell."""

    dir: Path
    home: Path
    timings: dict[str, float] = field(default_factory=dict)
    api: ApiReader | None = None
    cli_calls: int = 0
    cli_seconds: float = 0.0
    retried: list[str] = field(default_factory=list)

    @property
    def read(self) -> ApiReader:
        assert self.api is not None, "the cluster is not up"
        return self.api

    # ------------------------------------------------------------------ running the CLI

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``raftsman ARGS --dir DIR``; never raises for a non-zero exit."""
        environ = {**os.environ, "HOME": str(self.home)}
        for name in ("RAFTSMAN_SERVER", "RAFTSMAN_CLUSTER"):
            environ.pop(name, None)
        argv = [sys.executable, "-m", "cli.main", *args]
        if "--" in args:  # options go before the command of `exec POD -- CMD`
            at = argv.index("--")
            argv[at:at] = ["--dir", str(self.dir)]
        else:
            argv += ["--dir", str(self.dir)]
        self.cli_calls += 1
        started = time.monotonic()
        try:
            return self._spawn(argv, environ, stdin, timeout)
        finally:
            self.cli_seconds += time.monotonic() - started

    @staticmethod
    def _spawn(
        argv: list[str], environ: dict[str, str], stdin: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=ROOT,
            env=environ,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, stdin: str | None = None, timeout: float = CLI_TIMEOUT) -> str:
        """``raftsman ARGS``; its stdout, or AssertionError with both streams.

        A command that can safely run twice and failed only because no API server could
        answer in time (the store stalled) is run once more, as a user would; the retry
        is recorded in :attr:`retried` and printed at the end.
        """
        result = self.run(*args, stdin=stdin, timeout=timeout)
        if result.returncode != 0 and _transient(result.stderr) and _repeatable(args):
            self.retried.append(f"raftsman {' '.join(args)}: {result.stderr.strip()}")
            result = self.run(*args, stdin=stdin, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"raftsman {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{self.diagnostics()}"
            )
        return result.stdout

    def json(self, *args: str) -> Any:
        """``raftsman ARGS -o json`` parsed; None when the command fails."""
        result = self.run(*args, "-o", "json")
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def items(self, *args: str) -> list[dict[str, Any]]:
        """The objects of ``raftsman get ARGS -o json`` ([] when the command fails)."""
        listed = self.json("get", *args)
        if listed is None:
            return []
        if listed.get("kind") == "List" or "items" in listed:
            return list(listed.get("items") or [])
        return [listed]

    def status(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok("status", "-o", "json"))
        return rows

    def pid_of(self, name: str) -> int:
        [row] = [r for r in self.status() if r["name"] == name]
        return int(row["pid"])

    # ------------------------------------------------------------------ waiting, timing

    def wait_for(
        self,
        predicate: Callable[[], T | None],
        *,
        timeout: float,
        what: str,
        interval: float = 0.2,
    ) -> T:
        """Poll ``predicate`` until truthy; on timeout the message ends with the logs.

        An API server that momentarily cannot answer (its store stalled, it is being
        restarted) means "not yet", as it would to a user polling by hand.
        """

        def attempt() -> T | None:
            try:
                return predicate()
            except (ServiceUnavailable, Timeout, trio.TooSlowError):
                return None

        value = processes.wait_for(
            attempt,
            timeout=timeout,
            interval=interval,
            message=lambda: f"{what}\n{self.diagnostics()}",
        )
        assert value is not None
        return value

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[step] = time.monotonic() - started

    def diagnostics(self, tail: int = 3000) -> str:
        parts = []
        for args in (("get", "pods", "-o", "wide"), ("get", "nodes")):
            result = self.run(*args, timeout=30)
            parts.append(f"$ raftsman {' '.join(args)}\n{result.stdout}{result.stderr}")
        logs = self.dir / "logs"
        if logs.is_dir():
            for path in sorted(logs.glob("*.log")):
                parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ the node agents' runtime

    def containers(self) -> list[ContainerRecord]:
        """Every container incarnation recorded under the nodes' data directories."""
        found = []
        for started in sorted(self.dir.glob("data/node-*/containers/*/started.json")):
            state = started.parent
            try:
                spec = json.loads((state / "spec.json").read_text())["spec"]
                pids_ = json.loads(started.read_text())
            except (OSError, ValueError, KeyError):
                continue  # being written or removed right now
            found.append(
                ContainerRecord(
                    node=state.parent.parent.name,
                    pod_uid=spec["pod_uid"],
                    container=spec["container_name"],
                    attempt=int(spec.get("attempt", 0)),
                    pid=int(pids_["pid"]),
                    pid_start=int(pids_["pid_start"]),
                    shim_pid=int(pids_["shim_pid"]),
                    shim_start=int(pids_["shim_start"]),
                    exited=(state / "exit.json").exists(),
                )
            )
        return found

    def running_container(self, pod_uid: str, container: str) -> ContainerRecord | None:
        """The running incarnation of a pod's container, if the runtime has one."""
        running = [
            c
            for c in self.containers()
            if c.pod_uid == pod_uid and c.container == container and c.running
        ]
        return max(running, key=lambda c: c.attempt) if running else None

    # ------------------------------------------------------------------ every process of the cluster

    def processes(self) -> list[ProcessId]:
        """Every live process of the cluster now (see the module docstring)."""
        seen: dict[int, ProcessId] = {}

        def note(pid: int, what: str, start: int | None = None) -> None:
            ticks = pids.start_ticks(pid)
            if ticks is None or (start is not None and ticks != start) or pid in seen:
                return
            seen[pid] = ProcessId(pid, ticks, what)

        result = self.run("status", "-o", "json", timeout=30)
        if result.returncode == 0:
            for row in json.loads(result.stdout):
                if row.get("pid"):
                    note(int(row["pid"]), f"{row['role']} {row['name']}")
        for record in self.recorded():
            note(record[0], "recorded in state.json", record[1])
        for c in self.containers():
            note(c.shim_pid, f"shim of {c.node}/{c.container}", c.shim_start)
            note(c.pid, f"container {c.node}/{c.container}", c.pid_start)
        sessions = {s for s in (_session_of(p) for p in seen) if s}
        sessions.discard(os.getsid(0))  # never this test run's own session
        for pid in _sessions_members(sessions):
            note(pid, f"in the session of {_session_of(pid)}")
        return list(seen.values())

    def recorded(self) -> list[tuple[int, int | None]]:
        """(pid, start) of the supervisor and every process, from the launcher's state file."""
        try:
            state = json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return []
        found = [state.get("supervisor") or {}, *state.get("processes", [])]
        return [(int(p["pid"]), p.get("pid_start")) for p in found if p.get("pid")]

    def down(self) -> subprocess.CompletedProcess[str]:
        self.keep_logs(self.dir.parent / "logs")
        return self.run("down", "--purge", timeout=60)

    def crashes(self) -> str:
        """The supervisor's log lines about processes that exited (killed or crashed)."""
        for logs in (self.dir / "logs", self.dir.parent / "logs"):  # live, or kept by down()
            try:
                text = (logs / "supervisor.log").read_text(errors="replace")
                break
            except OSError:
                continue
        else:
            return ""
        return "\n".join(line for line in text.splitlines() if "child crashed" in line)

    def keep_logs(self, into: Path) -> None:
        """Copy the cluster's logs (``down --purge`` deletes them) for a post-mortem."""
        logs = self.dir / "logs"
        if logs.is_dir():
            shutil.copytree(logs, into, dirs_exist_ok=True)

    def cleanup(self) -> list[ProcessId]:
        """``down --purge`` if still up; SIGKILL survivors. Returns those that survived."""
        before = self.processes() if self.dir.exists() else []
        if (self.dir / "state.json").exists():
            self.down()
        survivors = [p for p in before if p.alive]
        for p in survivors:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return survivors


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TourCluster]:
    """A default ``raftsman up`` cluster for the whole module, stopped and purged at the end."""
    base = tmp_path_factory.mktemp("tour")
    (base / "home").mkdir()
    cluster = TourCluster(dir=base / "cluster", home=base / "home")
    try:
        with cluster.timed("up"):
            result = cluster.run("up", timeout=120)
        if result.returncode != 0:
            raise AssertionError(
                f"raftsman up exited {result.returncode}\n{result.stdout}\n{result.stderr}\n"
                f"{cluster.diagnostics()}"
            )
        cluster.api = ApiReader(resolve(server=None, name=None, dir_=str(cluster.dir)).addresses)
        cluster.api.start()
        yield cluster
    finally:
        if cluster.api is not None:
            cluster.api.close()
        cluster.keep_logs(base / "logs")
        crashes = cluster.crashes()
        survivors = cluster.cleanup()
        total = sum(cluster.timings.values())
        print("\ntour timings (s):")
        for step, seconds in cluster.timings.items():
            print(f"  {step:<40} {seconds:6.1f}")
        print(f"  {'total':<40} {total:6.1f}")
        print(f"  {cluster.cli_calls} raftsman commands took {cluster.cli_seconds:.1f} s in all")
        if crashes:
            print(f"processes that exited while the cluster ran:\n{crashes}")
        if cluster.retried:
            print("commands run again after a transient server error:")
            print("\n".join(f"  {line}" for line in cluster.retried))
        if survivors:
            print(f"killed what `raftsman down` left running: {survivors}")
