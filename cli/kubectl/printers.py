"""Output: kubectl's tables and ``-o name|json|yaml``, as pure functions of the objects.

Tables are laid out as kubectl's tab writer does (each column as wide as its widest cell
plus three spaces, at least six; the last column unpadded). Ages are humanized with
kubectl's rules (``45s``, ``3m20s``, ``5h``, ``2d3h``, ``3y``) against an explicit
``now``, so tests pin the clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from proto.k8s import codec
from proto.k8s.kinds import KindInfo

from .resources import display

NONE = "<none>"


def human_age(seconds: float) -> str:
    """kubectl's ``duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def age(obj: Any, now: float) -> str:
    meta = obj.metadata
    if not meta.HasField("creation_timestamp"):
        return "<unknown>"
    created = meta.creation_timestamp.seconds + meta.creation_timestamp.nanos / 1e9
    return human_age(now - created)


def render(rows: Sequence[Sequence[str]]) -> str:
    """Rows as kubectl's tab writer lays them out (minwidth 6, padding 3)."""
    if not rows:
        return ""
    columns = len(rows[0])
    widths = [max(max(len(r[i]) for r in rows) + 3, 6) for i in range(columns - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines)


# --------------------------------------------------------------------------- columns


def _exit_reason(t: Any, prefix: str = "") -> str:
    if t.reason:
        return prefix + str(t.reason)
    if t.signal:
        return f"{prefix}Signal:{t.signal}"
    return f"{prefix}ExitCode:{t.exit_code}"


def _pod_status(pod: Any) -> str:
    """kubectl's STATUS column: init progress, the most telling container state, or the
    phase; ``Terminating`` once deletion started."""
    reason = str(pod.status.reason or pod.status.phase or "Pending")
    initializing = False
    inits = pod.status.init_container_statuses
    sidecars = _sidecars(pod)
    for i, cs in enumerate(inits):
        if cs.state.HasField("terminated") and cs.state.terminated.exit_code == 0:
            continue
        if cs.name in sidecars and cs.HasField("started") and cs.started:
            continue  # a started sidecar is as good as a completed init container
        initializing = True
        if cs.state.HasField("terminated"):
            reason = _exit_reason(cs.state.terminated, "Init:")
        elif cs.state.HasField("waiting") and cs.state.waiting.reason not in (
            "",
            "PodInitializing",
        ):
            reason = f"Init:{cs.state.waiting.reason}"
        else:
            reason = f"Init:{i}/{len(pod.spec.init_containers)}"
        break
    initialized = any(c.type == "Initialized" and c.status == "True" for c in pod.status.conditions)
    if not initializing or initialized:
        has_running = False
        for cs in reversed(pod.status.container_statuses):
            if cs.state.HasField("waiting") and cs.state.waiting.reason:
                reason = str(cs.state.waiting.reason)
            elif cs.state.HasField("terminated"):
                reason = _exit_reason(cs.state.terminated)
            elif cs.state.HasField("running") and cs.ready:
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
            reason = "Running" if ready else "NotReady"
    if pod.metadata.HasField("deletion_timestamp"):
        return "Unknown" if pod.status.reason == "NodeLost" else "Terminating"
    return reason


def _sidecars(pod: Any) -> set[str]:
    """Names of the pod's sidecars (init containers with ``restartPolicy: Always``)."""
    return {c.name for c in pod.spec.init_containers if c.restart_policy == "Always"}


def _pod(pod: Any) -> list[str]:
    # Sidecars count as containers of the pod (READY, RESTARTS), as kubectl counts them.
    sidecars = _sidecars(pod)
    statuses = [
        *(cs for cs in pod.status.init_container_statuses if cs.name in sidecars),
        *pod.status.container_statuses,
    ]
    ready = sum(1 for cs in statuses if cs.ready)
    restarts = sum(cs.restart_count for cs in statuses)
    total = len(pod.spec.containers) + len(sidecars)
    return [f"{ready}/{total}", _pod_status(pod), str(restarts)]


def _pod_wide(pod: Any) -> list[str]:
    return [pod.status.pod_ip or NONE, pod.spec.node_name or NONE]


def _deployment(d: Any) -> list[str]:
    return [
        f"{d.status.ready_replicas}/{d.spec.replicas}",
        str(d.status.updated_replicas),
        str(d.status.available_replicas),
    ]


def _replicaset(rs: Any) -> list[str]:
    return [str(rs.spec.replicas), str(rs.status.replicas), str(rs.status.ready_replicas)]


def _ports(svc: Any) -> str:
    ports = []
    for p in svc.spec.ports:
        node = f":{p.node_port}" if p.node_port else ""
        ports.append(f"{p.port}{node}/{p.protocol or 'TCP'}")
    return ",".join(ports) or NONE


def _service(svc: Any) -> list[str]:
    external = ",".join(svc.spec.external_ips) or NONE
    return [svc.spec.type or "ClusterIP", svc.spec.cluster_ip or NONE, external, _ports(svc)]


def _service_wide(svc: Any) -> list[str]:
    selector = ",".join(f"{k}={v}" for k, v in sorted(svc.spec.selector.items()))
    return [selector or NONE]


def _node(node: Any) -> list[str]:
    ready = next((c.status for c in node.status.conditions if c.type == "Ready"), "")
    status = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
    if node.spec.unschedulable:
        status += ",SchedulingDisabled"
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix) :] for k in node.metadata.labels if k.startswith(prefix))
    return [status, ",".join(roles) or NONE]


def _node_version(node: Any) -> list[str]:
    return [node.status.node_info.kubelet_version or NONE]


def _node_wide(node: Any) -> list[str]:
    internal = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
    return [internal or NONE, node.status.node_info.os_image or NONE]


def _namespace(ns: Any) -> list[str]:
    return [ns.status.phase or "Active"]


def _configmap(cm: Any) -> list[str]:
    return [str(len(cm.data) + len(cm.binary_data))]


def _job(job: Any) -> list[str]:
    completions = job.spec.completions if job.spec.HasField("completions") else 1
    return [f"{job.status.succeeded}/{completions}", _job_duration(job)]


def _job_duration(job: Any) -> str:
    if not job.status.HasField("start_time"):
        return ""
    start = job.status.start_time.seconds
    end = (
        job.status.completion_time.seconds
        if job.status.HasField("completion_time")
        else time.time()
    )
    return human_age(end - start)


def _daemonset(ds: Any) -> list[str]:
    st = ds.status
    selector = ",".join(f"{k}={v}" for k, v in sorted(ds.spec.template.spec.node_selector.items()))
    return [
        str(st.desired_number_scheduled),
        str(st.current_number_scheduled),
        str(st.number_ready),
        str(st.updated_number_scheduled),
        str(st.number_available),
        selector or NONE,
    ]


def _cronjob(cj: Any) -> list[str]:
    last = cj.status.last_schedule_time
    ago = (
        human_age(time.time() - last.seconds) if cj.status.HasField("last_schedule_time") else NONE
    )
    return [cj.spec.schedule, str(bool(cj.spec.suspend)), str(len(cj.status.active)), ago]


def _endpoints(ep: Any) -> list[str]:
    pairs = [f"{a.ip}:{p.port}" for sub in ep.subsets for a in sub.addresses for p in sub.ports]
    if not pairs:
        return [NONE]
    shown = ",".join(pairs[:3])
    return [shown + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")]


def _secret(secret: Any) -> list[str]:
    return [secret.type or "Opaque", str(len(secret.data) + len(secret.string_data))]


def _lease(lease: Any) -> list[str]:
    return [lease.spec.holder_identity or NONE]


@dataclass(frozen=True)
class Columns:
    """The columns a kind shows between NAME and AGE (``tail``: after AGE, as kubectl's
    nodes show VERSION), and the extra ones of ``-o wide``."""

    headers: tuple[str, ...] = ()
    cells: Callable[[Any], list[str]] = lambda _obj: []
    tail_headers: tuple[str, ...] = ()
    tail: Callable[[Any], list[str]] = lambda _obj: []
    wide_headers: tuple[str, ...] = ()
    wide: Callable[[Any], list[str]] = lambda _obj: []


COLUMNS: Mapping[str, Columns] = {
    "Pod": Columns(
        ("READY", "STATUS", "RESTARTS"), _pod, (), lambda _: [], ("IP", "NODE"), _pod_wide
    ),
    "Deployment": Columns(("READY", "UP-TO-DATE", "AVAILABLE"), _deployment),
    "ReplicaSet": Columns(("DESIRED", "CURRENT", "READY"), _replicaset),
    "Service": Columns(
        ("TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"),
        _service,
        (),
        lambda _: [],
        ("SELECTOR",),
        _service_wide,
    ),  # fmt: skip
    "Node": Columns(
        ("STATUS", "ROLES"),
        _node,
        ("VERSION",),
        _node_version,
        ("INTERNAL-IP", "OS-IMAGE"),
        _node_wide,
    ),  # fmt: skip
    "Namespace": Columns(("STATUS",), _namespace),
    "ConfigMap": Columns(("DATA",), _configmap),
    "Job": Columns(("COMPLETIONS", "DURATION"), _job),
    "DaemonSet": Columns(
        ("DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR"), _daemonset
    ),
    "CronJob": Columns(("SCHEDULE", "SUSPEND", "ACTIVE", "LAST SCHEDULE"), _cronjob),
    "Endpoints": Columns(("ENDPOINTS",), _endpoints),
    "Secret": Columns(("TYPE", "DATA"), _secret),
    "Lease": Columns(("HOLDER",), _lease),
}


def table_rows(
    info: KindInfo,
    objects: Sequence[Any],
    *,
    now: float,
    wide: bool = False,
    all_namespaces: bool = False,
    show_labels: bool = False,
    with_kind: bool = False,
    header: bool = True,
) -> list[list[str]]:
    """The table for ``objects`` of one kind, header first (unless ``header=False``)."""
    if info.kind == "Event" and not show_labels:
        return event_rows(objects, now=now, all_namespaces=all_namespaces, header=header)
    cols = COLUMNS.get(info.kind, Columns())
    namespaced = all_namespaces and info.namespaced
    head = ["NAMESPACE"] if namespaced else []
    head += ["NAME", *cols.headers, "AGE", *cols.tail_headers]
    if wide:
        head += cols.wide_headers
    if show_labels:
        head.append("LABELS")
    rows = [head] if header else []
    prefix = f"{display(info)}/" if with_kind else ""
    for obj in objects:
        row = [obj.metadata.namespace] if namespaced else []
        row += [prefix + obj.metadata.name, *cols.cells(obj), age(obj, now), *cols.tail(obj)]
        if wide:
            row += cols.wide(obj)
        if show_labels:
            labels = ",".join(f"{k}={v}" for k, v in sorted(obj.metadata.labels.items()))
            row.append(labels or NONE)
        rows.append(row)
    return rows


def event_time(event: Any) -> float:
    """When an Event last happened (lastTimestamp, else eventTime, else creation)."""
    for field in ("last_timestamp", "event_time", "first_timestamp"):
        if event.HasField(field):
            stamp = getattr(event, field)
            return float(stamp.seconds + stamp.nanos / 1e9)
    created = event.metadata.creation_timestamp
    return float(created.seconds + created.nanos / 1e9)


def event_age(event: Any, now: float) -> str:
    """How long ago an Event last happened; a repeat adds ``(xN over AGE)``, as kubectl."""
    seen = human_age(now - event_time(event))
    if event.count > 1 and event.HasField("first_timestamp"):
        seen += f" (x{event.count} over {human_age(now - event.first_timestamp.seconds)})"
    return seen


def event_rows(
    events: Sequence[Any], *, now: float, all_namespaces: bool = False, header: bool = True
) -> list[list[str]]:
    """kubectl's events table: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, oldest first;
    a repeated Event shows ``(xN over AGE)`` after its last-seen age."""
    head = (["NAMESPACE"] if all_namespaces else []) + [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "MESSAGE",
    ]
    rows = [head] if header else []
    for e in sorted(events, key=event_time):
        seen = event_age(e, now)
        ref = e.involved_object
        row = [e.metadata.namespace] if all_namespaces else []
        row += [
            seen,
            e.type or "Normal",
            e.reason,
            f"{ref.kind.lower()}/{ref.name}",
            e.message.strip(),
        ]
        rows.append(row)
    return rows


def table(info: KindInfo, objects: Sequence[Any], *, now: float, **kw: Any) -> str:
    return render(table_rows(info, objects, now=now, **kw))


# --------------------------------------------------------------------------- -o formats


def manifest(obj: Any) -> dict[str, Any]:
    return codec.encode(obj)


def as_document(objects: Sequence[Any], *, single: bool) -> dict[str, Any]:
    """One object as itself when ``single``; otherwise a ``List`` with ``items``."""
    if single and len(objects) == 1:
        return manifest(objects[0])
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [manifest(o) for o in objects],
        "metadata": {"resourceVersion": ""},
    }


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=4)


def to_yaml(doc: Mapping[str, Any]) -> str:
    return str(yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)).rstrip("\n")


def name_line(info: KindInfo, obj: Any) -> str:
    return f"{display(info)}/{obj.metadata.name}"
