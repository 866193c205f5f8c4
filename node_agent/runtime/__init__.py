"""Container runtimes of the node agent, behind one interface.

* :mod:`.base` -- the interface (:class:`ContainerRuntime`), its types and errors;
* :mod:`.process` -- containers as supervised process groups on the host (default);
* :mod:`.sim` -- simulated containers on trio's clock (scale tests);
* :mod:`.shim` -- the per-container supervisor of the process runtime;
* :mod:`.logs` -- log format, rotation, tail and follow;
* :mod:`.rootfs` -- how process-runtime containers see their mounts;
* :mod:`.cgroups`, :mod:`.procfs` -- limits, usage and process identity on Linux;
* :mod:`.memwatch` -- the shim's memory watchdog where no cgroup enforces memory limits.
"""

from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerId,
    ContainerInfo,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRunningError,
    ContainerRuntime,
    ContainerRuntimeError,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    Enforcement,
    ExecResult,
    Limits,
    Mount,
    OutputSink,
    StartError,
    WorkingDirError,
    exec_capture,
)

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
]
