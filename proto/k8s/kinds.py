"""The table of object kinds: what each is called, where it lives, which message holds it.

Everything that needs to turn a name into a kind — the manifest codec (``kind`` +
``apiVersion``), the API server (a resource path such as ``deployments``), the CLI
(``raftsman get deploy``) — reads this one table, so adding a kind is one row in
:data:`KINDS`.

Names are matched as kubectl matches them: case-insensitively, by kind (``Deployment``),
plural resource (``deployments``), singular (``deployment``) or short name (``deploy``),
optionally qualified by the API group (``deployments.apps``, ``Deployment.apps``; the core
group is spelled ``""`` or ``core``). A name that matches nothing raises
:class:`UnknownKind`, whose message lists the closest known names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf.message import Message

from proto.k8s import apps_pb2, batch_pb2, coordination_pb2, core_pb2

__all__ = [
    "KINDS",
    "KindInfo",
    "UnknownKind",
    "by_api_version_kind",
    "by_kind",
    "by_message",
    "by_resource",
    "lookup",
]


@dataclass(frozen=True)
class KindInfo:
    """One kind of object.

    ``resource`` is the lower-case plural used in API paths and in store keys
    (``/registry/<resource>/<namespace>/<name>``). ``has_spec`` / ``has_status`` say whether
    the message has those fields (a ConfigMap has ``data`` instead; an Event has neither).
    """

    kind: str
    api_version: str
    group: str  # "" for core/v1, "apps" for apps/v1
    resource: str
    short_names: tuple[str, ...]
    namespaced: bool
    message: type[Message]
    has_status: bool = True
    has_spec: bool = True

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def names(self) -> tuple[str, ...]:
        """Every lower-case name this kind answers to, without a group."""
        return (self.singular, self.resource, *self.short_names)

    def new(self) -> Message:
        """An empty message of this kind with apiVersion and kind filled in."""
        obj = self.message()
        obj.api_version = self.api_version
        obj.kind = self.kind
        return obj


def _k(
    kind: str,
    api_version: str,
    resource: str,
    short_names: Iterable[str],
    message: type[Message],
    *,
    namespaced: bool = True,
    spec: bool = True,
    status: bool = True,
) -> KindInfo:
    return KindInfo(
        kind=kind,
        api_version=api_version,
        group=api_version.rpartition("/")[0],
        resource=resource,
        short_names=tuple(short_names),
        namespaced=namespaced,
        message=message,
        has_spec=spec,
        has_status=status,
    )


KINDS: tuple[KindInfo, ...] = (
    _k("Namespace", "v1", "namespaces", ["ns"], core_pb2.Namespace, namespaced=False),
    _k("Node", "v1", "nodes", ["no"], core_pb2.Node, namespaced=False),
    _k("Pod", "v1", "pods", ["po"], core_pb2.Pod),
    _k("Service", "v1", "services", ["svc"], core_pb2.Service),
    _k("Endpoints", "v1", "endpoints", ["ep"], core_pb2.Endpoints, spec=False, status=False),
    _k("ConfigMap", "v1", "configmaps", ["cm"], core_pb2.ConfigMap, spec=False, status=False),
    _k("Secret", "v1", "secrets", [], core_pb2.Secret, spec=False, status=False),
    _k("Event", "v1", "events", ["ev"], core_pb2.Event, spec=False, status=False),
    _k("ReplicaSet", "apps/v1", "replicasets", ["rs"], apps_pb2.ReplicaSet),
    _k("Deployment", "apps/v1", "deployments", ["deploy"], apps_pb2.Deployment),
    _k("DaemonSet", "apps/v1", "daemonsets", ["ds"], apps_pb2.DaemonSet),
    _k("Job", "batch/v1", "jobs", [], batch_pb2.Job),
    _k("CronJob", "batch/v1", "cronjobs", ["cj"], batch_pb2.CronJob),
    _k("Lease", "coordination.k8s.io/v1", "leases", [], coordination_pb2.Lease, status=False),
)


class UnknownKind(LookupError):
    """No kind answers to ``name``; ``suggestions`` are the closest known names."""

    def __init__(self, name: str, suggestions: Iterable[str] = (), *, context: str = "") -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        text = f'unknown kind "{name}"'
        if context:
            text += f" {context}"
        if self.suggestions:
            text += "; did you mean " + " or ".join(self.suggestions) + "?"
        super().__init__(text)

    def __str__(self) -> str:
        return str(self.args[0])


def _index() -> Mapping[str, tuple[KindInfo, ...]]:
    table: dict[str, list[KindInfo]] = {}
    for info in KINDS:
        for name in info.names():
            table.setdefault(name, [])
            if info not in table[name]:
                table[name].append(info)
    return MappingProxyType({k: tuple(v) for k, v in table.items()})


_BY_NAME = _index()
_BY_KIND = MappingProxyType({info.kind: info for info in KINDS})
_BY_MESSAGE = MappingProxyType({info.message.DESCRIPTOR.full_name: info for info in KINDS})


def _close(name: str, candidates: Iterable[str]) -> list[str]:
    pool = sorted(set(candidates))
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    return [lowered[h] for h in hits]


def _group_matches(info: KindInfo, group: str) -> bool:
    group = group.lower()
    if group in ("", "core"):
        return info.group == ""
    return info.group == group or info.group.split(".", 1)[0] == group


def lookup(name: str) -> KindInfo:
    """The kind ``name`` refers to, in any of kubectl's spellings (see the module doc).

    Raises :class:`UnknownKind` when nothing matches.
    """
    wanted = name.strip().lower()
    bare, _, group = wanted.partition(".")
    candidates = _BY_NAME.get(bare, ())
    if group or "." in wanted:
        candidates = tuple(i for i in candidates if _group_matches(i, group))
    if candidates:
        return candidates[0]
    # One suggestion per kind, spelled the way the caller spelled theirs (kind or resource).
    spelled = {info.resource: info for info in KINDS} | {info.kind: info for info in KINDS}
    seen: set[str] = set()
    suggestions = []
    for hit in _close(bare, spelled):
        if spelled[hit].kind not in seen:
            seen.add(spelled[hit].kind)
            suggestions.append(hit)
    raise UnknownKind(name, suggestions)


def by_kind(kind: str) -> KindInfo:
    """The kind whose ``kind`` is exactly ``kind`` (as in a manifest; case-sensitive)."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise UnknownKind(kind, _close(kind, _BY_KIND)) from None


def by_api_version_kind(api_version: str, kind: str) -> KindInfo:
    """The kind a manifest's ``apiVersion`` and ``kind`` name, both exactly.

    Raises :class:`UnknownKind` for an unknown kind; ``ValueError`` when the kind is known
    but is served under another apiVersion.
    """
    info = _BY_KIND.get(kind)
    if info is None:
        raise UnknownKind(kind, _close(kind, _BY_KIND), context=f"in apiVersion {api_version}")
    if info.api_version != api_version:
        raise ValueError(f"kind {kind} is served as {info.api_version}, not {api_version}")
    return info


def by_resource(resource: str) -> KindInfo:
    """The kind stored under ``resource`` (lower-case plural, optionally ``.group``)."""
    bare, _, group = resource.partition(".")
    for info in KINDS:
        if info.resource == bare.lower() and (not group or _group_matches(info, group)):
            return info
    raise UnknownKind(resource, _close(bare, [i.resource for i in KINDS]))


def by_message(obj: Message | type[Message]) -> KindInfo:
    """The kind a message (instance or class) holds."""
    full_name = obj.DESCRIPTOR.full_name
    try:
        return _BY_MESSAGE[full_name]
    except KeyError:
        raise UnknownKind(full_name) from None
