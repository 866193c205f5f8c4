"""``raftsman describe KIND [NAME...]``: a readable summary of objects, with the related
objects and recent Events, laid out as kubectl's describe does.

Pods, Deployments, ReplicaSets, Services and Nodes get kind-specific sections (a pod's
containers with their state and restarts; a Deployment's replica counts, strategy and
ReplicaSets; a Service's endpoints; a node's conditions, capacity and the pods on it);
every other kind shows its spec and status as indented fields. Every object ends with its
Events (``<none>`` when there are none).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import click

from actors.client import ApiClient, ApiError, NotFound, Unreachable

from . import printers, resources, session
from .get import not_found

INDENT = "  "


class Writer:
    """Lines of ``Key:  value`` at nesting levels, values aligned per level like kubectl.

    ``item(level, key)`` opens a section (``Key:``); ``item(level, "", value)`` continues
    the previous key's value on a line of its own, under the values (a second label);
    ``row(level, text)`` is a line taken as it is (a line of a table such as Conditions or
    Events: no colon is added).
    """

    def __init__(self) -> None:
        self.lines: list[tuple[int, str, str | None]] = []
        self._rows: set[int] = set()

    def item(self, level: int, key: str, value: Any = None) -> None:
        self.lines.append((level, key, None if value is None else str(value)))

    def row(self, level: int, text: str) -> None:
        self._rows.add(len(self.lines))
        self.lines.append((level, text, None))

    def text(self) -> str:
        out: list[str] = []
        # Align values within runs of lines at one level.
        width: dict[int, int] = {}
        for level, key, value in self.lines:
            if value is not None:
                width[level] = max(width.get(level, 0), len(key) + 1)
        for index, (level, key, value) in enumerate(self.lines):
            prefix = INDENT * level
            if index in self._rows:
                out.append(f"{prefix}{key}".rstrip())
            elif value is None:
                out.append(f"{prefix}{key}:")
            else:
                label = f"{key}:" if key else ""
                out.append(f"{prefix}{label.ljust(width[level])}  {value}".rstrip())
        return "\n".join(out)


def _ts(stamp: Any) -> str:
    return datetime.fromtimestamp(stamp.seconds, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _map(w: Writer, level: int, key: str, items: dict[str, str], *, sep: str = "=") -> None:
    pairs = [f"{k}{sep}{v}" for k, v in sorted(items.items())]
    if not pairs:
        w.item(level, key, "<none>")
        return
    w.item(level, key, pairs[0])
    for pair in pairs[1:]:
        w.item(level, "", pair)


def _meta(w: Writer, obj: Any) -> None:
    meta = obj.metadata
    w.item(0, "Name", meta.name)
    if meta.namespace:
        w.item(0, "Namespace", meta.namespace)
    _map(w, 0, "Labels", dict(meta.labels))
    # As kubectl: ``key: value``, without the (long) last-applied configuration.
    annotations = {k: v for k, v in meta.annotations.items() if k != LAST_APPLIED}
    _map(w, 0, "Annotations", annotations, sep=": ")
    if meta.HasField("creation_timestamp"):
        w.item(0, "CreationTimestamp", _ts(meta.creation_timestamp))
    owner = next((o for o in meta.owner_references if o.controller), None)
    if owner is not None:
        w.item(0, "Controlled By", f"{owner.kind}/{owner.name}")
    if meta.HasField("deletion_timestamp"):
        w.item(0, "Status", f"Terminating (lasts {meta.deletion_grace_period_seconds}s)")


def _containers(
    w: Writer, level: int, title: str, containers: Iterable[Any], statuses: Iterable[Any]
) -> None:
    containers = list(containers)
    if not containers:
        return
    by_name = {s.name: s for s in statuses}
    w.item(level, title)
    for c in containers:
        st = by_name.get(c.name)
        w.item(level + 1, c.name)
        if st is not None and st.container_id:
            w.item(level + 2, "Container ID", st.container_id)
        w.item(level + 2, "Image", c.image)
        ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in c.ports)
        w.item(level + 2, "Port", ports or "<none>")
        if c.command:
            w.item(level + 2, "Command", " ".join(c.command))
        if c.args:
            w.item(level + 2, "Args", " ".join(c.args))
        if st is not None:
            _state(w, level + 2, "State", st.state)
            if st.HasField("last_state") and (
                st.last_state.HasField("terminated") or st.last_state.HasField("waiting")
            ):
                _state(w, level + 2, "Last State", st.last_state)
            w.item(level + 2, "Ready", str(st.ready))
            w.item(level + 2, "Restart Count", st.restart_count)
        for kind in ("limits", "requests"):
            values = dict(getattr(c.resources, kind))
            if values:
                w.item(level + 2, kind.capitalize())
                for k, v in sorted(values.items()):
                    w.item(level + 3, k, v)
        for probe_name in ("liveness_probe", "readiness_probe", "startup_probe"):
            if c.HasField(probe_name):
                w.item(
                    level + 2, probe_name.split("_")[0].capitalize(), _probe(getattr(c, probe_name))
                )
        if c.env:
            w.item(level + 2, "Environment")
            for e in c.env:
                value = e.value if not e.HasField("value_from") else _env_source(e.value_from)
                w.item(level + 3, e.name, value)
        else:
            w.item(level + 2, "Environment", "<none>")
        mounts = [
            f"{m.mount_path} from {m.name} ({'ro' if m.read_only else 'rw'})"
            for m in c.volume_mounts
        ]
        w.item(level + 2, "Mounts", mounts[0] if mounts else "<none>")
        for m in mounts[1:]:
            w.item(level + 2, "", m)


def _env_source(src: Any) -> str:
    if src.HasField("config_map_key_ref"):
        r = src.config_map_key_ref
        return f"<set to the key '{r.key}' of config map '{r.name}'>"
    if src.HasField("secret_key_ref"):
        r = src.secret_key_ref
        return f"<set to the key '{r.key}' in secret '{r.name}'>"
    if src.HasField("field_ref"):
        return f"({src.field_ref.api_version or 'v1'}:{src.field_ref.field_path})"
    return "<set from a source>"


def _probe(p: Any) -> str:
    if p.HasField("http_get"):
        h = p.http_get
        port = h.port.int_val if h.port.HasField("int_val") else h.port.str_val
        what = f"http-get http://{h.host or ''}:{port}{h.path or '/'}"
    elif p.HasField("tcp_socket"):
        port = p.tcp_socket.port
        what = f"tcp-socket :{port.int_val if port.HasField('int_val') else port.str_val}"
    elif p.HasField("exec"):
        what = "exec [" + " ".join(p.exec.command) + "]"
    else:
        what = "unknown"
    return (
        f"{what} delay={p.initial_delay_seconds}s timeout={p.timeout_seconds}s "
        f"period={p.period_seconds}s #success={p.success_threshold} #failure={p.failure_threshold}"
    )


def _state(w: Writer, level: int, key: str, state: Any) -> None:
    if state.HasField("running"):
        w.item(level, key, "Running")
        if state.running.HasField("started_at"):
            w.item(level + 1, "Started", _ts(state.running.started_at))
    elif state.HasField("terminated"):
        t = state.terminated
        w.item(level, key, "Terminated")
        w.item(level + 1, "Reason", t.reason or "<none>")
        if t.message:
            w.item(level + 1, "Message", t.message)
        w.item(level + 1, "Exit Code", t.exit_code)
        if t.HasField("started_at"):
            w.item(level + 1, "Started", _ts(t.started_at))
        if t.HasField("finished_at"):
            w.item(level + 1, "Finished", _ts(t.finished_at))
    elif state.HasField("waiting"):
        w.item(level, key, "Waiting")
        w.item(level + 1, "Reason", state.waiting.reason or "<none>")
        if state.waiting.message:
            w.item(level + 1, "Message", state.waiting.message)
    else:
        w.item(level, key, "<none>")


def _conditions(w: Writer, conditions: Iterable[Any], *, reason: bool = False) -> None:
    conditions = list(conditions)
    w.item(0, "Conditions")
    if not conditions:
        w.row(1, "<none>")
        return
    head = ["Type", "Status", *(["Reason"] if reason else [])]
    rows = [head, ["----", "------", *(["------"] if reason else [])]]
    for c in conditions:
        rows.append([c.type, c.status, *([c.reason or ""] if reason else [])])
    for line in printers.render(rows).splitlines():
        w.row(1, line)


def _template(w: Writer, template: Any) -> None:
    w.item(0, "Pod Template")
    _map(w, 1, "Labels", dict(template.metadata.labels))
    _containers(w, 1, "Init Containers", template.spec.init_containers, ())
    _containers(w, 1, "Containers", template.spec.containers, ())


# --------------------------------------------------------------------------- per kind


async def _pod(api: ApiClient, w: Writer, pod: Any) -> None:
    spec, status = pod.spec, pod.status
    w.item(0, "Node", f"{spec.node_name}/{status.host_ip}" if spec.node_name else "<none>")
    if status.HasField("start_time"):
        w.item(0, "Start Time", _ts(status.start_time))
    w.item(0, "Status", printers._pod_status(pod))
    w.item(0, "IP", status.pod_ip or "<none>")
    _containers(w, 0, "Init Containers", spec.init_containers, status.init_container_statuses)
    _containers(w, 0, "Containers", spec.containers, status.container_statuses)
    _conditions(w, status.conditions)
    w.item(0, "Volumes", "<none>" if not spec.volumes else None)
    for v in spec.volumes:
        kind = next((f.name for f, _ in v.ListFields() if f.name != "name"), "unknown")
        w.item(1, v.name)
        w.item(2, "Type", kind)
    _map(w, 0, "Node-Selectors", dict(spec.node_selector))
    tolerations = [
        f"{t.key or '<all>'}{':' + t.effect if t.effect else ''} op={t.operator or 'Equal'}"
        + (f" for {t.toleration_seconds}s" if t.HasField("toleration_seconds") else "")
        for t in spec.tolerations
    ]
    w.item(0, "Tolerations", tolerations[0] if tolerations else "<none>")
    for t in tolerations[1:]:
        w.item(0, "", t)


async def _deployment(api: ApiClient, w: Writer, d: Any) -> None:
    st = d.status
    w.item(
        0, "Selector", ",".join(f"{k}={v}" for k, v in sorted(d.spec.selector.match_labels.items()))
    )
    w.item(
        0,
        "Replicas",
        f"{d.spec.replicas} desired | {st.updated_replicas} updated | {st.replicas} total | "
        f"{st.available_replicas} available | {st.unavailable_replicas} unavailable",
    )
    w.item(0, "StrategyType", d.spec.strategy.type or "RollingUpdate")
    w.item(0, "MinReadySeconds", d.spec.min_ready_seconds)
    if (d.spec.strategy.type or "RollingUpdate") == "RollingUpdate":
        ru = d.spec.strategy.rolling_update

        def show(v: Any) -> str:
            return str(v.int_val) if v.HasField("int_val") else v.str_val or "25%"

        w.item(
            0,
            "RollingUpdateStrategy",
            f"{show(ru.max_unavailable)} max unavailable, {show(ru.max_surge)} max surge",
        )
    _template(w, d.spec.template)
    _conditions(w, st.conditions, reason=True)
    listed = await api.list_all("ReplicaSet", namespace=d.metadata.namespace)
    owned = [
        rs
        for rs in listed.items
        if any(o.uid == d.metadata.uid for o in rs.metadata.owner_references)
    ]
    revision = d.metadata.annotations.get("deployment.kubernetes.io/revision", "")
    new = [
        rs
        for rs in owned
        if rs.metadata.annotations.get("deployment.kubernetes.io/revision") == revision
    ]
    old = [rs for rs in owned if rs not in new and rs.spec.replicas > 0]

    def line(rs: Any) -> str:
        return f"{rs.metadata.name} ({rs.status.replicas}/{rs.spec.replicas} replicas created)"

    w.item(0, "OldReplicaSets", ", ".join(line(rs) for rs in old) or "<none>")
    w.item(0, "NewReplicaSet", ", ".join(line(rs) for rs in new) or "<none>")


async def _replicaset(api: ApiClient, w: Writer, rs: Any) -> None:
    w.item(
        0,
        "Selector",
        ",".join(f"{k}={v}" for k, v in sorted(rs.spec.selector.match_labels.items())),
    )
    w.item(0, "Replicas", f"{rs.status.replicas} current / {rs.spec.replicas} desired")
    pods = await api.list_all("Pod", namespace=rs.metadata.namespace)
    mine = [
        p for p in pods.items if any(o.uid == rs.metadata.uid for o in p.metadata.owner_references)
    ]
    phases = {
        phase: sum(1 for p in mine if p.status.phase == phase)
        for phase in ("Running", "Pending", "Succeeded", "Failed")
    }
    w.item(
        0,
        "Pods Status",
        f"{phases['Running']} Running / {phases['Pending']} Waiting / {phases['Succeeded']} Succeeded / {phases['Failed']} Failed",
    )
    _template(w, rs.spec.template)


async def _service(api: ApiClient, w: Writer, svc: Any) -> None:
    spec = svc.spec
    _map(w, 0, "Selector", dict(spec.selector))
    w.item(0, "Type", spec.type or "ClusterIP")
    w.item(0, "IP", spec.cluster_ip or "None")
    try:
        ep = await api.get("Endpoints", svc.metadata.name, namespace=svc.metadata.namespace)
        addresses = [
            f"{a.ip}:{p.port}" for sub in ep.subsets for a in sub.addresses for p in sub.ports
        ]
    except NotFound:
        addresses = []
    for p in spec.ports:
        target = (
            p.target_port.int_val if p.target_port.HasField("int_val") else p.target_port.str_val
        )
        w.item(0, "Port", f"{p.name or '<unset>'}  {p.port}/{p.protocol or 'TCP'}")
        w.item(0, "TargetPort", f"{target}/{p.protocol or 'TCP'}")
        if p.node_port:
            w.item(0, "NodePort", f"{p.name or '<unset>'}  {p.node_port}/{p.protocol or 'TCP'}")
    w.item(0, "Endpoints", ",".join(addresses) or "<none>")
    w.item(0, "Session Affinity", spec.session_affinity or "None")


async def _node(api: ApiClient, w: Writer, node: Any) -> None:
    spec, st = node.spec, node.status
    taints = [
        f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}" for t in spec.taints
    ]
    w.item(0, "Taints", taints[0] if taints else "<none>")
    for t in taints[1:]:
        w.item(0, "", t)
    w.item(0, "Unschedulable", str(spec.unschedulable).lower())
    _conditions(w, st.conditions, reason=True)
    w.item(0, "Addresses")
    for a in st.addresses:
        w.item(1, a.type, a.address)
    for title, values in (("Capacity", st.capacity), ("Allocatable", st.allocatable)):
        w.item(0, title)
        for k, v in sorted(values.items()):
            w.item(1, k, v)
    info = st.node_info
    w.item(0, "System Info")
    w.item(1, "Operating System", info.operating_system or "<unknown>")
    w.item(1, "Architecture", info.architecture or "<unknown>")
    w.item(1, "Container Runtime Version", info.container_runtime_version or "<unknown>")
    w.item(1, "Kubelet Version", info.kubelet_version or "<unknown>")
    w.item(0, "PodCIDR", spec.pod_cidr or "<none>")
    pods = await api.list_all("Pod", field_selector=f"spec.nodeName={node.metadata.name}")
    running = [p for p in pods.items if p.status.phase not in ("Succeeded", "Failed")]
    w.item(0, "Non-terminated Pods", f"({len(running)} in total)")
    rows = [["Namespace", "Name", "CPU Requests", "Memory Requests", "Age"]]
    now = time.time()
    for p in running:
        cpu = ",".join(c.resources.requests.get("cpu", "0") for c in p.spec.containers)
        mem = ",".join(c.resources.requests.get("memory", "0") for c in p.spec.containers)
        rows.append([p.metadata.namespace, p.metadata.name, cpu, mem, printers.age(p, now)])
    if len(rows) > 1:
        for line in printers.render(rows).splitlines():
            w.row(1, line)


def _generic(w: Writer, obj: Any) -> None:
    doc = printers.manifest(obj)
    for section in ("spec", "data", "status"):
        if section in doc:
            _dump(w, 0, section.capitalize(), doc[section])


def _dump(w: Writer, level: int, key: str, value: Any) -> None:
    if isinstance(value, dict):
        w.item(level, key)
        for k, v in value.items():
            _dump(w, level + 1, k, v)
    elif isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            w.item(level, key, ", ".join(map(str, value)) or "<none>")
        else:
            w.item(level, key)
            for i, v in enumerate(value):
                _dump(w, level + 1, f"[{i}]", v)
    else:
        w.item(level, key, value)


SECTIONS = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Service": _service,
    "Node": _node,
}


async def _events(api: ApiClient, w: Writer, obj: Any, kind: str) -> None:
    ns = obj.metadata.namespace or "default"
    selector = f"involvedObject.kind={kind},involvedObject.name={obj.metadata.name}"
    events = (await api.list_all("events", namespace=ns, field_selector=selector)).items
    if not events:
        w.item(0, "Events", "<none>")
        return
    w.item(0, "Events")
    now = time.time()
    rows = [
        ["Type", "Reason", "Age", "From", "Message"],
        ["----", "------", "----", "----", "-------"],
    ]
    for e in sorted(events, key=printers.event_time):
        age = printers.event_age(e, now)
        rows.append(
            [
                e.type or "Normal",
                e.reason,
                age,
                e.source.component or e.reporting_component,
                e.message.strip(),
            ]
        )
    for line in printers.render(rows).splitlines():
        w.row(1, line)


async def describe_object(api: ApiClient, obj: Any, kind: str) -> str:
    w = Writer()
    _meta(w, obj)
    section = SECTIONS.get(kind)
    if section is not None:
        await section(api, w, obj)
    else:
        _generic(w, obj)
    await _events(api, w, obj, kind)
    return w.text()


@click.command("describe")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-l", "--selector", default="", help="Describe the objects with these labels.")
@session.common_options
def describe(
    args: tuple[str, ...],
    namespace: str,
    all_namespaces: bool,
    selector: str,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Show details of objects and their recent Events: raftsman describe pod web-1."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> bool:
        ok = True
        blocks: list[str] = []
        for request in resources.parse(args):
            info = request.info
            objs: list[Any] = []
            if request.names:
                for name in request.names:
                    try:
                        objs.append(await api.get(info, name, namespace=namespace))
                    except Unreachable:
                        raise
                    except NotFound:
                        click.echo(session.server_error(not_found(info, name)), err=True)
                        ok = False
                    except ApiError as exc:
                        click.echo(session.server_error(exc), err=True)
                        ok = False
            else:
                page = await api.list_all(
                    info, namespace="" if all_namespaces else namespace, label_selector=selector
                )
                objs = sorted(page.items, key=lambda o: (o.metadata.namespace, o.metadata.name))
            for obj in objs:
                blocks.append(await describe_object(api, obj, info.kind))
        if blocks:
            click.echo("\n\n\n".join(blocks))
        return ok

    session.run(options, run)
