"""A pod's status from its containers' statuses: phase and conditions, as the kubelet computes them.

Pure functions, no I/O: the pod worker renders its container records
(:func:`node_agent.agent.containers.render`) and :func:`pod_status` assembles the rest.

Phase (the kubelet's ``getPhase``, over the rendered statuses)
    * an init container failed and ``restartPolicy`` is Never -> ``Failed``;
    * an init container is still to complete (a sidecar -- ``restartPolicy: Always`` --
      until it is started), or an app container has not started yet (waiting without a
      previous exit) -> ``Pending``;
    * some app container or sidecar runs -> ``Running``; a sidecar that exited does
      not count (it is restarted, or stopped because the app containers finished);
    * none runs and all have exited: ``Always`` -> ``Running`` (they will be restarted);
      all succeeded -> ``Succeeded``; Never -> ``Failed``; OnFailure -> ``Running``.
    A pod that reached ``Succeeded`` or ``Failed`` never leaves it (the caller passes the
    phase it last reported as ``terminal``).

Conditions (the kubelet's ``GeneratePod*Condition``), in Kubernetes' order
    ``Initialized`` -- False ``ContainersNotInitialized`` "containers with incomplete
    status: [a b]" until every init container exited 0 and every sidecar started (and
    True for good once an app container ran); ``Ready`` and ``ContainersReady`` -- False
    ``ContainersNotReady`` "containers with unready status: [a]" until every sidecar and
    app container is ready, False ``PodCompleted`` once the pod succeeded;
    ``PodScheduled`` -- the scheduler's (kept; True when missing, since the pod is on this
    node); ``DisruptionTarget`` -- True ``TerminationByKubelet`` for a pod the node
    evicted.
    ``lastTransitionTime`` changes only when a condition's status does; conditions of
    other types (set by other components) are kept as they are.

A pod the node refused to admit never ran: :func:`rejected_status` is all it gets
(phase ``Failed`` with the reason and message), as the kubelet's ``rejectPod`` writes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from proto.k8s import core_pb2, meta_pb2

__all__ = ["TERMINAL_PHASES", "pod_conditions", "pod_phase", "pod_status", "rejected_status"]

TERMINAL_PHASES = ("Succeeded", "Failed")
_KUBELET = ("Initialized", "Ready", "ContainersReady")
_OWNED = (*_KUBELET, "PodScheduled")


def _has_last_exit(status: core_pb2.ContainerStatus) -> bool:
    return status.last_state.HasField("terminated")


def _sidecar_started(status: core_pb2.ContainerStatus) -> bool:
    return status.state.HasField("running") and status.HasField("started") and status.started


def pod_phase(
    restart_policy: str,
    init_statuses: Sequence[core_pb2.ContainerStatus],
    statuses: Sequence[core_pb2.ContainerStatus],
    *,
    init_count: int,
    app_count: int,
    sidecars: Collection[str] = (),
) -> str:
    """The phase of a pod whose containers have these statuses (module docstring).

    ``sidecars`` names the init containers with ``restartPolicy: Always``; ``init_count``
    counts every init container, sidecars included.
    """
    pending_init = init_count - len(init_statuses)
    failed_init = 0
    running = waiting = stopped = succeeded = 0
    unknown = app_count - len(statuses)
    for status in init_statuses:
        state = status.state
        if status.name in sidecars:
            # A sidecar that exited is ignored (it restarts, or the pod is finishing).
            if state.HasField("running"):
                running += 1
                if not _sidecar_started(status):
                    pending_init += 1
            elif state.HasField("waiting") and not _has_last_exit(status):
                pending_init += 1
                waiting += 1
            continue
        if state.HasField("running"):
            pending_init += 1
        elif state.HasField("terminated"):
            if state.terminated.exit_code != 0:
                failed_init += 1
        elif _has_last_exit(status):
            if status.last_state.terminated.exit_code != 0:
                failed_init += 1
        else:
            pending_init += 1
    started_any = False
    for status in statuses:
        state = status.state
        if state.HasField("running"):
            running += 1
            started_any = True
        elif state.HasField("terminated"):
            stopped += 1
            started_any = True
            if state.terminated.exit_code == 0:
                succeeded += 1
        elif state.HasField("waiting"):
            if _has_last_exit(status):
                stopped += 1
                started_any = True
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init > 0 and restart_policy == "Never":
        return "Failed"
    if (pending_init > 0 and not started_any) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> meta_pb2.Condition:
    return meta_pb2.Condition(
        type=type_,
        status="True" if ok else "False",
        reason="" if ok else reason,
        message="" if ok else message,
    )


def _names(names: Sequence[str]) -> str:
    return "[" + " ".join(names) + "]"


def _any_app_started(statuses: Sequence[core_pb2.ContainerStatus]) -> bool:
    return any(s.state.HasField("running") or s.state.HasField("terminated") for s in statuses)


def pod_conditions(
    phase: str,
    init_statuses: Sequence[core_pb2.ContainerStatus],
    statuses: Sequence[core_pb2.ContainerStatus],
    *,
    init_names: Sequence[str],
    app_names: Sequence[str],
    sidecars: Collection[str] = (),
) -> list[meta_pb2.Condition]:
    """Initialized, Ready and ContainersReady (without times) for these statuses.

    A sidecar (named in ``sidecars``) counts as initialized once started, and its
    readiness counts for Ready like an app container's.
    """
    by_init = {s.name: s for s in init_statuses}
    incomplete = []
    for name in init_names:
        status = by_init.get(name)
        if status is None:
            incomplete.append(name)
        elif name in sidecars:
            if not _sidecar_started(status):
                incomplete.append(name)
        elif not (status.state.HasField("terminated") and status.state.terminated.exit_code == 0):
            incomplete.append(name)
    initialized = _condition(
        "Initialized",
        # An app container that ran means initialization happened (a sidecar restarting
        # later does not undo it).
        not incomplete or phase == "Succeeded" or _any_app_started(statuses),
        "ContainersNotInitialized",
        f"containers with incomplete status: {_names(incomplete)}",
    )
    by_app = {s.name: s for s in statuses}
    watched = [(n, by_init) for n in init_names if n in sidecars] + [(n, by_app) for n in app_names]
    unknown = [n for n, known in watched if n not in known]
    unready = [n for n, known in watched if n in known and not known[n].ready]
    if phase == "Succeeded" and not unknown:
        ready_ok, reason, message = False, "PodCompleted", ""
    elif unknown or unready:
        parts = []
        if unknown:
            parts.append(f"containers with unknown status: {_names(unknown)}")
        if unready:
            parts.append(f"containers with unready status: {_names(unready)}")
        ready_ok, reason, message = False, "ContainersNotReady", ", ".join(parts)
    else:
        ready_ok, reason, message = True, "", ""
    return [
        initialized,
        _condition("Ready", ready_ok, reason, message),
        _condition("ContainersReady", ready_ok, reason, message),
    ]


def _merge_conditions(
    wanted: list[meta_pb2.Condition],
    previous: Sequence[meta_pb2.Condition],
    stored: Sequence[meta_pb2.Condition],
    now: datetime,
) -> list[meta_pb2.Condition]:
    old = {c.type: c for c in previous}
    out = []
    for condition in wanted:
        before = old.get(condition.type)
        if before is not None and before.status == condition.status:
            condition.last_transition_time.CopyFrom(before.last_transition_time)
        else:
            condition.last_transition_time.FromDatetime(now)
        out.append(condition)
    scheduled = next((c for c in stored if c.type == "PodScheduled"), old.get("PodScheduled"))
    if scheduled is not None and scheduled.status == "True":
        out.append(scheduled)
    else:
        condition = meta_pb2.Condition(type="PodScheduled", status="True")
        condition.last_transition_time.FromDatetime(now)
        out.append(condition)
    mine = {c.type for c in out}
    out.extend(c for c in stored if c.type not in _OWNED and c.type not in mine)
    return out


def pod_status(
    pod: core_pb2.Pod,
    *,
    init_statuses: Sequence[core_pb2.ContainerStatus],
    statuses: Sequence[core_pb2.ContainerStatus],
    pod_ip: str,
    host_ip: str,
    start_time: datetime | None,
    now: datetime,
    terminal: str = "",
    reason: str = "",
    message: str = "",
    disruption: str = "",
    previous: core_pb2.PodStatus | None = None,
) -> core_pb2.PodStatus:
    """The full status of ``pod`` given its rendered container statuses.

    ``terminal`` is the terminal phase already reached (sticky), ``reason``/``message``
    pod-level ones (e.g. why the node evicted the pod); ``disruption``, when set, is the
    message of a ``DisruptionTarget`` condition (the node is terminating the pod). ``previous`` is the status the
    caller computed last (default: the stored one, ``pod.status``): its condition
    transition times are kept -- the caller's own, never the stored copy, which lags
    behind the caller's writes and would make two statuses alternate. ``pod.status``
    supplies what other components own: foreign conditions, ``PodScheduled``, and what
    is kept: ``startTime``, the pod IP of a finished pod whose address was released.
    """
    spec = pod.spec
    sidecars = {c.name for c in spec.init_containers if c.restart_policy == "Always"}
    phase = terminal or pod_phase(
        spec.restart_policy or "Always",
        init_statuses,
        statuses,
        init_count=len(spec.init_containers),
        app_count=len(spec.containers),
        sidecars=sidecars,
    )
    conditions = pod_conditions(
        phase,
        init_statuses,
        statuses,
        init_names=[c.name for c in spec.init_containers],
        app_names=[c.name for c in spec.containers],
        sidecars=sidecars,
    )
    if disruption:
        conditions.append(
            meta_pb2.Condition(
                type="DisruptionTarget",
                status="True",
                reason="TerminationByKubelet",
                message=disruption,
            )
        )
    stored = pod.status
    if previous is None:
        previous = stored
    out = core_pb2.PodStatus(
        phase=phase,
        conditions=_merge_conditions(conditions, previous.conditions, stored.conditions, now),
        host_ip=host_ip,
        reason=reason,
        message=message,
        init_container_statuses=list(init_statuses),
        container_statuses=list(statuses),
        qos_class=stored.qos_class,
        nominated_node_name=stored.nominated_node_name,
    )
    ip = pod_ip or previous.pod_ip or stored.pod_ip
    if ip:
        out.pod_ip = ip
        out.pod_ips.add(ip=ip)
    if stored.HasField("start_time"):
        out.start_time.CopyFrom(stored.start_time)
    elif start_time is not None:
        out.start_time.FromDatetime(start_time)
    return out


def rejected_status(pod: core_pb2.Pod, *, reason: str, message: str) -> core_pb2.PodStatus:
    """The status of a pod the node refused to run: ``Failed`` with ``reason`` and
    ``message``; conditions other components set (``PodScheduled``) are kept."""
    out = core_pb2.PodStatus(phase="Failed", reason=reason, message=message)
    out.conditions.extend(c for c in pod.status.conditions if c.type not in _KUBELET)
    if pod.status.HasField("start_time"):
        out.start_time.CopyFrom(pod.status.start_time)
    return out
