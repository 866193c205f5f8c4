"""The container runtime interface: what the node agent asks of a runtime, and nothing more.

The node agent (the kubelet) turns Pods into containers; a *runtime* runs containers. The
two meet here, in Kubernetes' CRI spirit but much smaller: the agent resolves everything
that needs the API (images, command and args, env, volumes, limits) into a
:class:`ContainerSpec`, and the runtime knows nothing about Pods or the API server. Two
runtimes implement it: ``process`` (a container is a supervised process group on the host,
:mod:`node_agent.runtime.process`) and ``sim`` (nothing runs, containers live on trio's
clock, :mod:`node_agent.runtime.sim`); an OCI runtime with real namespaces can join later
behind the same :class:`ContainerRuntime` protocol.

Contract (every runtime)
    * **Identity.** :meth:`~ContainerRuntime.start` returns a new :data:`ContainerId`,
      never reused. A runtime refuses a second container with the same
      ``(pod_uid, container_name, attempt)`` while the first is known to it
      (:class:`ContainerExistsError`), so a retried start cannot run a container twice.
    * **Start is all or nothing.** ``start`` returns once the container's process runs
      (state RUNNING) or raises :class:`StartError` (bad working directory, missing
      executable, ...) and leaves nothing behind.
    * **Exit is final and remembered.** A container that exited stays EXITED, with its
      exit code, reason (``Completed``, ``Error``, ``OOMKilled``, ``StartError``,
      ``ContainerStatusUnknown``) and finish time, until :meth:`~ContainerRuntime.remove`;
      its log files outlive it (they are the caller's, at ``spec.log_path``).
    * **Prompt exit notice.** :meth:`~ContainerRuntime.wait` returns as soon as the
      container has exited (the process runtime learns it from a pidfd, within
      milliseconds; no polling). It may be called by several tasks, and cancelled.
    * **Listing survives the agent** where the runtime can: :meth:`~ContainerRuntime.containers`
      returns every container not yet removed, with the spec it was started with, so a
      restarted agent re-adopts what it ran (the process runtime keeps state on disk;
      the sim runtime lives in memory only).
    * **Stop** sends SIGTERM to the container's whole process group, waits up to ``grace``
      seconds, then SIGKILLs what is left; it returns the final status and is a no-op on
      an exited container.
    * **Concurrency.** Methods may be called from any task of the trio run that uses the
      runtime; the caller serializes start/stop/remove *of one container* (the agent's
      per-pod worker does), everything else may overlap.

Times are aware UTC datetimes; durations are seconds.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NewType, Protocol

__all__ = [
    "ContainerExistsError",
    "ContainerId",
    "ContainerInfo",
    "ContainerNotFoundError",
    "ContainerNotRunningError",
    "ContainerRunningError",
    "ContainerRuntime",
    "ContainerRuntimeError",
    "ContainerSpec",
    "ContainerState",
    "ContainerStats",
    "ContainerStatus",
    "Enforcement",
    "ExecResult",
    "Limits",
    "Mount",
    "OutputSink",
    "StartError",
    "WorkingDirError",
    "exec_capture",
    "spec_from_json",
    "spec_to_json",
]

ContainerId = NewType("ContainerId", str)

OutputSink = Callable[[bytes], Awaitable[None]]
"""Where ``exec`` output goes: awaited with each chunk, in order."""


class Enforcement(enum.Enum):
    """How a runtime enforces cpu and memory limits; the node reports the value.

    ``WATCHDOG``: no cgroups; the process runtime's shim samples the container's resident
    memory (:mod:`node_agent.runtime.memwatch`, every 200 ms) and kills it above the limit,
    and cpu limits become nice levels.
    """

    CGROUP_V2 = "cgroup v2"
    CGROUP_V1 = "cgroup v1"
    WATCHDOG = "memory: watchdog (RSS sampled every 200 ms), cpu: nice"
    NONE = "none"


@dataclass(frozen=True)
class Mount:
    """A volume mount: the host path ``host_path`` appears at ``container_path``.

    ``name`` is the volume's name (runtimes may expose it, e.g. as an environment variable).
    """

    name: str
    container_path: str
    host_path: Path
    read_only: bool = False


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container; None is "unlimited"."""

    cpu_millis: int | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class ContainerSpec:
    """Everything a runtime needs to run one container, resolved by the agent.

    ``argv`` is final (image defaults, command, args and ``$(VAR)`` expansion applied);
    ``env`` is the complete environment. ``root_dir`` is the container's own directory:
    runtimes without mount namespaces present ``mounts`` inside it and use it as the
    working directory when ``working_dir`` (a path inside the container) is None.
    ``attempt`` counts restarts of this container in its pod from 0. ``labels`` are the
    caller's and come back unchanged from :meth:`ContainerRuntime.containers`.
    """

    pod_uid: str
    pod_namespace: str
    pod_name: str
    container_name: str
    attempt: int
    argv: tuple[str, ...]
    root_dir: Path
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    mounts: tuple[Mount, ...] = ()
    limits: Limits = Limits()
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


class ContainerState(enum.Enum):
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class ContainerStatus:
    """What a runtime knows about one container now.

    RUNNING: ``started_at`` and (process runtime) ``pid`` are set. EXITED: also
    ``exit_code`` (128 + n for a container killed by signal n, and then ``signal`` is n),
    ``reason`` and ``finished_at``; ``started_at`` is None only for a container that never
    started (reason ``StartError``).
    """

    id: ContainerId
    state: ContainerState
    started_at: datetime | None
    finished_at: datetime | None = None
    exit_code: int | None = None
    signal: int = 0
    reason: str = ""
    message: str = ""
    pid: int | None = None

    @property
    def running(self) -> bool:
        return self.state is ContainerState.RUNNING


@dataclass(frozen=True)
class ContainerInfo:
    """One entry of :meth:`ContainerRuntime.containers`."""

    id: ContainerId
    spec: ContainerSpec
    status: ContainerStatus


@dataclass(frozen=True)
class ContainerStats:
    """Usage of a running container: cumulative cpu time and current memory.

    The caller derives cpu rates from two samples (``cpu_seconds`` delta over
    ``timestamp`` delta). ``memory_bytes`` is the working set where a cgroup measures it,
    else the summed resident anonymous and shmem memory of the container's processes (what
    the memory watchdog compares with the limit, :mod:`node_agent.runtime.memwatch`).
    """

    cpu_seconds: float
    memory_bytes: int
    processes: int
    timestamp: float


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


# ---------------------------------------------------------------------------------------
# Errors


class ContainerRuntimeError(Exception):
    """Base of the runtime's errors; the message is meant for the user."""


class ContainerNotFoundError(ContainerRuntimeError, LookupError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"no such container: {container_id}")
        self.container_id = container_id


class ContainerExistsError(ContainerRuntimeError):
    """A container with the same pod uid, name and attempt is already known."""


class ContainerRunningError(ContainerRuntimeError):
    """The operation needs an exited container (remove)."""


class ContainerNotRunningError(ContainerRuntimeError):
    """The operation needs a running container (exec, stats)."""


class StartError(ContainerRuntimeError):
    """The container could not be started; nothing of it is left.

    ``reason`` is the Kubernetes reason an agent reports for it (containerd reports a
    failed exec as a terminated container with reason ``StartError`` and exit code 128).
    """

    reason = "StartError"


class WorkingDirError(StartError):
    """The working directory does not exist or is not a directory."""


# ---------------------------------------------------------------------------------------
# The protocol


class ContainerRuntime(Protocol):
    """A container runtime; see the module docstring for the contract."""

    @property
    def name(self) -> str:
        """Short name: ``process``, ``sim``. Container ids are reported as ``<name>://<id>``."""
        ...

    @property
    def enforcement(self) -> Enforcement:
        """How cpu and memory limits are enforced for the containers of this runtime."""
        ...

    async def start(self, spec: ContainerSpec) -> ContainerId: ...

    async def status(self, container_id: ContainerId) -> ContainerStatus: ...

    async def containers(self) -> list[ContainerInfo]: ...

    async def wait(self, container_id: ContainerId) -> ContainerStatus: ...

    async def stop(self, container_id: ContainerId, *, grace: float) -> ContainerStatus: ...

    async def remove(self, container_id: ContainerId) -> None: ...

    async def exec(
        self,
        container_id: ContainerId,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None = None,
        stdout: OutputSink | None = None,
        stderr: OutputSink | None = None,
    ) -> int:
        """Run ``argv`` in the container's environment, working directory and limits.

        Output chunks are awaited into the sinks (None discards); ``stdin`` is fed to the
        command and closed when exhausted (None: ``/dev/null``). Returns the exit code
        (128 + n when killed by signal n). Cancelling kills the command.
        """
        ...

    async def stats(self, container_id: ContainerId) -> ContainerStats: ...


async def exec_capture(
    runtime: ContainerRuntime,
    container_id: ContainerId,
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    limit: int = 1 << 20,
) -> ExecResult:
    """``runtime.exec`` with output collected (each stream truncated to ``limit`` bytes)."""
    out = bytearray()
    err = bytearray()

    async def to_out(chunk: bytes) -> None:
        out.extend(chunk[: max(0, limit - len(out))])

    async def to_err(chunk: bytes) -> None:
        err.extend(chunk[: max(0, limit - len(err))])

    async def feed(data: bytes) -> AsyncIterable[bytes]:
        yield data

    code = await runtime.exec(
        container_id,
        argv,
        stdin=None if stdin is None else feed(stdin),
        stdout=to_out,
        stderr=to_err,
    )
    return ExecResult(code, bytes(out), bytes(err))


# ---------------------------------------------------------------------------------------
# Persistence of specs (runtimes that keep state on disk)


def spec_to_json(spec: ContainerSpec) -> dict[str, Any]:
    return {
        "pod_uid": spec.pod_uid,
        "pod_namespace": spec.pod_namespace,
        "pod_name": spec.pod_name,
        "container_name": spec.container_name,
        "attempt": spec.attempt,
        "argv": list(spec.argv),
        "root_dir": str(spec.root_dir),
        "log_path": str(spec.log_path),
        "env": dict(spec.env),
        "working_dir": spec.working_dir,
        "mounts": [
            {
                "name": m.name,
                "container_path": m.container_path,
                "host_path": str(m.host_path),
                "read_only": m.read_only,
            }
            for m in spec.mounts
        ],
        "limits": {"cpu_millis": spec.limits.cpu_millis, "memory_bytes": spec.limits.memory_bytes},
        "image": spec.image,
        "labels": dict(spec.labels),
    }


def spec_from_json(data: Mapping[str, Any]) -> ContainerSpec:
    return ContainerSpec(
        pod_uid=data["pod_uid"],
        pod_namespace=data["pod_namespace"],
        pod_name=data["pod_name"],
        container_name=data["container_name"],
        attempt=data["attempt"],
        argv=tuple(data["argv"]),
        root_dir=Path(data["root_dir"]),
        log_path=Path(data["log_path"]),
        env=dict(data["env"]),
        working_dir=data["working_dir"],
        mounts=tuple(
            Mount(
                name=m["name"],
                container_path=m["container_path"],
                host_path=Path(m["host_path"]),
                read_only=m["read_only"],
            )
            for m in data["mounts"]
        ),
        limits=Limits(**data["limits"]),
        image=data["image"],
        labels=dict(data["labels"]),
    )
