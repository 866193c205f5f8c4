"""Validation: is this object acceptable, and if not, exactly which fields are wrong.

The API server calls :func:`validate` after :func:`~actors.apiserver.defaults.apply_defaults`
and before storing, on creates (``old=None``) and updates (``old`` = the stored object).
The rules and messages follow Kubernetes' ``pkg/apis/*/validation`` so that a manifest
Kubernetes rejects is rejected here with the same field path, and the message reads the
same (``spec.containers[0].ports[0].containerPort: must be between 1 and 65535,
inclusive``). Undefaulted objects are accepted too: a field that has a default may be empty.

Guarantees: :func:`validate` is pure, never raises for any message of a kind in the table
(whatever its field values), and returns every error it finds, in field order, not just the
first. Rules are grouped per kind; each kind's checker is one row in ``_BY_KIND``.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from google.protobuf.message import Message

from actors.apiserver import quantity
from proto.k8s import apps_pb2, batch_pb2, coordination_pb2, core_pb2, kinds, meta_pb2

__all__ = [
    "MAX_ANNOTATIONS_BYTES",
    "MAX_DATA_BYTES",
    "MAX_OBJECT_BYTES",
    "ErrorType",
    "FieldError",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "selector_matches",
    "validate",
]

MAX_OBJECT_BYTES = 1024 * 1024  # serialized; the store takes ~1.5 MiB per request
MAX_DATA_BYTES = 1024 * 1024  # a ConfigMap's or Secret's data, as Kubernetes
MAX_ANNOTATIONS_BYTES = 256 * 1024


class ErrorType(enum.Enum):
    REQUIRED = "Required value"
    INVALID = "Invalid value"
    DUPLICATE = "Duplicate value"
    NOT_SUPPORTED = "Unsupported value"
    NOT_FOUND = "Not found"
    FORBIDDEN = "Forbidden"
    TOO_LONG = "Too long"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field. ``str()`` gives ``"<path>: <message>"``."""

    path: str
    type: ErrorType
    detail: str = ""
    value: Any = None

    @property
    def message(self) -> str:
        t = self.type
        if t is ErrorType.INVALID:
            return self.detail
        if t in (ErrorType.DUPLICATE, ErrorType.NOT_FOUND):
            text = f"{t.value}: {_show(self.value)}"
        elif t is ErrorType.NOT_SUPPORTED:
            text = f"{t.value}: {_show(self.value)}"
        else:
            text = t.value
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


# ---------------------------------------------------------------------------------------
# Name syntax (k8s.io/apimachinery/pkg/util/validation)

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL)
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")
_HTTP_HEADER_NAME = re.compile(r"[-A-Za-z0-9]+")
_PERCENT = re.compile(r"[0-9]+%")

_MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', "
    f"regex used for validation is '{_LABEL}')"
)
_MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_LABEL}(\\.{_LABEL})*')"
)
_MSG_DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_MSG_QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or "
    "'my_value', or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_MSG_ENV = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
    "'-', or '.', and must not start with a digit (e.g. 'my.env-name', or 'MY_ENV.NAME', or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
_MSG_CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name', or 'KEY_NAME', or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value) is not None


def is_qualified_name(value: str) -> bool:
    """A label or annotation key: ``[prefix/]name``, prefix a DNS subdomain."""
    return not _qualified_name_problems(value)


def _qualified_name_problems(value: str) -> list[str]:
    if value.count("/") > 1:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    prefix, slash, name = value.rpartition("/")
    problems = []
    if slash and not prefix:
        problems.append("prefix part must be non-empty")
    elif slash and not is_dns1123_subdomain(prefix):
        problems.append(f"prefix part {_MSG_SUBDOMAIN}")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif _QUALIFIED_NAME.fullmatch(name) is None:
        problems.append(_MSG_QUALIFIED)
    return problems


def _iana_svc_name_problem(value: str) -> str | None:
    if len(value) > 15:
        return "must be no more than 15 characters"
    if _IANA_SVC_NAME.fullmatch(value) is None:
        return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    if "--" in value:
        return "must not contain consecutive hyphens"
    if not any(c.isalpha() for c in value):
        return "must contain at least one letter (a-z)"
    if value.startswith("-") or value.endswith("-"):
        return "must not begin or end with a hyphen"
    return None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def selector_matches(selector: meta_pb2.LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector`` (an empty selector matches everything).

    Unknown operators match nothing, so that an invalid selector never selects by accident.
    """
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In":
            ok = present and labels[req.key] in req.values
        elif req.operator == "NotIn":
            ok = not present or labels[req.key] not in req.values
        elif req.operator == "Exists":
            ok = present
        elif req.operator == "DoesNotExist":
            ok = not present
        else:
            ok = False
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------------------------
# The collector


class _V:
    """Collects errors; each method checks one kind of rule at one path."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, type: ErrorType, detail: str = "", value: Any = None) -> None:
        self.errors.append(FieldError(path, type, detail, value))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add(path, ErrorType.INVALID, detail, value)

    def required(self, path: str, detail: str = "") -> None:
        self.add(path, ErrorType.REQUIRED, detail)

    def forbidden(self, path: str, detail: str) -> None:
        self.add(path, ErrorType.FORBIDDEN, detail)

    def supported(self, path: str, value: str, allowed: Sequence[str], *, empty: bool) -> None:
        """``value`` must be one of ``allowed`` (or ``""`` when ``empty``)."""
        if value in allowed or (empty and value == ""):
            return
        if value == "":
            self.required(path, "supported values: " + ", ".join(f'"{a}"' for a in allowed))
        else:
            listed = ", ".join(f'"{a}"' for a in allowed)
            self.add(path, ErrorType.NOT_SUPPORTED, f"supported values: {listed}", value)

    def immutable(self, path: str, value: Any) -> None:
        self.invalid(path, value, "field is immutable")

    # -- names and numbers ---------------------------------------------------------------

    def dns_label(self, path: str, value: str) -> None:
        if len(value) > 63:
            self.invalid(path, value, "must be no more than 63 characters")
        elif not _DNS1123_LABEL.fullmatch(value):
            self.invalid(path, value, _MSG_LABEL)

    def dns_subdomain(self, path: str, value: str) -> None:
        if len(value) > 253:
            self.invalid(path, value, "must be no more than 253 characters")
        elif not _DNS1123_SUBDOMAIN.fullmatch(value):
            self.invalid(path, value, _MSG_SUBDOMAIN)

    def dns1035_label(self, path: str, value: str) -> None:
        if len(value) > 63:
            self.invalid(path, value, "must be no more than 63 characters")
        elif not _DNS1035_LABEL.fullmatch(value):
            self.invalid(path, value, _MSG_DNS1035)

    def qualified_name(self, path: str, value: str) -> None:
        for problem in _qualified_name_problems(value):
            self.invalid(path, value, problem)

    def label_value(self, path: str, value: str) -> None:
        if len(value) > 63:
            self.invalid(path, value, "must be no more than 63 characters")
        elif value and not _QUALIFIED_NAME.fullmatch(value):
            self.invalid(path, value, _MSG_LABEL_VALUE)

    def labels(self, path: str, labels: Mapping[str, str]) -> None:
        for key in sorted(labels):
            self.qualified_name(path, key)
            self.label_value(path, labels[key])

    def non_negative(self, path: str, value: int) -> None:
        if value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def port(self, path: str, value: int) -> None:
        if not 1 <= value <= 65535:
            self.invalid(path, value, "must be between 1 and 65535, inclusive")

    def int_or_string_port(self, path: str, port: meta_pb2.IntOrString) -> None:
        which = port.WhichOneof("value")
        if which is None:
            self.required(path)
        elif which == "int_val":
            self.port(path, port.int_val)
        else:
            problem = _iana_svc_name_problem(port.str_val)
            if problem:
                self.invalid(path, port.str_val, problem)

    def quantity(self, path: str, value: str) -> None:
        try:
            parsed = quantity.parse_quantity(value)
        except quantity.QuantityError as e:
            self.invalid(path, value, str(e))
            return
        if parsed < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def selector(self, path: str, selector: meta_pb2.LabelSelector) -> None:
        self.labels(f"{path}.matchLabels", selector.match_labels)
        for i, req in enumerate(selector.match_expressions):
            p = f"{path}.matchExpressions[{i}]"
            self.qualified_name(f"{p}.key", req.key)
            if req.operator in ("In", "NotIn"):
                if not req.values:
                    self.required(
                        f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
            elif req.operator in ("Exists", "DoesNotExist"):
                if req.values:
                    self.forbidden(
                        f"{p}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
            else:
                self.supported(
                    f"{p}.operator",
                    req.operator,
                    ["In", "NotIn", "Exists", "DoesNotExist"],
                    empty=False,
                )
            for j, value in enumerate(req.values):
                self.label_value(f"{p}.values[{j}]", value)


# ---------------------------------------------------------------------------------------
# Entry point


def validate(obj: Message, *, old: Message | None = None) -> list[FieldError]:
    """Every problem with ``obj``; with ``old``, also with ``obj`` as an update of ``old``.

    An empty list means the object may be stored.
    """
    v = _V()
    try:
        info = kinds.by_message(obj)
    except kinds.UnknownKind as e:
        return [FieldError("kind", ErrorType.NOT_SUPPORTED, str(e), obj.DESCRIPTOR.full_name)]
    size = obj.ByteSize()
    if size > MAX_OBJECT_BYTES:
        v.add(
            "",
            ErrorType.TOO_LONG,
            f"object is {size} bytes, must have at most {MAX_OBJECT_BYTES} bytes",
        )
    if obj.api_version and obj.api_version != info.api_version:
        v.supported("apiVersion", obj.api_version, [info.api_version], empty=True)
    if obj.kind and obj.kind != info.kind:
        v.supported("kind", obj.kind, [info.kind], empty=True)
    _metadata(v, obj.metadata, info)
    check = _BY_KIND.get(info.kind)
    if check is not None:
        check(v, obj)
    if old is not None:
        if type(old) is not type(obj):
            v.invalid("kind", obj.kind, f"may not change the kind of an object (was {old.kind})")
        else:
            _metadata_update(v, obj.metadata, old.metadata)
            update = _UPDATES.get(info.kind)
            if update is not None:
                update(v, obj, old)
    return v.errors


# ---------------------------------------------------------------------------------------
# Metadata

# Kinds whose names must be DNS labels (they become DNS names or path segments).
_NAME_CHECKS: Mapping[str, Callable[[_V, str, str], None]] = {
    "Namespace": _V.dns_label,
    "Service": _V.dns1035_label,
}


def _metadata(v: _V, meta: meta_pb2.ObjectMeta, info: kinds.KindInfo) -> None:
    if not meta.name and not meta.generate_name:
        v.required("metadata.name", "name or generateName is required")
    if meta.name:
        _NAME_CHECKS.get(info.kind, _V.dns_subdomain)(v, "metadata.name", meta.name)
    if meta.generate_name:
        prefix = meta.generate_name.rstrip("-") or meta.generate_name
        if not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            v.invalid("metadata.generateName", meta.generate_name, _MSG_SUBDOMAIN)
    if info.namespaced:
        if meta.namespace:
            v.dns_label("metadata.namespace", meta.namespace)
    elif meta.namespace:
        v.forbidden("metadata.namespace", "not allowed on this type")
    v.labels("metadata.labels", meta.labels)
    total = 0
    for key in sorted(meta.annotations):
        v.qualified_name("metadata.annotations", key.lower())
        total += len(key) + len(meta.annotations[key].encode())
    if total > MAX_ANNOTATIONS_BYTES:
        v.add(
            "metadata.annotations",
            ErrorType.TOO_LONG,
            f"must have at most {MAX_ANNOTATIONS_BYTES} bytes",
        )
    if meta.generation < 0:
        v.non_negative("metadata.generation", meta.generation)
    controllers = 0
    for i, ref in enumerate(meta.owner_references):
        p = f"metadata.ownerReferences[{i}]"
        for field, value in (("apiVersion", ref.api_version), ("kind", ref.kind)):
            if not value:
                v.invalid(f"{p}.{field}", value, f"{field} must not be empty")
        if not ref.name:
            v.invalid(f"{p}.name", ref.name, "name must not be empty")
        if not ref.uid:
            v.invalid(f"{p}.uid", ref.uid, "uid must not be empty")
        controllers += bool(ref.controller)
    if controllers > 1:
        v.invalid(
            "metadata.ownerReferences",
            controllers,
            "Only one reference can have Controller set to true",
        )
    for i, finalizer in enumerate(meta.finalizers):
        v.qualified_name(f"metadata.finalizers[{i}]", finalizer)


def _metadata_update(v: _V, new: meta_pb2.ObjectMeta, old: meta_pb2.ObjectMeta) -> None:
    if new.name != old.name:
        v.immutable("metadata.name", new.name)
    if new.namespace != old.namespace:
        v.immutable("metadata.namespace", new.namespace)
    if old.uid and new.uid and new.uid != old.uid:
        v.immutable("metadata.uid", new.uid)
    if old.HasField("creation_timestamp") and new.HasField("creation_timestamp"):
        if new.creation_timestamp != old.creation_timestamp:
            v.immutable("metadata.creationTimestamp", new.creation_timestamp.ToJsonString())


# ---------------------------------------------------------------------------------------
# Pods

_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_PROTOCOLS = ["TCP", "UDP", "SCTP"]
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_HOST_PATH_TYPES = [
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
]
_NODE_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]


def _pod_spec(v: _V, spec: core_pb2.PodSpec, p: str, *, restart_policies: Sequence[str]) -> None:
    volumes = _volumes(v, spec.volumes, f"{p}.volumes")
    names: set[str] = set()
    if not spec.containers:
        v.required(f"{p}.containers")
    for i, c in enumerate(spec.init_containers):
        _container(v, c, f"{p}.initContainers[{i}]", volumes, names, init=True)
    for i, c in enumerate(spec.containers):
        _container(v, c, f"{p}.containers[{i}]", volumes, names, init=False)
    # Empty means Always (the default) where Always is allowed; a Job must choose.
    empty = "Always" in restart_policies
    v.supported(f"{p}.restartPolicy", spec.restart_policy, restart_policies, empty=empty)
    if spec.HasField("termination_grace_period_seconds"):
        v.non_negative(f"{p}.terminationGracePeriodSeconds", spec.termination_grace_period_seconds)
    if (
        spec.HasField("active_deadline_seconds")
        and not 1 <= spec.active_deadline_seconds <= 2**31 - 1
    ):
        v.invalid(
            f"{p}.activeDeadlineSeconds",
            spec.active_deadline_seconds,
            "must be between 1 and 2147483647, inclusive",
        )
    v.supported(f"{p}.dnsPolicy", spec.dns_policy, _DNS_POLICIES, empty=True)
    v.labels(f"{p}.nodeSelector", spec.node_selector)
    if spec.node_name:
        v.dns_subdomain(f"{p}.nodeName", spec.node_name)
    if spec.hostname:
        v.dns_label(f"{p}.hostname", spec.hostname)
    if spec.subdomain:
        v.dns_label(f"{p}.subdomain", spec.subdomain)
    if spec.service_account_name:
        v.dns_subdomain(f"{p}.serviceAccountName", spec.service_account_name)
    for i, t in enumerate(spec.tolerations):
        _toleration(v, t, f"{p}.tolerations[{i}]")
    if spec.HasField("affinity"):
        _affinity(v, spec.affinity, f"{p}.affinity")


def _volumes(v: _V, volumes: Iterable[core_pb2.Volume], p: str) -> set[str]:
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        vp = f"{p}[{i}]"
        if not vol.name:
            v.required(f"{vp}.name")
        else:
            v.dns_label(f"{vp}.name", vol.name)
            if vol.name in names:
                v.add(f"{vp}.name", ErrorType.DUPLICATE, value=vol.name)
            names.add(vol.name)
        sources = [s for s in ("empty_dir", "config_map", "secret", "host_path") if vol.HasField(s)]
        if not sources:
            v.required(vp, "must specify a volume type")
        elif len(sources) > 1:
            v.forbidden(vp, "may not specify more than 1 volume type")
        if vol.HasField("empty_dir"):
            ed = vol.empty_dir
            v.supported(f"{vp}.emptyDir.medium", ed.medium, ["Memory"], empty=True)
            if ed.size_limit:
                v.quantity(f"{vp}.emptyDir.sizeLimit", ed.size_limit)
        if vol.HasField("config_map"):
            cm = vol.config_map
            if not cm.name:
                v.required(f"{vp}.configMap.name")
            _key_to_paths(v, cm.items, f"{vp}.configMap.items")
            if cm.HasField("default_mode"):
                _file_mode(v, f"{vp}.configMap.defaultMode", cm.default_mode)
        if vol.HasField("secret"):
            sec = vol.secret
            if not sec.secret_name:
                v.required(f"{vp}.secret.secretName")
            _key_to_paths(v, sec.items, f"{vp}.secret.items")
            if sec.HasField("default_mode"):
                _file_mode(v, f"{vp}.secret.defaultMode", sec.default_mode)
        if vol.HasField("host_path"):
            hp = vol.host_path
            if not hp.path:
                v.required(f"{vp}.hostPath.path")
            v.supported(f"{vp}.hostPath.type", hp.type, _HOST_PATH_TYPES[1:], empty=True)
    return names


def _file_mode(v: _V, path: str, mode: int) -> None:
    if not 0 <= mode <= 0o777:
        v.invalid(path, mode, "must be a number between 0 and 0777 (octal), both inclusive")


def _relative_path(v: _V, path: str, value: str) -> None:
    if value.startswith("/"):
        v.invalid(path, value, "must be a relative path")
    if ".." in value.split("/"):
        v.invalid(path, value, "must not contain '..'")


def _key_to_paths(v: _V, items: Iterable[core_pb2.KeyToPath], p: str) -> None:
    for i, item in enumerate(items):
        if not item.key:
            v.required(f"{p}[{i}].key")
        if not item.path:
            v.required(f"{p}[{i}].path")
        else:
            _relative_path(v, f"{p}[{i}].path", item.path)
        if item.HasField("mode"):
            _file_mode(v, f"{p}[{i}].mode", item.mode)


def _container(
    v: _V,
    c: core_pb2.Container,
    p: str,
    volumes: set[str],
    names: set[str],
    *,
    init: bool,
) -> None:
    if not c.name:
        v.required(f"{p}.name")
    else:
        v.dns_label(f"{p}.name", c.name)
        if c.name in names:
            v.add(f"{p}.name", ErrorType.DUPLICATE, value=c.name)
        names.add(c.name)
    if not c.image:
        v.required(f"{p}.image")
    elif c.image != c.image.strip():
        v.invalid(f"{p}.image", c.image, "must not have leading or trailing whitespace")
    v.supported(f"{p}.imagePullPolicy", c.image_pull_policy, _PULL_POLICIES, empty=True)
    v.supported(
        f"{p}.terminationMessagePolicy",
        c.termination_message_policy,
        ["File", "FallbackToLogsOnError"],
        empty=True,
    )
    sidecar = init and c.restart_policy == "Always"
    if init:
        v.supported(f"{p}.restartPolicy", c.restart_policy, ["Always"], empty=True)
    elif c.restart_policy:
        v.forbidden(f"{p}.restartPolicy", "may not be set for non-init containers")
    _ports(v, c.ports, f"{p}.ports")
    _env(v, c, p)
    _resources(v, c.resources, f"{p}.resources")
    mount_paths: set[str] = set()
    for i, m in enumerate(c.volume_mounts):
        mp = f"{p}.volumeMounts[{i}]"
        if not m.name:
            v.required(f"{mp}.name")
        elif m.name not in volumes:
            v.add(f"{mp}.name", ErrorType.NOT_FOUND, value=m.name)
        if not m.mount_path:
            v.required(f"{mp}.mountPath")
        elif m.mount_path in mount_paths:
            v.invalid(f"{mp}.mountPath", m.mount_path, "must be unique")
        mount_paths.add(m.mount_path)
        if m.sub_path:
            _relative_path(v, f"{mp}.subPath", m.sub_path)
    for field, json_name in (
        ("liveness_probe", "livenessProbe"),
        ("readiness_probe", "readinessProbe"),
        ("startup_probe", "startupProbe"),
    ):
        if not c.HasField(field):
            continue
        if init and not sidecar:
            v.forbidden(
                f"{p}.{json_name}",
                "may not be set for init containers without restartPolicy=Always",
            )
            continue
        _probe(v, getattr(c, field), f"{p}.{json_name}", single_success=field != "readiness_probe")
    if c.HasField("lifecycle"):
        if init and not sidecar:
            v.forbidden(
                f"{p}.lifecycle", "may not be set for init containers without restartPolicy=Always"
            )
        for field, json_name in (("post_start", "postStart"), ("pre_stop", "preStop")):
            if c.lifecycle.HasField(field):
                _handler(v, getattr(c.lifecycle, field), f"{p}.lifecycle.{json_name}", sleep=True)


def _ports(v: _V, ports: Iterable[core_pb2.ContainerPort], p: str) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        pp = f"{p}[{i}]"
        if port.name:
            problem = _iana_svc_name_problem(port.name)
            if problem:
                v.invalid(f"{pp}.name", port.name, problem)
            elif port.name in names:
                v.add(f"{pp}.name", ErrorType.DUPLICATE, value=port.name)
            names.add(port.name)
        if port.container_port == 0:
            v.required(f"{pp}.containerPort")
        else:
            v.port(f"{pp}.containerPort", port.container_port)
        if port.host_port:
            v.port(f"{pp}.hostPort", port.host_port)
        v.supported(f"{pp}.protocol", port.protocol, _PROTOCOLS, empty=True)
        if port.host_ip and not _is_ip(port.host_ip):
            v.invalid(f"{pp}.hostIP", port.host_ip, "must be a valid IP address")


def _env(v: _V, c: core_pb2.Container, p: str) -> None:
    for i, env in enumerate(c.env):
        ep = f"{p}.env[{i}]"
        if not env.name:
            v.required(f"{ep}.name")
        elif not _ENV_VAR_NAME.fullmatch(env.name):
            v.invalid(f"{ep}.name", env.name, _MSG_ENV)
        if not env.HasField("value_from"):
            continue
        vf = env.value_from
        sources = [
            s
            for s in ("config_map_key_ref", "secret_key_ref", "field_ref", "resource_field_ref")
            if vf.HasField(s)
        ]
        if env.value:
            v.invalid(f"{ep}.valueFrom", "", "may not be specified when `value` is not empty")
        if not sources:
            v.invalid(
                f"{ep}.valueFrom",
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )
        elif len(sources) > 1:
            v.invalid(f"{ep}.valueFrom", "", "may not have more than one field specified at a time")
        for field, json_name in (
            ("config_map_key_ref", "configMapKeyRef"),
            ("secret_key_ref", "secretKeyRef"),
        ):
            if vf.HasField(field):
                ref = getattr(vf, field)
                if not ref.name:
                    v.required(f"{ep}.valueFrom.{json_name}.name")
                if not ref.key:
                    v.required(f"{ep}.valueFrom.{json_name}.key")
                elif not _CONFIG_KEY.fullmatch(ref.key):
                    v.invalid(f"{ep}.valueFrom.{json_name}.key", ref.key, _MSG_CONFIG_KEY)
        if vf.HasField("field_ref") and not vf.field_ref.field_path:
            v.required(f"{ep}.valueFrom.fieldRef.fieldPath")
        if vf.HasField("resource_field_ref") and not vf.resource_field_ref.resource:
            v.required(f"{ep}.valueFrom.resourceFieldRef.resource")
    for i, src in enumerate(c.env_from):
        sp = f"{p}.envFrom[{i}]"
        count = src.HasField("config_map_ref") + src.HasField("secret_ref")
        if count != 1:
            v.invalid(sp, "", "must specify one of: `configMapRef` or `secretRef`")
        if src.prefix and not _ENV_VAR_NAME.fullmatch(src.prefix):
            v.invalid(f"{sp}.prefix", src.prefix, _MSG_ENV)
        if src.HasField("config_map_ref") and not src.config_map_ref.name:
            v.required(f"{sp}.configMapRef.name")
        if src.HasField("secret_ref") and not src.secret_ref.name:
            v.required(f"{sp}.secretRef.name")


def _resources(v: _V, r: core_pb2.ResourceRequirements, p: str) -> None:
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for field in ("limits", "requests"):
        values = getattr(r, field)
        for name in sorted(values):
            path = f"{p}.{field}[{name}]"
            v.qualified_name(path, name)
            before = len(v.errors)
            v.quantity(path, values[name])
            if len(v.errors) == before:
                parsed[field][name] = quantity.parse_quantity(values[name])
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            v.invalid(
                f"{p}.requests",
                r.requests[name],
                f"must be less than or equal to {name} limit of {r.limits[name]}",
            )


def _probe(v: _V, probe: core_pb2.Probe, p: str, *, single_success: bool) -> None:
    _handler(v, probe, p, sleep=False)
    for field, json_name in (
        ("initial_delay_seconds", "initialDelaySeconds"),
        ("timeout_seconds", "timeoutSeconds"),
        ("period_seconds", "periodSeconds"),
        ("success_threshold", "successThreshold"),
        ("failure_threshold", "failureThreshold"),
    ):
        v.non_negative(f"{p}.{json_name}", getattr(probe, field))
    if single_success and probe.success_threshold not in (0, 1):
        v.invalid(f"{p}.successThreshold", probe.success_threshold, "must be 1")
    if (
        probe.HasField("termination_grace_period_seconds")
        and probe.termination_grace_period_seconds <= 0
    ):
        v.invalid(
            f"{p}.terminationGracePeriodSeconds",
            probe.termination_grace_period_seconds,
            "must be greater than 0",
        )


def _handler(v: _V, h: Any, p: str, *, sleep: bool) -> None:
    kinds_set = ["exec", "http_get", "tcp_socket"] + (["sleep"] if sleep else [])
    present = [k for k in kinds_set if h.HasField(k)]
    if not present:
        v.required(p, "must specify a handler type")
    elif len(present) > 1:
        v.forbidden(p, "may not specify more than 1 handler type")
    if h.HasField("exec") and not h.exec.command:
        v.required(f"{p}.exec.command")
    if h.HasField("http_get"):
        hg = h.http_get
        v.int_or_string_port(f"{p}.httpGet.port", hg.port)
        v.supported(f"{p}.httpGet.scheme", hg.scheme, ["HTTP", "HTTPS"], empty=True)
        for i, header in enumerate(hg.http_headers):
            if not _HTTP_HEADER_NAME.fullmatch(header.name):
                v.invalid(
                    f"{p}.httpGet.httpHeaders[{i}].name",
                    header.name,
                    "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
                )
    if h.HasField("tcp_socket"):
        v.int_or_string_port(f"{p}.tcpSocket.port", h.tcp_socket.port)
    if sleep and h.HasField("sleep") and h.sleep.seconds < 0:
        v.non_negative(f"{p}.sleep.seconds", h.sleep.seconds)


def _toleration(v: _V, t: core_pb2.Toleration, p: str) -> None:
    if t.key:
        v.qualified_name(f"{p}.key", t.key)
    elif t.operator != "Exists":
        v.invalid(
            f"{p}.operator",
            t.operator,
            'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        )
    if t.operator == "Exists" and t.value:
        v.invalid(f"{p}.operator", t.value, "value must be empty when `operator` is 'Exists'")
    elif t.operator in ("", "Equal"):
        v.label_value(f"{p}.value", t.value)
    else:
        v.supported(f"{p}.operator", t.operator, ["Equal", "Exists"], empty=True)
    if t.HasField("toleration_seconds") and t.effect != "NoExecute":
        v.invalid(
            f"{p}.effect", t.effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"
        )
    v.supported(f"{p}.effect", t.effect, _TAINT_EFFECTS, empty=True)


def _node_selector_term(v: _V, term: core_pb2.NodeSelectorTerm, p: str) -> None:
    for i, req in enumerate(term.match_expressions):
        rp = f"{p}.matchExpressions[{i}]"
        v.qualified_name(f"{rp}.key", req.key)
        _node_requirement(v, req, rp)
    for i, req in enumerate(term.match_fields):
        rp = f"{p}.matchFields[{i}]"
        v.supported(f"{rp}.key", req.key, ["metadata.name"], empty=False)
        v.supported(f"{rp}.operator", req.operator, ["In", "NotIn"], empty=False)
        if len(req.values) != 1:
            v.required(
                f"{rp}.values",
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            )


def _node_requirement(v: _V, req: core_pb2.NodeSelectorRequirement, p: str) -> None:
    op = req.operator
    if op in ("In", "NotIn"):
        if not req.values:
            v.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
    elif op in ("Exists", "DoesNotExist"):
        if req.values:
            v.forbidden(
                f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )
    elif op in ("Gt", "Lt"):
        if len(req.values) != 1:
            v.required(
                f"{p}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"
            )
        elif not re.fullmatch(r"[+-]?[0-9]+", req.values[0]):
            v.invalid(
                f"{p}.values[0]",
                req.values[0],
                "must be an integer when `operator` is 'Lt' or 'Gt'",
            )
    else:
        v.supported(f"{p}.operator", op, _NODE_OPERATORS, empty=False)


def _affinity(v: _V, a: core_pb2.Affinity, p: str) -> None:
    if a.HasField("node_affinity"):
        na = a.node_affinity
        np_ = f"{p}.nodeAffinity"
        if na.HasField("required_during_scheduling_ignored_during_execution"):
            rp = f"{np_}.requiredDuringSchedulingIgnoredDuringExecution"
            terms = na.required_during_scheduling_ignored_during_execution.node_selector_terms
            if not terms:
                v.required(f"{rp}.nodeSelectorTerms", "must have at least one node selector term")
            for i, term in enumerate(terms):
                _node_selector_term(v, term, f"{rp}.nodeSelectorTerms[{i}]")
        for i, pref in enumerate(na.preferred_during_scheduling_ignored_during_execution):
            pp = f"{np_}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(v, f"{pp}.weight", pref.weight)
            _node_selector_term(v, pref.preference, f"{pp}.preference")
    for field, json_name in (
        ("pod_affinity", "podAffinity"),
        ("pod_anti_affinity", "podAntiAffinity"),
    ):
        if not a.HasField(field):
            continue
        pa = getattr(a, field)
        ap = f"{p}.{json_name}"
        for i, term in enumerate(pa.required_during_scheduling_ignored_during_execution):
            _pod_affinity_term(v, term, f"{ap}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, w in enumerate(pa.preferred_during_scheduling_ignored_during_execution):
            wp = f"{ap}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(v, f"{wp}.weight", w.weight)
            _pod_affinity_term(v, w.pod_affinity_term, f"{wp}.podAffinityTerm")


def _weight(v: _V, path: str, weight: int) -> None:
    if not 1 <= weight <= 100:
        v.invalid(path, weight, "must be in the range 1-100")


def _pod_affinity_term(v: _V, term: core_pb2.PodAffinityTerm, p: str) -> None:
    if not term.topology_key:
        v.required(f"{p}.topologyKey", "can not be empty")
    else:
        v.qualified_name(f"{p}.topologyKey", term.topology_key)
    if term.HasField("label_selector"):
        v.selector(f"{p}.labelSelector", term.label_selector)
    if term.HasField("namespace_selector"):
        v.selector(f"{p}.namespaceSelector", term.namespace_selector)
    for i, ns in enumerate(term.namespaces):
        v.dns_label(f"{p}.namespaces[{i}]", ns)


def _check_pod(v: _V, pod: core_pb2.Pod) -> None:
    _pod_spec(v, pod.spec, "spec", restart_policies=_RESTART_POLICIES)


_POD_MUTABLE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _update_pod(v: _V, new: core_pb2.Pod, old: core_pb2.Pod) -> None:
    a, b = new.spec, old.spec
    if b.HasField("active_deadline_seconds"):
        if not a.HasField("active_deadline_seconds"):
            v.invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        elif a.active_deadline_seconds > b.active_deadline_seconds:
            v.invalid(
                "spec.activeDeadlineSeconds",
                a.active_deadline_seconds,
                "must be less than or equal to previous value",
            )
    old_tolerations = [t.SerializeToString(deterministic=True) for t in b.tolerations]
    new_tolerations = [t.SerializeToString(deterministic=True) for t in a.tolerations]
    missing = [t for t in old_tolerations if t not in new_tolerations]
    # Compare the rest: a copy of the new spec with the mutable parts taken from the old one.
    rest = core_pb2.PodSpec()
    rest.CopyFrom(a)
    if len(rest.containers) == len(b.containers) and len(rest.init_containers) == len(
        b.init_containers
    ):
        for mine, theirs in zip(rest.containers, b.containers, strict=True):
            mine.image = theirs.image
        for mine, theirs in zip(rest.init_containers, b.init_containers, strict=True):
            mine.image = theirs.image
    if b.HasField("active_deadline_seconds"):
        rest.active_deadline_seconds = b.active_deadline_seconds
    else:
        rest.ClearField("active_deadline_seconds")
    del rest.tolerations[:]
    rest.tolerations.extend(b.tolerations)
    if missing:
        v.forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        )
    if rest != b:
        v.forbidden("spec", _POD_MUTABLE)


# ---------------------------------------------------------------------------------------
# Workloads


def _template(
    v: _V,
    selector: meta_pb2.LabelSelector | None,
    template: core_pb2.PodTemplateSpec,
    p: str,
    *,
    restart_policies: Sequence[str],
) -> None:
    v.labels(f"{p}.metadata.labels", template.metadata.labels)
    if selector is not None and not selector_matches(selector, template.metadata.labels):
        v.invalid(
            f"{p}.metadata.labels",
            dict(template.metadata.labels),
            "`selector` does not match template `labels`",
        )
    _pod_spec(v, template.spec, f"{p}.spec", restart_policies=restart_policies)


def _workload_selector(v: _V, spec: Any, p: str, kind: str) -> meta_pb2.LabelSelector | None:
    if not spec.HasField("selector"):
        v.required(f"{p}.selector")
        return None
    sel = spec.selector
    if not sel.match_labels and not sel.match_expressions:
        v.invalid(f"{p}.selector", {}, f"empty selector is invalid for {kind}")
        return None
    v.selector(f"{p}.selector", sel)
    return sel


def _int_or_percent(v: _V, path: str, value: meta_pb2.IntOrString) -> int | None:
    """Validate maxSurge / maxUnavailable; return the value (percent or int) if valid."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "int_val":
        if value.int_val < 0:
            v.non_negative(path, value.int_val)
            return None
        return value.int_val
    if not _PERCENT.fullmatch(value.str_val):
        v.invalid(
            path,
            value.str_val,
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )
        return None
    return int(value.str_val[:-1])


def _rolling(v: _V, update: Any, p: str) -> None:
    surge = _int_or_percent(v, f"{p}.maxSurge", update.max_surge)
    unavailable = _int_or_percent(v, f"{p}.maxUnavailable", update.max_unavailable)
    if (
        update.max_unavailable.WhichOneof("value") == "str_val"
        and unavailable is not None
        and unavailable > 100
    ):
        v.invalid(
            f"{p}.maxUnavailable", update.max_unavailable.str_val, "must not be greater than 100%"
        )
    if surge == 0 and unavailable == 0:
        v.invalid(f"{p}.maxUnavailable", 0, "may not be 0 when `maxSurge` is 0")


def _check_deployment(v: _V, d: apps_pb2.Deployment) -> None:
    s = d.spec
    if s.HasField("replicas"):
        v.non_negative("spec.replicas", s.replicas)
    sel = _workload_selector(v, s, "spec", "deployment")
    _template(v, sel, s.template, "spec.template", restart_policies=["Always"])
    v.supported("spec.strategy.type", s.strategy.type, ["Recreate", "RollingUpdate"], empty=True)
    if s.strategy.type == "Recreate" and s.strategy.HasField("rolling_update"):
        v.forbidden(
            "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
        )
    elif s.strategy.HasField("rolling_update"):
        _rolling(v, s.strategy.rolling_update, "spec.strategy.rollingUpdate")
    v.non_negative("spec.minReadySeconds", s.min_ready_seconds)
    if s.HasField("revision_history_limit"):
        v.non_negative("spec.revisionHistoryLimit", s.revision_history_limit)
    if s.HasField("progress_deadline_seconds"):
        v.non_negative("spec.progressDeadlineSeconds", s.progress_deadline_seconds)
        if s.progress_deadline_seconds <= s.min_ready_seconds:
            v.invalid(
                "spec.progressDeadlineSeconds",
                s.progress_deadline_seconds,
                "must be greater than minReadySeconds",
            )


def _check_replica_set(v: _V, rs: apps_pb2.ReplicaSet) -> None:
    s = rs.spec
    if s.HasField("replicas"):
        v.non_negative("spec.replicas", s.replicas)
    v.non_negative("spec.minReadySeconds", s.min_ready_seconds)
    sel = _workload_selector(v, s, "spec", "replicaset")
    _template(v, sel, s.template, "spec.template", restart_policies=["Always"])


def _check_daemon_set(v: _V, ds: apps_pb2.DaemonSet) -> None:
    s = ds.spec
    sel = _workload_selector(v, s, "spec", "daemonset")
    _template(v, sel, s.template, "spec.template", restart_policies=["Always"])
    v.supported(
        "spec.updateStrategy.type",
        s.update_strategy.type,
        ["OnDelete", "RollingUpdate"],
        empty=True,
    )
    if s.update_strategy.HasField("rolling_update"):
        _rolling(v, s.update_strategy.rolling_update, "spec.updateStrategy.rollingUpdate")
    v.non_negative("spec.minReadySeconds", s.min_ready_seconds)
    if s.HasField("revision_history_limit"):
        v.non_negative("spec.revisionHistoryLimit", s.revision_history_limit)


def _update_selector(v: _V, new: Any, old: Any) -> None:
    if new.spec.selector != old.spec.selector:
        v.immutable("spec.selector", _selector_text(new.spec.selector))


def _selector_text(sel: meta_pb2.LabelSelector) -> str:
    parts = [f"{k}={sel.match_labels[k]}" for k in sorted(sel.match_labels)]
    parts += [f"{r.key} {r.operator} ({','.join(r.values)})" for r in sel.match_expressions]
    return ",".join(parts)


def _job_spec(v: _V, s: batch_pb2.JobSpec, p: str) -> None:
    for field, json_name in (
        ("parallelism", "parallelism"),
        ("completions", "completions"),
        ("active_deadline_seconds", "activeDeadlineSeconds"),
        ("backoff_limit", "backoffLimit"),
        ("ttl_seconds_after_finished", "ttlSecondsAfterFinished"),
    ):
        if s.HasField(field):
            v.non_negative(f"{p}.{json_name}", getattr(s, field))
    if s.HasField("completion_mode"):
        v.supported(
            f"{p}.completionMode", s.completion_mode, ["NonIndexed", "Indexed"], empty=False
        )
        if s.completion_mode == "Indexed" and not s.HasField("completions"):
            v.required(f"{p}.completions", "when completion mode is Indexed")
    sel: meta_pb2.LabelSelector | None = None
    if s.HasField("selector"):
        v.selector(f"{p}.selector", s.selector)
        sel = s.selector
    elif s.manual_selector:
        v.required(f"{p}.selector")
    _template(v, sel, s.template, f"{p}.template", restart_policies=["OnFailure", "Never"])


def _check_job(v: _V, job: batch_pb2.Job) -> None:
    _job_spec(v, job.spec, "spec")


def _update_job(v: _V, new: batch_pb2.Job, old: batch_pb2.Job) -> None:
    if new.spec.selector != old.spec.selector:
        v.immutable("spec.selector", _selector_text(new.spec.selector))
    if new.spec.template != old.spec.template:
        v.immutable("spec.template", "")
    if new.spec.HasField("completions") != old.spec.HasField("completions") or (
        new.spec.completions != old.spec.completions
    ):
        v.immutable("spec.completions", new.spec.completions)
    if new.spec.completion_mode != old.spec.completion_mode:
        v.immutable("spec.completionMode", new.spec.completion_mode)


_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELD = re.compile(
    r"(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*"
)


def _cron_problem(schedule: str) -> str | None:
    text = schedule.strip()
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if text in _CRON_MACROS:
        return None
    if text.startswith("@every "):
        return (
            None
            if re.fullmatch(r"@every ([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+", text)
            else "invalid duration"
        )
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {text}"
    for f in fields:
        if not _CRON_FIELD.fullmatch(f):
            return f"failed to parse field: {f}"
    # The controller's own parser has the last word (ranges, names, steps), so a schedule
    # the API accepts is one the CronJob controller can run.
    from actors.controllers.cron import CronSyntaxError, parse_schedule

    try:
        parse_schedule(text, default_zone=UTC)
    except CronSyntaxError as exc:
        return str(exc)
    return None


def _time_zone_problem(zone: str) -> str | None:
    from actors.controllers.cron import CronSyntaxError, parse_schedule

    try:
        parse_schedule("@daily", time_zone=zone)
    except CronSyntaxError as exc:
        return str(exc)
    return None


def _check_cron_job(v: _V, cj: batch_pb2.CronJob) -> None:
    s = cj.spec
    if not s.schedule:
        v.required("spec.schedule")
    else:
        problem = _cron_problem(s.schedule)
        if problem:
            v.invalid("spec.schedule", s.schedule, problem)
    if s.HasField("time_zone") and s.time_zone:
        zone_problem = _time_zone_problem(s.time_zone)
        if zone_problem:
            v.invalid("spec.timeZone", s.time_zone, zone_problem)
    v.supported(
        "spec.concurrencyPolicy", s.concurrency_policy, ["Allow", "Forbid", "Replace"], empty=True
    )
    for field, json_name in (
        ("starting_deadline_seconds", "startingDeadlineSeconds"),
        ("successful_jobs_history_limit", "successfulJobsHistoryLimit"),
        ("failed_jobs_history_limit", "failedJobsHistoryLimit"),
    ):
        if s.HasField(field):
            v.non_negative(f"spec.{json_name}", getattr(s, field))
    v.labels("spec.jobTemplate.metadata.labels", s.job_template.metadata.labels)
    _job_spec(v, s.job_template.spec, "spec.jobTemplate.spec")


# ---------------------------------------------------------------------------------------
# core/v1: Service, Endpoints, ConfigMap, Secret, Node, Namespace, Event; Lease

_SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
NODE_PORT_RANGE = (30000, 32767)


def _check_service(v: _V, svc: core_pb2.Service) -> None:
    s = svc.spec
    v.supported("spec.type", s.type, _SERVICE_TYPES, empty=True)
    external_name = s.type == "ExternalName"
    if external_name:
        if not s.external_name:
            v.required("spec.externalName")
        else:
            v.dns_subdomain("spec.externalName", s.external_name.rstrip("."))
    elif not s.ports:
        v.required("spec.ports")
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for i, port in enumerate(s.ports):
        p = f"spec.ports[{i}]"
        if len(s.ports) > 1 and not port.name:
            v.required(f"{p}.name")
        elif port.name:
            v.dns_label(f"{p}.name", port.name)
            if port.name in names:
                v.add(f"{p}.name", ErrorType.DUPLICATE, value=port.name)
            names.add(port.name)
        v.port(f"{p}.port", port.port)
        v.supported(f"{p}.protocol", port.protocol, _PROTOCOLS, empty=True)
        key = (port.port, port.protocol or "TCP")
        if key in seen:
            v.add(p, ErrorType.DUPLICATE, value={"port": port.port, "protocol": key[1]})
        seen.add(key)
        if port.target_port.WhichOneof("value") is not None:
            v.int_or_string_port(f"{p}.targetPort", port.target_port)
        if port.node_port:
            if s.type in ("", "ClusterIP"):
                v.forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'")
            elif not NODE_PORT_RANGE[0] <= port.node_port <= NODE_PORT_RANGE[1]:
                v.invalid(
                    f"{p}.nodePort",
                    port.node_port,
                    f"provided port is not in the valid range. The range of valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                )
    v.labels("spec.selector", s.selector)
    v.supported("spec.sessionAffinity", s.session_affinity, ["ClientIP", "None"], empty=True)
    if s.cluster_ip and s.cluster_ip != "None" and not _is_ip(s.cluster_ip):
        v.invalid("spec.clusterIP", s.cluster_ip, "must be empty, 'None', or a valid IP address")
    if external_name and s.cluster_ip:
        v.forbidden("spec.clusterIP", "may not be set for ExternalName services")
    for i, ip in enumerate(s.external_ips):
        if not _is_ip(ip):
            v.invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address")
    v.supported(
        "spec.externalTrafficPolicy", s.external_traffic_policy, ["Cluster", "Local"], empty=True
    )
    v.supported(
        "spec.internalTrafficPolicy", s.internal_traffic_policy, ["Cluster", "Local"], empty=True
    )


def _update_service(v: _V, new: core_pb2.Service, old: core_pb2.Service) -> None:
    a, b = new.spec, old.spec
    if b.cluster_ip and a.cluster_ip and a.cluster_ip != b.cluster_ip and b.type != "ExternalName":
        v.immutable("spec.clusterIP", a.cluster_ip)


def _check_endpoints(v: _V, ep: core_pb2.Endpoints) -> None:
    for i, subset in enumerate(ep.subsets):
        p = f"subsets[{i}]"
        for field, json_name in (
            ("addresses", "addresses"),
            ("not_ready_addresses", "notReadyAddresses"),
        ):
            for j, addr in enumerate(getattr(subset, field)):
                if not _is_ip(addr.ip):
                    v.invalid(f"{p}.{json_name}[{j}].ip", addr.ip, "must be a valid IP address")
                if addr.hostname:
                    v.dns_label(f"{p}.{json_name}[{j}].hostname", addr.hostname)
        for j, port in enumerate(subset.ports):
            pp = f"{p}.ports[{j}]"
            if len(subset.ports) > 1 and not port.name:
                v.required(f"{pp}.name")
            elif port.name:
                v.dns_label(f"{pp}.name", port.name)
            v.port(f"{pp}.port", port.port)
            v.supported(f"{pp}.protocol", port.protocol, _PROTOCOLS, empty=True)


def _data_keys(v: _V, keys: Iterable[str], p: str) -> None:
    for key in sorted(keys):
        if len(key) > 253:
            v.invalid(f"{p}[{key}]", key, "must be no more than 253 characters")
        elif not _CONFIG_KEY.fullmatch(key):
            v.invalid(f"{p}[{key}]", key, _MSG_CONFIG_KEY)


def _check_config_map(v: _V, cm: core_pb2.ConfigMap) -> None:
    _data_keys(v, cm.data, "data")
    _data_keys(v, cm.binary_data, "binaryData")
    for key in sorted(set(cm.data) & set(cm.binary_data)):
        v.invalid(f"binaryData[{key}]", key, "duplicate of key present in data")
    total = sum(len(k) + len(val.encode()) for k, val in cm.data.items())
    total += sum(len(k) + len(val) for k, val in cm.binary_data.items())
    if total > MAX_DATA_BYTES:
        v.add("", ErrorType.TOO_LONG, f"must have at most {MAX_DATA_BYTES} bytes")


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/basic-auth": (),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _check_secret(v: _V, secret: core_pb2.Secret) -> None:
    _data_keys(v, secret.data, "data")
    _data_keys(v, secret.string_data, "stringData")
    total = sum(len(val) for val in secret.data.values())
    total += sum(len(val.encode()) for val in secret.string_data.values())
    if total > MAX_DATA_BYTES:
        v.add("data", ErrorType.TOO_LONG, f"must have at most {MAX_DATA_BYTES} bytes")
    keys = set(secret.data) | set(secret.string_data)
    for key in _SECRET_REQUIRED_KEYS.get(secret.type, ()):
        if key not in keys:
            v.required(f"data[{key}]")


def _update_immutable_data(v: _V, new: Any, old: Any) -> None:
    if old.HasField("immutable") and old.immutable:
        if not (new.HasField("immutable") and new.immutable):
            v.forbidden("immutable", "field is immutable when `immutable` is set")
        if new.data != old.data:
            v.forbidden("data", "field is immutable when `immutable` is set")
        if isinstance(new, core_pb2.ConfigMap) and new.binary_data != old.binary_data:
            v.forbidden("binaryData", "field is immutable when `immutable` is set")
    if isinstance(new, core_pb2.Secret) and old.type and new.type != old.type:
        v.immutable("type", new.type)


def _check_node(v: _V, node: core_pb2.Node) -> None:
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(node.spec.taints):
        p = f"spec.taints[{i}]"
        if not taint.key:
            v.required(f"{p}.key")
        else:
            v.qualified_name(f"{p}.key", taint.key)
        v.label_value(f"{p}.value", taint.value)
        v.supported(f"{p}.effect", taint.effect, _TAINT_EFFECTS, empty=False)
        if (taint.key, taint.effect) in seen:
            v.add(
                p,
                ErrorType.DUPLICATE,
                "taints must be unique by key and effect pair",
                f"{taint.key}:{taint.effect}",
            )
        seen.add((taint.key, taint.effect))
    for field, cidr in [("spec.podCIDR", node.spec.pod_cidr)] + [
        (f"spec.podCIDRs[{i}]", c) for i, c in enumerate(node.spec.pod_cidrs)
    ]:
        if cidr:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                v.invalid(field, cidr, "must be a valid CIDR")
    for field in ("capacity", "allocatable"):
        values = getattr(node.status, field)
        for name in sorted(values):
            v.quantity(f"status.{field}[{name}]", values[name])


def _update_node(v: _V, new: core_pb2.Node, old: core_pb2.Node) -> None:
    if old.spec.pod_cidr and new.spec.pod_cidr != old.spec.pod_cidr:
        v.forbidden("spec.podCIDR", 'node updates may not change podCIDR except from "" to valid')


def _check_event(v: _V, ev: core_pb2.Event) -> None:
    v.supported("type", ev.type, ["Normal", "Warning"], empty=True)
    if (
        ev.involved_object.namespace
        and ev.metadata.namespace
        and ev.involved_object.namespace != ev.metadata.namespace
    ):
        v.invalid(
            "involvedObject.namespace",
            ev.involved_object.namespace,
            "does not match event.namespace",
        )
    if ev.count < 0:
        v.non_negative("count", ev.count)


def _check_lease(v: _V, lease: coordination_pb2.Lease) -> None:
    s = lease.spec
    if s.HasField("lease_duration_seconds") and s.lease_duration_seconds <= 0:
        v.invalid("spec.leaseDurationSeconds", s.lease_duration_seconds, "must be greater than 0")
    if s.HasField("lease_transitions"):
        v.non_negative("spec.leaseTransitions", s.lease_transitions)


_BY_KIND: Mapping[str, Callable[[_V, Any], None]] = {
    "Pod": _check_pod,
    "Deployment": _check_deployment,
    "ReplicaSet": _check_replica_set,
    "DaemonSet": _check_daemon_set,
    "Job": _check_job,
    "CronJob": _check_cron_job,
    "Service": _check_service,
    "Endpoints": _check_endpoints,
    "ConfigMap": _check_config_map,
    "Secret": _check_secret,
    "Node": _check_node,
    "Event": _check_event,
    "Lease": _check_lease,
}

_UPDATES: Mapping[str, Callable[[_V, Any, Any], None]] = {
    "Pod": _update_pod,
    "Deployment": _update_selector,
    "ReplicaSet": _update_selector,
    "DaemonSet": _update_selector,
    "Job": _update_job,
    "Service": _update_service,
    "ConfigMap": _update_immutable_data,
    "Secret": _update_immutable_data,
    "Node": _update_node,
}
