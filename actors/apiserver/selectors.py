"""Label and field selectors, parsed from Kubernetes' string syntax.

Label selectors: comma-separated requirements, all of which must hold::

    app=web          app==web         the label is set to the value
    tier!=db                          not set to the value (also true when absent)
    env in (a,b)     env notin (c)    set to one of / not one of (notin: also when absent)
    release          !canary          the label exists / does not exist

Field selectors: ``path=value``, ``path==value``, ``path!=value``, comma-separated, where
``path`` is a dotted path of JSON field names to a scalar field of the kind
(``metadata.name``, ``metadata.namespace``, ``spec.nodeName``, ``status.phase``). An unset
field compares as its proto3 default (``""`` for strings, so ``spec.nodeName=`` selects
unbound pods). A path the kind lacks is an error, found when the selector is bound to the
kind (:meth:`FieldSelector.bind`), before any object is read.

Parse errors are ``InvalidArgument`` with the offending text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from proto import rpc

_QUALIFIED_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?{_QUALIFIED_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_QUALIFIED_NAME})?$")
_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


class Operator(enum.Enum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case Operator.EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or value not in self.values
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space character
            raise rpc.InvalidArgument(f"invalid label selector {text!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _check_key(key: str, text: str) -> str:
    if not _LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        raise rpc.InvalidArgument(f"invalid label selector {text!r}: bad label key {key!r}")
    return key


def _check_value(value: str, text: str) -> str:
    if not _LABEL_VALUE.match(value) or len(value) > 63:
        raise rpc.InvalidArgument(f"invalid label selector {text!r}: bad label value {value!r}")
    return value


def parse_labels(text: str) -> LabelSelector:
    """Parse a label selector; the empty string selects everything."""
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise rpc.InvalidArgument(f"invalid label selector {text!r}: unexpected end")
        i += 1
        return tokens[i - 1]

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    while i < len(tokens):
        token = take()
        if token == "!":
            requirements.append(Requirement(_check_key(take(), text), Operator.DOES_NOT_EXIST))
        else:
            key = _check_key(token, text)
            op = peek()
            if op in ("=", "==", "!="):
                take()
                value = "" if peek() in (",", None) else _check_value(take(), text)
                operator = Operator.NOT_EQUALS if op == "!=" else Operator.EQUALS
                requirements.append(Requirement(key, operator, frozenset([value])))
            elif op in ("in", "notin"):
                take()
                if take() != "(":
                    raise rpc.InvalidArgument(f"invalid label selector {text!r}: expected '('")
                values: list[str] = []
                while True:
                    item = take()
                    if item == ")" and not values:
                        break
                    values.append(_check_value(item, text))
                    sep = take()
                    if sep == ")":
                        break
                    if sep != ",":
                        raise rpc.InvalidArgument(
                            f"invalid label selector {text!r}: expected ',' or ')'"
                        )
                if not values:
                    raise rpc.InvalidArgument(
                        f"invalid label selector {text!r}: {op} needs at least one value"
                    )
                operator = Operator.IN if op == "in" else Operator.NOT_IN
                requirements.append(Requirement(key, operator, frozenset(values)))
            else:
                requirements.append(Requirement(key, Operator.EXISTS))
        if i < len(tokens):
            if take() != "," or i == len(tokens):
                raise rpc.InvalidArgument(
                    f"invalid label selector {text!r}: expected ',' and another requirement"
                )
    return LabelSelector(tuple(requirements))


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]  # JSON field names
    equals: bool
    value: str

    @property
    def label(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def bind(self, descriptor: Descriptor) -> BoundFieldSelector:
        """Resolve the paths against a kind's message; ``InvalidArgument`` if one is absent."""
        bound = []
        for req in self.requirements:
            fields: list[FieldDescriptor] = []
            current: Descriptor | None = descriptor
            for part in req.path:
                field = None if current is None else _field_by_json_name(current, part)
                if field is None:
                    raise rpc.InvalidArgument(
                        f"field label not supported: {req.label} (for {descriptor.name})"
                    )
                fields.append(field)
                current = field.message_type
            last = fields[-1]
            if last.message_type is not None or _is_repeated(last):
                raise rpc.InvalidArgument(f"field label not supported: {req.label} (not a scalar)")
            bound.append((tuple(f.name for f in fields), req))
        return BoundFieldSelector(tuple(bound))


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _field_by_json_name(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if field.json_name == name or field.name == name:
            return field
    return None


@dataclass(frozen=True)
class BoundFieldSelector:
    requirements: tuple[tuple[tuple[str, ...], FieldRequirement], ...]

    def matches(self, obj: Any) -> bool:
        for names, req in self.requirements:
            value: Any = obj
            for name in names:
                value = getattr(value, name)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if (text == req.value) != req.equals:
                return False
        return True


def parse_fields(text: str) -> FieldSelector:
    """Parse a field selector; the empty string selects everything."""
    requirements = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            if text.strip():
                raise rpc.InvalidArgument(f"invalid field selector {text!r}: empty requirement")
            continue
        op = next((o for o in ("!=", "==", "=") if o in part), None)
        if op is None:
            raise rpc.InvalidArgument(
                f"invalid field selector {text!r}: {part!r} needs =, == or !="
            )
        path, _, value = part.partition(op)
        equals = op != "!="
        path = path.strip()
        if not path or any(not p for p in path.split(".")):
            raise rpc.InvalidArgument(f"invalid field selector {text!r}: bad field {path!r}")
        requirements.append(FieldRequirement(tuple(path.split(".")), equals, value.strip()))
    return FieldSelector(tuple(requirements))


@dataclass(frozen=True)
class Filter:
    """A label selector and a bound field selector together: what a List/Watch selects."""

    labels: LabelSelector
    fields: BoundFieldSelector

    def matches(self, obj: Any) -> bool:
        return self.labels.matches(obj.metadata.labels) and self.fields.matches(obj)


def compile_filter(descriptor: Descriptor, label_selector: str, field_selector: str) -> Filter:
    return Filter(parse_labels(label_selector), parse_fields(field_selector).bind(descriptor))
