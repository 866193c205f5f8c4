"""Manifests (YAML/JSON documents) to and from the protobuf messages that are the schema.

The problem: a manifest written for Kubernetes must decode into our messages unchanged, and
a message must encode back to what ``kubectl get -o yaml`` would show. proto3's JSON
mapping already gives Kubernetes' field names (``container_port`` -> ``containerPort``;
acronyms such as ``podIP`` carry an explicit ``json_name``), but Kubernetes' JSON differs
from proto3's in a few places:

* ``IntOrString`` is a bare ``8080`` or ``"http"``, not ``{"intVal": 8080}``;
* quantities are strings, yet YAML writers put ``cpu: 1`` or ``cpu: 0.5``: numbers are
  accepted where a quantity is expected and kept as the string they spell;
* int64 fields are JSON numbers, not the strings proto3 uses;
* ``null`` means "unset" anywhere.

Options rejected: ``json_format.ParseDict`` stops at the first problem, reports it without
a usable field path, and fails on unknown fields where Kubernetes (non-strict) warns; a
pre/post pass around it would have to walk the schema anyway. So this module walks the
message descriptors itself — about as much code as the fix-ups would be — and uses
protobuf's own conversions where they fit (Timestamp's RFC 3339, base64 for ``bytes``).

Guarantees:

* :func:`decode` never raises anything but :class:`DecodeError` for any JSON-like input
  (dicts, lists, strings, numbers, booleans, ``None``); it collects every problem it finds,
  each with a field path such as ``spec.template.spec.containers[0].ports[0].containerPort``.
* ``decode(encode(m)).obj == m`` for every message ``m`` of a kind in the table, and
  ``encode(decode(d).obj) == d`` for a manifest ``d`` that spells every value canonically
  and leaves out empty values (as ``kubectl`` shows objects).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from proto.k8s import kinds

__all__ = [
    "DecodeError",
    "Decoded",
    "FieldIssue",
    "decode",
    "decode_into",
    "encode",
    "load_manifests",
]

_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
_INT_OR_STRING = "raftsman.k8s.IntOrString"

# String fields that hold Kubernetes quantities: a YAML number is accepted and kept as the
# string it spells. Keyed by (message full name, field name).
QUANTITY_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("raftsman.k8s.ResourceRequirements", "limits"),
        ("raftsman.k8s.ResourceRequirements", "requests"),
        ("raftsman.k8s.NodeStatus", "capacity"),
        ("raftsman.k8s.NodeStatus", "allocatable"),
        ("raftsman.k8s.EmptyDirVolumeSource", "size_limit"),
        ("raftsman.k8s.ResourceFieldSelector", "divisor"),
    }
)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


# ---------------------------------------------------------------------------------------
# Results and errors


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one field: ``path`` as Kubernetes writes it, ``""`` for the document."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DecodeError(ValueError):
    """A manifest that cannot become an object.

    ``issues`` holds every problem found (at least one); ``path`` and ``message`` are the
    first one's, for callers that report a single line.
    """

    def __init__(self, path: str, message: str, *, issues: Sequence[FieldIssue] = ()) -> None:
        self.issues: tuple[FieldIssue, ...] = tuple(issues) or (FieldIssue(path, message),)
        self.path = self.issues[0].path
        self.message = self.issues[0].message
        super().__init__("; ".join(str(i) for i in self.issues))

    @classmethod
    def collect(cls, issues: Sequence[FieldIssue]) -> DecodeError:
        first = issues[0]
        return cls(first.path, first.message, issues=issues)


@dataclass(frozen=True)
class Decoded:
    """A decoded object and the warnings (unknown fields) found on the way."""

    obj: Message
    warnings: tuple[FieldIssue, ...] = ()


# ---------------------------------------------------------------------------------------
# Decoding


def decode(doc: Any, *, strict: bool = False) -> Decoded:
    """The object a manifest describes.

    ``doc`` is a parsed JSON/YAML document. Its ``apiVersion`` and ``kind`` must name a kind
    in :data:`proto.k8s.kinds.KINDS`. Unknown fields are returned as warnings, or raised as
    errors when ``strict``. Every other problem (a wrong type, a bad base64 string, an
    out-of-range integer) is collected and raised as one :class:`DecodeError`.
    """
    if not isinstance(doc, Mapping):
        raise DecodeError("", f"expected an object, got {_describe(doc)}")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    issues = []
    for name, value in (("apiVersion", api_version), ("kind", kind)):
        if value is None or value == "":
            issues.append(FieldIssue(name, "required"))
        elif not isinstance(value, str):
            issues.append(FieldIssue(name, f"expected a string, got {_describe(value)}"))
    if issues:
        raise DecodeError.collect(issues)
    assert isinstance(api_version, str) and isinstance(kind, str)
    try:
        info = kinds.by_api_version_kind(api_version, kind)
    except kinds.UnknownKind as e:
        raise DecodeError("kind", str(e)) from None
    except ValueError as e:
        raise DecodeError("apiVersion", str(e)) from None
    obj = info.message()
    decoder = _Decoder(strict=strict)
    decoder.message(doc, obj, "")
    if decoder.errors:
        raise DecodeError.collect(decoder.errors)
    return Decoded(obj, tuple(decoder.warnings))


def decode_into(
    doc: Any, message: Message, *, strict: bool = False, path: str = ""
) -> tuple[FieldIssue, ...]:
    """Merge ``doc`` into ``message`` (any message, not only a kind); return the warnings.

    For parts of objects (a pod template, a patch's body); ``path`` prefixes every path
    reported. Raises :class:`DecodeError` as :func:`decode` does; ``message`` may then be
    partly filled.
    """
    decoder = _Decoder(strict=strict)
    decoder.message(doc, message, path)
    if decoder.errors:
        raise DecodeError.collect(decoder.errors)
    return tuple(decoder.warnings)


class _Bad(Exception):
    """A value of the wrong shape; the caller knows the path."""


@functools.cache
def _json_fields(descriptor: Descriptor) -> Mapping[str, FieldDescriptor]:
    return {f.json_name: f for f in descriptor.fields}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_map(field: FieldDescriptor) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
    )


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


class _Decoder:
    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.errors: list[FieldIssue] = []
        self.warnings: list[FieldIssue] = []

    def message(self, doc: Any, msg: Message, path: str) -> None:
        if not isinstance(doc, Mapping):
            self.errors.append(FieldIssue(path, f"expected an object, got {_describe(doc)}"))
            return
        fields = _json_fields(msg.DESCRIPTOR)
        for key, value in doc.items():
            if not isinstance(key, str):
                self.errors.append(FieldIssue(path, f"field names must be strings, got {key!r}"))
                continue
            sub = _join(path, key)
            field = fields.get(key)
            if field is None:
                issue = FieldIssue(sub, "unknown field")
                (self.errors if self.strict else self.warnings).append(issue)
            elif value is not None:
                self.field(msg, field, value, sub)

    def field(self, msg: Message, field: FieldDescriptor, value: Any, path: str) -> None:
        try:
            if _is_map(field):
                self.map(msg, field, value, path)
            elif _is_repeated(field):
                self.repeated(msg, field, value, path)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                self.submessage(getattr(msg, field.name), value, path)
            else:
                quantity = (msg.DESCRIPTOR.full_name, field.name) in QUANTITY_FIELDS
                setattr(msg, field.name, _scalar(field, value, quantity=quantity))
        except _Bad as e:
            self.errors.append(FieldIssue(path, str(e)))
        except (ValueError, TypeError) as e:  # protobuf refused a value (e.g. a bad string)
            self.errors.append(FieldIssue(path, f"invalid value: {e}"))

    def submessage(self, target: Message, value: Any, path: str) -> None:
        name = target.DESCRIPTOR.full_name
        if name == _TIMESTAMP:
            _set_timestamp(target, value)
        elif name == _INT_OR_STRING:
            _set_int_or_string(target, value)
        else:
            target.SetInParent()
            self.message(value, target, path)

    def repeated(self, msg: Message, field: FieldDescriptor, value: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            raise _Bad(f"expected an array, got {_describe(value)}")
        container = getattr(msg, field.name)
        for i, item in enumerate(value):
            sub = f"{path}[{i}]"
            if item is None:
                self.errors.append(FieldIssue(sub, "null is not allowed in an array"))
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                try:
                    self.submessage(container.add(), item, sub)
                except _Bad as e:
                    self.errors.append(FieldIssue(sub, str(e)))
            else:
                try:
                    container.append(_scalar(field, item, quantity=False))
                except _Bad as e:
                    self.errors.append(FieldIssue(sub, str(e)))

    def map(self, msg: Message, field: FieldDescriptor, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _Bad(f"expected an object, got {_describe(value)}")
        container = getattr(msg, field.name)
        value_field = field.message_type.fields_by_name["value"]
        quantity = (msg.DESCRIPTOR.full_name, field.name) in QUANTITY_FIELDS
        for key, item in value.items():
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)  # as kubectl's YAML-to-JSON step does
            if not isinstance(key, str):
                self.errors.append(FieldIssue(path, f"keys must be strings, got {key!r}"))
                continue
            sub = f"{path}[{key}]"
            if item is None:
                continue
            try:
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    self.submessage(container[key], item, sub)
                else:
                    container[key] = _scalar(value_field, item, quantity=quantity)
            except _Bad as e:
                self.errors.append(FieldIssue(sub, str(e)))
            except (ValueError, TypeError) as e:
                self.errors.append(FieldIssue(sub, f"invalid value: {e}"))


def _scalar(field: FieldDescriptor, value: Any, *, quantity: bool) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        if isinstance(value, str):
            return value
        if quantity and isinstance(value, int | float) and not isinstance(value, bool):
            return _number_text(value)
        raise _Bad(f"expected a string, got {_describe(value)}")
    if kind in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Bad(f"expected an integer, got {_describe(value)}")
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            raise _Bad(f"{value} is out of range [{low}, {high}]")
        return value
    if kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _Bad(f"expected a boolean, got {_describe(value)}")
        return value
    if kind == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            raise _Bad(f"expected a base64 string, got {_describe(value)}")
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _Bad(f"illegal base64 data: {_describe(value)}") from None
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Bad(f"expected a number, got {_describe(value)}")
        return float(value)
    raise _Bad(f"unsupported field type {kind}")


def _number_text(value: int | float) -> str:
    """A YAML number as the quantity string it spells: 1 -> "1", 0.5 -> "0.5"."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _set_timestamp(target: Message, value: Any) -> None:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        target.FromDatetime(value)
        return
    if not isinstance(value, str):
        raise _Bad(f"expected an RFC 3339 time, got {_describe(value)}")
    try:
        target.FromJsonString(value)
    except (ValueError, TypeError):
        raise _Bad(f"expected an RFC 3339 time, got {_describe(value)}") from None


def _set_int_or_string(target: Message, value: Any) -> None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**31) <= value < 2**31:
            raise _Bad(f"{value} is out of range for an int32")
        target.int_val = value
    elif isinstance(value, str):
        target.str_val = value
    else:
        raise _Bad(f"expected an integer or a string, got {_describe(value)}")


# ---------------------------------------------------------------------------------------
# Encoding


def encode(obj: Message) -> dict[str, Any]:
    """``obj`` as a manifest: Kubernetes' field names and value shapes, empty fields left out.

    Keys come in schema order (apiVersion, kind, metadata, spec, status, ...); map keys are
    sorted. A sub-object that is present but empty stays (``emptyDir: {}``), as kubectl
    shows it.
    """
    out = _encode(obj)
    assert isinstance(out, dict)
    return out


def _encode(msg: Message) -> Any:
    name = msg.DESCRIPTOR.full_name
    if name == _TIMESTAMP:
        return msg.ToJsonString()
    if name == _INT_OR_STRING:
        which = msg.WhichOneof("value")
        return getattr(msg, which) if which else None
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.json_name] = {k: _encode_value(value_field, value[k]) for k in sorted(value)}
        elif _is_repeated(field):
            out[field.json_name] = [_encode_value(field, v) for v in value]
        else:
            encoded = _encode_value(field, value)
            if encoded is not None:
                out[field.json_name] = encoded
    return out


def _encode_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _encode(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return value


# ---------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: an unquoted timestamp stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_manifests(text: str) -> list[dict[str, Any]]:
    """Every document in a (multi-document) YAML or JSON text, in order.

    Empty documents are skipped and a ``kind: List`` is expanded into its ``items``, as
    kubectl does. Raises :class:`DecodeError` for text that is not YAML or for a document
    that is not an object (path ``[i]``, the document's index).
    """
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise DecodeError("", f"invalid YAML: {e}") from None
    out: list[dict[str, Any]] = []
    issues: list[FieldIssue] = []
    for i, doc in enumerate(d for d in docs if d is not None):
        for j, item in enumerate(_expand(doc)):
            if isinstance(item, dict):
                out.append(item)
            else:
                where = f"[{i}]" if item is doc else f"[{i}].items[{j}]"
                issues.append(FieldIssue(where, f"expected an object, got {_describe(item)}"))
    if issues:
        raise DecodeError.collect(issues)
    return out


def _expand(doc: Any) -> Iterator[Any]:
    if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        yield from doc["items"]
    else:
        yield doc
