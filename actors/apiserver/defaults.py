"""Defaults: the values Kubernetes fills in when a manifest leaves a field out.

The API server applies these before validating and storing an object, so that every
stored object is explicit (a controller never has to know that "no replicas" means one).
The values are Kubernetes' own, from ``pkg/apis/*/v1/defaults.go`` and the
DefaultTolerationSeconds admission plugin; the tables below are the place to look and the
place to change them.

:func:`apply_defaults` is pure: it returns a defaulted copy and leaves its argument alone.
It is idempotent (defaulting a defaulted object changes nothing) and never overrides a value
the author set, including an explicit zero for the ``optional`` fields (``replicas: 0``).
Status is never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from proto.k8s import apps_pb2, batch_pb2, core_pb2, kinds, meta_pb2

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TOLERATION_SECONDS",
    "apply_defaults",
    "configure_default_tolerations",
    "default_pod_spec",
]

M = TypeVar("M", bound=Message)

DEFAULT_NAMESPACE = "default"
DEFAULT_TOLERATION_SECONDS = 300
# The taints a node controller puts on nodes that stop reporting; every pod tolerates them
# for five minutes before it is evicted.
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

_toleration_seconds = {
    NOT_READY_TAINT: DEFAULT_TOLERATION_SECONDS,
    UNREACHABLE_TAINT: DEFAULT_TOLERATION_SECONDS,
}


def configure_default_tolerations(*, not_ready: int, unreachable: int) -> None:
    """Set the tolerationSeconds new pods get for the not-ready / unreachable taints
    (Kubernetes' ``--default-not-ready-toleration-seconds`` and
    ``--default-unreachable-toleration-seconds``; 300 each). Process-wide: one API
    server per process."""
    for name, value in (("not_ready", not_ready), ("unreachable", unreachable)):
        if value < 0:
            raise ValueError(f"{name} toleration seconds must be >= 0, not {value}")
    _toleration_seconds[NOT_READY_TAINT] = not_ready
    _toleration_seconds[UNREACHABLE_TAINT] = unreachable


_PROBE = {
    "period_seconds": 10,
    "timeout_seconds": 1,
    "success_threshold": 1,
    "failure_threshold": 3,
}
_DEFAULT_MODE = 0o644  # configMap and secret volumes


def apply_defaults(obj: M) -> M:
    """A copy of ``obj`` with Kubernetes' defaults filled in (see the module doc)."""
    out = type(obj)()
    out.CopyFrom(obj)
    info = kinds.by_message(out)
    if not out.api_version:
        out.api_version = info.api_version
    if not out.kind:
        out.kind = info.kind
    if info.namespaced and not out.metadata.namespace:
        out.metadata.namespace = DEFAULT_NAMESPACE
    defaulter = _BY_KIND.get(info.kind)
    if defaulter is not None:
        defaulter(out)
    return out


# ---------------------------------------------------------------------------------------
# Pods


def default_pod_spec(spec: core_pb2.PodSpec, *, restart_policy: bool = True) -> None:
    """Fill in a pod spec in place (a Pod's, or a template's inside a workload).

    ``restart_policy=False`` leaves ``restartPolicy`` alone: Kubernetes does not default it
    in a Job's template, where ``Always`` is not allowed and the author must choose.
    """
    if restart_policy and not spec.restart_policy:
        spec.restart_policy = "Always"
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = 30
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.scheduler_name:
        spec.scheduler_name = "default-scheduler"
    for container in (*spec.init_containers, *spec.containers):
        _default_container(container)
    for volume in spec.volumes:
        _default_volume(volume)


def _default_container(c: core_pb2.Container) -> None:
    if not c.image_pull_policy:
        c.image_pull_policy = "Always" if _latest(c.image) else "IfNotPresent"
    if not c.termination_message_path:
        c.termination_message_path = "/dev/termination-log"
    if not c.termination_message_policy:
        c.termination_message_policy = "File"
    for port in c.ports:
        if not port.protocol:
            port.protocol = "TCP"
    for env in c.env:
        if env.value_from.HasField("field_ref") and not env.value_from.field_ref.api_version:
            env.value_from.field_ref.api_version = "v1"
    for name in ("liveness_probe", "readiness_probe", "startup_probe"):
        if c.HasField(name):
            _default_probe(getattr(c, name))
    if c.HasField("lifecycle"):
        for handler in (c.lifecycle.post_start, c.lifecycle.pre_stop):
            if handler.HasField("http_get"):
                _default_http_get(handler.http_get)


def _latest(image: str) -> bool:
    """Whether an image reference means "whatever is newest": no tag, or ``:latest``."""
    if "@" in image:  # pinned by digest
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.rsplit(":", 1)[1] == "latest"


def _default_probe(probe: core_pb2.Probe) -> None:
    for name, value in _PROBE.items():
        if not getattr(probe, name):
            setattr(probe, name, value)
    if probe.HasField("http_get"):
        _default_http_get(probe.http_get)


def _default_http_get(action: core_pb2.HTTPGetAction) -> None:
    if not action.path:
        action.path = "/"
    if not action.scheme:
        action.scheme = "HTTP"


def _default_volume(volume: core_pb2.Volume) -> None:
    if volume.HasField("config_map") and not volume.config_map.HasField("default_mode"):
        volume.config_map.default_mode = _DEFAULT_MODE
    if volume.HasField("secret") and not volume.secret.HasField("default_mode"):
        volume.secret.default_mode = _DEFAULT_MODE
    if volume.HasField("host_path") and not volume.host_path.HasField("type"):
        volume.host_path.type = ""


def _default_tolerations(tolerations: Any) -> None:
    existing = list(tolerations)
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if any(_tolerates_no_execute(t, key) for t in existing):
            continue
        tolerations.add(
            key=key,
            operator="Exists",
            effect="NoExecute",
            toleration_seconds=_toleration_seconds[key],
        )


def _tolerates_no_execute(t: core_pb2.Toleration, key: str) -> bool:
    if t.effect not in ("", "NoExecute"):
        return False
    return t.key == key or (t.key == "" and t.operator == "Exists")


def _default_pod(pod: core_pb2.Pod) -> None:
    default_pod_spec(pod.spec)
    # Admission (DefaultTolerationSeconds) adds these to pods only, never to templates.
    _default_tolerations(pod.spec.tolerations)


# ---------------------------------------------------------------------------------------
# Services and the rest of core/v1


def _default_service(svc: core_pb2.Service) -> None:
    spec = svc.spec
    if not spec.type:
        spec.type = "ClusterIP"
    if not spec.session_affinity:
        spec.session_affinity = "None"
    for port in spec.ports:
        if not port.protocol:
            port.protocol = "TCP"
        if port.target_port.WhichOneof("value") is None or (
            port.target_port.WhichOneof("value") == "int_val" and port.target_port.int_val == 0
        ):
            port.target_port.int_val = port.port
    if spec.type in ("NodePort", "LoadBalancer") and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    if spec.type != "ExternalName" and not spec.internal_traffic_policy:
        spec.internal_traffic_policy = "Cluster"


def _default_secret(secret: core_pb2.Secret) -> None:
    if not secret.type:
        secret.type = "Opaque"


def _default_endpoints(ep: core_pb2.Endpoints) -> None:
    for subset in ep.subsets:
        for port in subset.ports:
            if not port.protocol:
                port.protocol = "TCP"


def _default_node(node: core_pb2.Node) -> None:
    if node.HasField("status") and not node.status.allocatable:
        node.status.allocatable.update(node.status.capacity)


def _default_namespace(ns: core_pb2.Namespace) -> None:
    # Kubernetes also labels every namespace with its own name.
    if ns.metadata.name:
        ns.metadata.labels.setdefault("kubernetes.io/metadata.name", ns.metadata.name)


# ---------------------------------------------------------------------------------------
# Workloads


def _default_rolling(update: Message, *, surge: int | str, unavailable: int | str) -> None:
    for field, value in (("max_surge", surge), ("max_unavailable", unavailable)):
        target: meta_pb2.IntOrString = getattr(update, field)
        if target.WhichOneof("value") is None:
            if isinstance(value, int):
                target.int_val = value
            else:
                target.str_val = value


def _default_deployment(d: apps_pb2.Deployment) -> None:
    spec = d.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    if not spec.strategy.type:
        spec.strategy.type = "RollingUpdate"
    if spec.strategy.type == "RollingUpdate":
        _default_rolling(spec.strategy.rolling_update, surge="25%", unavailable="25%")
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    if not spec.HasField("progress_deadline_seconds"):
        spec.progress_deadline_seconds = 600
    default_pod_spec(spec.template.spec)


def _default_replica_set(rs: apps_pb2.ReplicaSet) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    default_pod_spec(rs.spec.template.spec)


def _default_daemon_set(ds: apps_pb2.DaemonSet) -> None:
    spec = ds.spec
    if not spec.update_strategy.type:
        spec.update_strategy.type = "RollingUpdate"
    if spec.update_strategy.type == "RollingUpdate":
        _default_rolling(spec.update_strategy.rolling_update, surge=0, unavailable=1)
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    default_pod_spec(spec.template.spec)


def _default_job_spec(spec: batch_pb2.JobSpec) -> None:
    if not spec.HasField("completions") and not spec.HasField("parallelism"):
        spec.completions = 1
        spec.parallelism = 1
    elif not spec.HasField("parallelism"):
        spec.parallelism = 1
    if not spec.HasField("backoff_limit"):
        spec.backoff_limit = 6
    if not spec.HasField("completion_mode"):
        spec.completion_mode = "NonIndexed"
    if not spec.HasField("suspend"):
        spec.suspend = False
    default_pod_spec(spec.template.spec, restart_policy=False)


JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


def _default_job(job: batch_pb2.Job) -> None:
    _default_job_spec(job.spec)
    if not job.spec.manual_selector and job.metadata.uid:
        _generate_job_selector(job)


def _generate_job_selector(job: batch_pb2.Job) -> None:
    """Kubernetes' generateSelector: the pod template is labelled with the Job's name and
    uid, and the selector picks the uid, so a Job's pods are only ever its own. Labels the
    author set are kept (a conflict then fails validation); idempotent on update."""
    labels = job.spec.template.metadata.labels
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, job.metadata.name)
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, job.metadata.uid)
    job.spec.selector.match_labels.setdefault(CONTROLLER_UID_LABELS[1], job.metadata.uid)


def _default_cron_job(cj: batch_pb2.CronJob) -> None:
    spec = cj.spec
    if not spec.concurrency_policy:
        spec.concurrency_policy = "Allow"
    if not spec.HasField("suspend"):
        spec.suspend = False
    if not spec.HasField("successful_jobs_history_limit"):
        spec.successful_jobs_history_limit = 3
    if not spec.HasField("failed_jobs_history_limit"):
        spec.failed_jobs_history_limit = 1
    _default_job_spec(spec.job_template.spec)


_BY_KIND: dict[str, Callable[[Any], None]] = {
    "Pod": _default_pod,
    "Service": _default_service,
    "Secret": _default_secret,
    "Endpoints": _default_endpoints,
    "Node": _default_node,
    "Namespace": _default_namespace,
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replica_set,
    "DaemonSet": _default_daemon_set,
    "Job": _default_job,
    "CronJob": _default_cron_job,
}
