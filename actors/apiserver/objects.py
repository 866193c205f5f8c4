"""Objects as the API server handles them: kinds, store keys, the wire envelope.

Every kind's message has ``api_version``, ``kind`` and ``metadata`` (a
``raftsman.k8s.ObjectMeta``), and optionally ``spec`` and ``status``
(:class:`proto.k8s.kinds.KindInfo` says which). The helpers here rely on that contract
and nothing else, so the rest of the server is generic over kinds.

Envelope: objects cross gRPC as ``google.protobuf.Any`` whose type URL names the kind's
message (``type.googleapis.com/raftsman.k8s.Pod``); :func:`unpack` resolves it to a kind
through the kinds table. Requests without an object name the kind in any of kubectl's
spellings (``Pod``, ``pods``, ``po``), resolved by :func:`kind_named`.

Key layout: ``/registry/<resource>/<namespace>/<name>`` for namespaced kinds,
``/registry/<resource>/<name>`` for cluster-scoped ones. A namespaced listing of one
namespace is the prefix ``/registry/<resource>/<namespace>/`` (the trailing slash keeps
namespace ``a`` from matching ``ab``).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from proto import rpc
from proto.k8s import kinds
from proto.k8s.kinds import KindInfo
from proto.k8s.meta_pb2 import ObjectMeta

REGISTRY = "/registry/"
DEFAULT_NAMESPACE = "default"


def kind_named(name: str) -> KindInfo:
    """The kind a request names; ``InvalidArgument`` when there is none."""
    if not name:
        raise rpc.InvalidArgument("the request names no kind")
    try:
        return kinds.lookup(name)
    except kinds.UnknownKind as exc:
        raise rpc.InvalidArgument(str(exc)) from None


def unpack(envelope: any_pb2.Any) -> tuple[KindInfo, Any]:
    """The kind and the object inside an ``Any``; ``InvalidArgument`` when unusable."""
    if not envelope.type_url:
        raise rpc.InvalidArgument("the request carries no object")
    full_name = envelope.type_url.rpartition("/")[2]
    info = next((k for k in kinds.KINDS if k.message.DESCRIPTOR.full_name == full_name), None)
    if info is None:
        raise rpc.InvalidArgument(f"unknown object type {full_name!r}")
    obj = info.message()
    try:
        envelope.Unpack(obj)
    except DecodeError as exc:
        raise rpc.InvalidArgument(f"cannot decode {info.kind}: {exc}") from None
    obj.api_version = info.api_version
    obj.kind = info.kind
    return info, obj


def pack(obj: Message) -> any_pb2.Any:
    envelope = any_pb2.Any()
    envelope.Pack(obj)
    return envelope


def meta(obj: Any) -> ObjectMeta:
    metadata: ObjectMeta = obj.metadata
    return metadata


def copy(obj: Any) -> Any:
    out = type(obj)()
    out.CopyFrom(obj)
    return out


def name_of(info: KindInfo, namespace: str, name: str) -> str:
    """How messages name an object: ``pods "default/web-1"``, ``nodes "n1"``."""
    qualified = f"{namespace}/{name}" if info.namespaced else name
    return f'{info.resource} "{qualified}"'


def describe(info: KindInfo, obj: Any) -> str:
    return name_of(info, meta(obj).namespace, meta(obj).name)


def key(info: KindInfo, namespace: str, name: str) -> bytes:
    if info.namespaced:
        return f"{REGISTRY}{info.resource}/{namespace}/{name}".encode()
    return f"{REGISTRY}{info.resource}/{name}".encode()


def prefix(info: KindInfo, namespace: str = "") -> bytes:
    """Keys of every object of a kind, or of one namespace of a namespaced kind."""
    if info.namespaced and namespace:
        return f"{REGISTRY}{info.resource}/{namespace}/".encode()
    return f"{REGISTRY}{info.resource}/".encode()


def request_namespace(info: KindInfo, namespace: str) -> str:
    """The namespace a single-object request means: ``default`` when a namespaced kind's
    request leaves it empty, always empty for cluster-scoped kinds."""
    if not info.namespaced:
        return ""
    return namespace or DEFAULT_NAMESPACE


def desired_state(obj: Any) -> bytes:
    """Everything but metadata and status: what ``generation`` counts changes of."""
    rest = copy(obj)
    for name in ("metadata", "status", "api_version", "kind"):
        if name in rest.DESCRIPTOR.fields_by_name:
            rest.ClearField(name)
    data: bytes = rest.SerializeToString(deterministic=True)
    return data


def same(a: Message, b: Message) -> bool:
    return bool(a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True))
