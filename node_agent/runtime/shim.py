"""The per-container supervisor ("shim") of the process runtime: the container's parent.

The problem. A container must outlive the node agent that started it: the agent may be
SIGKILLed and restarted, and its pods must keep running and keep being accounted for. If
the container were the agent's child, its exit status would go to whoever reaps it after
the agent dies (init), and its stdout pipe would break. So, as containerd-shim and conmon
do, every container gets a tiny parent of its own that

* starts it: a new session (so its process group is its own and signals sent to the
  group reach everything it forks), its working directory, its environment, stdin from
  ``/dev/null``, resource limits (cgroup membership, nice);
* enforces its memory limit where no cgroup does: a watchdog
  (:mod:`node_agent.runtime.memwatch`) samples the resident memory of the container's
  process group every 200 ms and, above the limit, SIGKILLs the group; the exit is then
  recorded as the kernel's OOM killer would have it (137, ``OOMKilled``). A burst that
  is faster than the sampling interval can overshoot the limit until the next sample;
  the kernel's accounting (cgroups) is exact;
* owns its output: stdout and stderr are two pipes that the shim copies into the log file
  in the CRI line format ``<RFC3339Nano UTC> stdout|stderr F|P <line>``, rotating the
  file by size (``<log>`` current, ``<log>.1`` newest rotated ... ``<log>.<keep>``);
* records its fate: ``started.json`` (pids with their /proc start times, to defend
  against pid reuse, and the start time) once ``exec`` succeeded, and ``exit.json``
  (exit code, signal, reason, finish time) when it has exited, both written atomically
  (temporary file + rename) into the container's state directory. The agent reads these
  files, so it learns the exit code and finish time even of a container that exited
  while no agent was running.

When the container's main process exits, the shim kills what is left of its process
group (and of its cgroup): as in Kubernetes, a container ends with its main process.
Its output is drained until both pipes close, or for at most two seconds when a
descendant that left the group keeps them open.

Running it. The runtime starts ``python -S -I -c "import shim; ..." run STATE_DIR`` (the
module is imported, not run as a script, so its bytecode is cached). ``run`` reads
``STATE_DIR/launch.bin`` (a :mod:`marshal`-ed dict written by the agent), writes one JSON
line to its stdout -- the handshake, ``{"pid": N}`` or ``{"error": "..."}`` -- and then
supervises. ``exec STATE_DIR ARGV...`` enters an existing container (its environment,
working directory, limits and cgroup) and execs ``ARGV`` in place: that is how ``exec``
commands and exec probes run. The module imports nothing outside the standard library
but its sibling :mod:`~node_agent.runtime.memwatch` (standard library only too, imported
as a top-level module from the shim's directory), so it runs under ``-S -I`` (no site, no
user paths) at the cost of a bare interpreter.

Cost, measured on the development host (Python 3.11, 2 shared cores): a shim supervising
an idle container has a resident set of about 9.5 MiB (a bare ``python -S`` is 8.3
MiB), and ``start`` returns (shim spawned, container exec'ed, handshake read) after about
20 ms on an idle host and 35-40 ms with both cores busy; a bare interpreter takes 10-20
ms of that. What keeps it there: marshal instead of json for the input and hand-written
JSON for the two tiny output files (:mod:`json` pulls in :mod:`re`, ~8 ms and 1.5 MiB),
``_signal`` instead of :mod:`signal` (which imports :mod:`enum`, ~6 ms), and the cached
bytecode (~5 ms). A ``/bin/sh`` wrapper would be smaller still but cannot split stdout
from stderr, stamp lines, rotate logs or report a signal-caused exit exactly, so the shim
is Python.
"""

# The C module behind ``signal``: importing ``signal`` itself pulls in ``enum`` (~6 ms).
import _signal as signal  # type: ignore[import-not-found]
import marshal
import os
import select
import sys
import time

try:  # imported as node_agent.runtime.shim (tests, the agent)
    from . import memwatch
except ImportError:  # run by the process runtime: the shim's directory is on sys.path
    import memwatch  # type: ignore[no-redef, import-not-found]

# A line longer than this is written as several "P" (partial) records and a final "F",
# as the CRI runtimes do (containerd's limit is 16 KiB).
MAX_RECORD = 16 * 1024
_READ_SIZE = 64 * 1024
_DRAIN_SECONDS = 2.0


def _write_json_file(path: str, fields: dict[str, object]) -> None:
    """Write ``fields`` (ints, floats, None, ASCII text without quotes or backslashes) as
    JSON, atomically."""
    parts = []
    for key, value in fields.items():
        if value is None:
            text = "null"
        elif isinstance(value, str):
            text = '"' + value + '"'
        else:
            text = str(value)
        parts.append(f'"{key}": {text}')
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("{" + ", ".join(parts) + "}\n")
    os.replace(tmp, path)


def start_ticks(pid: int) -> int:
    """Field 22 of ``/proc/<pid>/stat``: the process's start time in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2 :].split()[19])


def _stamp(ns: int) -> bytes:
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{fraction:09d}Z".encode()


class LogWriter:
    """Appends CRI-format records to ``path``; rotates before a write would pass ``max_bytes``.

    Output is split into lines per stream; a line is written once its newline arrives
    (tag ``F``), or in ``MAX_RECORD`` pieces (tag ``P``) while it is longer than that.
    Write errors (a full disk) drop the output rather than block the container.
    """

    def __init__(self, path: str, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.pending = {b"stdout": b"", b"stderr": b""}
        self.fd = -1
        self.size = 0
        self._open()

    def _open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.keep <= 0:
            os.unlink(self.path)
        else:
            for index in range(self.keep, 1, -1):
                older = f"{self.path}.{index - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{index}")
            os.replace(self.path, self.path + ".1")
        self._open()

    def feed(self, stream: bytes, data: bytes) -> None:
        buffer = self.pending[stream] + data
        stamp = _stamp(time.time_ns())
        records = []
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            while len(line) > MAX_RECORD:
                records.append(b"%s %s P %s\n" % (stamp, stream, line[:MAX_RECORD]))
                line = line[MAX_RECORD:]
            records.append(b"%s %s F %s\n" % (stamp, stream, line))
        while len(rest) > MAX_RECORD:
            records.append(b"%s %s P %s\n" % (stamp, stream, rest[:MAX_RECORD]))
            rest = rest[MAX_RECORD:]
        self.pending[stream] = rest
        if records:
            self._write(records)

    def close(self) -> None:
        stamp = _stamp(time.time_ns())
        for stream, rest in self.pending.items():
            if rest:
                self._write([b"%s %s F %s\n" % (stamp, stream, rest)])
        os.close(self.fd)

    def _write(self, records: list[bytes]) -> None:
        """Write ``records`` with as few writes as rotation allows (whole records only)."""
        batch: list[bytes] = []
        pending = 0
        try:
            for record in records:
                if self.size + pending and self.size + pending + len(record) > self.max_bytes:
                    if batch:
                        os.write(self.fd, b"".join(batch))
                        self.size += pending
                        batch, pending = [], 0
                    self._rotate()
                batch.append(record)
                pending += len(record)
            if batch:
                os.write(self.fd, b"".join(batch))
                self.size += pending
        except OSError:
            pass


def describe_exec_error(argv0: str, error: OSError) -> str:
    """runc's wording: ``exec: "foo": executable file not found in $PATH``."""
    if isinstance(error, FileNotFoundError) and "/" not in argv0:
        return f'exec: "{argv0}": executable file not found in $PATH'
    return f'exec: "{argv0}": {(error.strerror or str(error)).lower()}'


def enter(launch: dict, argv: list[str], *, new_session: bool) -> None:
    """Become a process of the container described by ``launch`` and exec ``argv``.

    Only returns by raising: the error (with a message for the user) of the step that failed.
    """
    if new_session:
        os.setsid()
    for procs in launch["cgroup_procs"]:
        try:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        except OSError as exc:
            raise OSError(exc.errno, f"joining cgroup {procs}: {exc.strerror}") from None
    if launch["nice"]:
        os.nice(launch["nice"])
    for name in ("SIGPIPE", "SIGXFSZ", "SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.chdir(launch["cwd"])
    except OSError as exc:
        cwd = launch["cwd"]
        raise OSError(exc.errno, f'chdir to working directory "{cwd}": {exc.strerror}') from None
    try:
        os.execvpe(argv[0], argv, launch["env"])
    except OSError as exc:
        raise OSError(exc.errno, describe_exec_error(argv[0], exc)) from None


def _counters(paths: list[str]) -> int:
    """The sum of the ``oom_kill N`` lines of the given cgroup files (0 where unreadable)."""
    total = 0
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        total += int(value)
        except (OSError, ValueError):
            pass
    return total


def _kill_rest(pgid: int, cgroup_procs: list[str]) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    for procs in cgroup_procs:
        try:
            with open(procs) as f:
                pids = [int(line) for line in f if line.strip()]
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def run(state_dir: str) -> int:
    with open(os.path.join(state_dir, "launch.bin"), "rb") as f:
        launch = marshal.load(f)
    os.chdir("/")
    # posix_spawn does not close inherited descriptors: drop any the agent leaked.
    os.closerange(3, 65536)
    oom_before = _counters(launch["oom_files"])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    report_r, report_w = os.pipe()  # close-on-exec: EOF means exec succeeded
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(err_r)
            os.close(report_r)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            enter(launch, launch["argv"], new_session=True)
        except BaseException as exc:  # the child must never return into the shim's code
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            try:
                os.write(report_w, message.encode(errors="replace"))
            finally:
                os._exit(127)
        os._exit(127)
    os.close(out_w)
    os.close(err_w)
    os.close(report_w)
    failure = b""
    while True:
        chunk = os.read(report_r, 4096)
        if not chunk:
            break
        failure += chunk
    os.close(report_r)
    if failure:
        os.waitpid(pid, 0)
        text = failure.decode(errors="replace").replace("\\", "\\\\").replace('"', '\\"')
        os.write(1, b'{"error": "' + text.encode() + b'"}\n')
        return 1
    started_ns = time.time_ns()
    _write_json_file(
        os.path.join(state_dir, "started.json"),
        {
            "pid": pid,
            "pid_start": start_ticks(pid),
            "shim_pid": os.getpid(),
            "shim_start": start_ticks(os.getpid()),
            "started_at_ns": started_ns,
        },
    )
    try:
        os.write(1, b'{"pid": %d}\n' % pid)
    except OSError:
        pass  # the agent died while starting us: supervise anyway, the next one adopts
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    return supervise(state_dir, launch, pid, out_r, err_r, oom_before)


def _watchdog(launch: dict, pid: int) -> memwatch.Watchdog | None:
    limit = launch.get("memory_limit")
    if not limit:
        return None
    return memwatch.Watchdog(
        pid, limit, interval=launch.get("watchdog_interval", memwatch.INTERVAL)
    )


def supervise(
    state_dir: str, launch: dict, pid: int, out_r: int, err_r: int, oom_before: int
) -> int:
    writer = LogWriter(launch["log_path"], launch["log_max_bytes"], launch["log_keep"])
    watchdog = _watchdog(launch, pid)
    oom_message = ""
    streams = {out_r: b"stdout", err_r: b"stderr"}
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    try:
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pidfd = -1
    code = -1
    sig = 0
    finished_ns = 0
    drain_until = 0.0
    while streams or not finished_ns:
        if finished_ns:
            timeout = max(0.0, drain_until - time.monotonic())
            if not timeout:
                break
        else:
            timeout = 0.1 if pidfd < 0 else -1
            if watchdog is not None:
                due = watchdog.timeout(time.monotonic())
                timeout = due if timeout < 0 else min(timeout, due)
        for fd, _ in poller.poll(timeout * 1000 if timeout >= 0 else None):
            if fd == pidfd:
                continue
            data = os.read(fd, _READ_SIZE)
            if data:
                writer.feed(streams[fd], data)
            else:
                poller.unregister(fd)
                os.close(fd)
                del streams[fd]
        if finished_ns:
            continue
        if watchdog is not None and not oom_message and watchdog.check(time.monotonic()):
            oom_message = watchdog.message()
            _kill_rest(pid, launch["cgroup_procs"])
        exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if exited is None:
            continue
        # Observed, not reaped: the leader stays a zombie -- its pid, the group id, cannot
        # be reused -- until the rest of its group is killed and the output drained.
        finished_ns = time.time_ns()
        if exited.si_code == os.CLD_EXITED:
            code = exited.si_status
        else:
            sig = exited.si_status
            code = 128 + sig
        _kill_rest(pid, launch["cgroup_procs"])
        drain_until = time.monotonic() + _DRAIN_SECONDS
        if pidfd >= 0:
            poller.unregister(pidfd)
            os.close(pidfd)
            pidfd = -1
    writer.close()
    os.waitpid(pid, 0)
    if oom_message or _counters(launch["oom_files"]) > oom_before:
        reason = "OOMKilled"
    else:
        reason = "Completed" if code == 0 else "Error"
    fields: dict[str, object] = {
        "exit_code": code,
        "signal": sig,
        "reason": reason,
        "finished_at_ns": finished_ns,
    }
    if oom_message:
        fields["message"] = oom_message
    _write_json_file(os.path.join(state_dir, "exit.json"), fields)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "run":
        return run(argv[2])
    if len(argv) >= 4 and argv[1] == "exec":
        with open(os.path.join(argv[2], "launch.bin"), "rb") as f:
            launch = marshal.load(f)
        try:
            enter(launch, argv[3:], new_session=False)
        except OSError as exc:
            sys.stderr.write(f"{exc.strerror or exc}\n")
            return 126 if isinstance(exc, PermissionError) else 127
    sys.stderr.write("usage: shim.py run STATE_DIR | exec STATE_DIR ARGV...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
