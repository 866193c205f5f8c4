"""``raftsman explain KIND[.field.path]``: the fields of a kind, from its schema.

The protobuf messages are the schema, so the field names, types and nesting shown are
exactly what the API server accepts (JSON names, as manifests spell them)::

    $ raftsman explain deploy.spec.strategy
    KIND:     Deployment
    VERSION:  apps/v1

    FIELD:    strategy <DeploymentStrategy>

    FIELDS:
      rollingUpdate	<RollingUpdateDeployment>
      type	<string>

``--recursive`` prints the whole tree below the field. An unknown field names the
fields that do exist.
"""

from __future__ import annotations

import click
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from . import resources, session

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "string",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_DOUBLE: "number",
    FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_ENUM: "string",
}
_WELL_KNOWN = {"Timestamp": "string", "IntOrString": "IntOrString", "Any": "Object"}


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def type_name(field: FieldDescriptor) -> str:
    if _is_map(field):
        return f"map[string]{type_name(field.message_type.fields_by_name['value'])}"
    if field.message_type is not None:
        base = _WELL_KNOWN.get(field.message_type.name, field.message_type.name)
    else:
        base = _SCALARS.get(field.type, "integer")
    return f"[]{base}" if field.is_repeated else base


def _children(field_or_message: FieldDescriptor | Descriptor) -> Descriptor | None:
    if isinstance(field_or_message, Descriptor):
        return field_or_message
    message = field_or_message.message_type
    if message is None or _is_map(field_or_message) or message.name in _WELL_KNOWN:
        return None
    return message


def _lines(message: Descriptor, depth: int, recursive: bool, seen: tuple[str, ...]) -> list[str]:
    out = []
    for field in message.fields:
        out.append(f"{'  ' * depth}{field.json_name}\t<{type_name(field)}>")
        child = _children(field)
        if recursive and child is not None and child.full_name not in seen:
            out += _lines(child, depth + 1, recursive, (*seen, child.full_name))
    return out


def explain_text(path: str, *, recursive: bool = False) -> str:
    kind_name, *parts = path.split(".")
    info = resources.lookup(kind_name)
    target: FieldDescriptor | Descriptor = info.message.DESCRIPTOR
    walked: list[str] = []
    for part in parts:
        message = _children(target)
        if message is None:
            raise session.UsageProblem(
                f"field {part!r} does not exist: {'.'.join(walked)} has no fields"
            )
        field = next((f for f in message.fields if part in (f.json_name, f.name)), None)
        if field is None:
            names = ", ".join(f.json_name for f in message.fields)
            raise session.UsageProblem(
                f"field {part!r} does not exist in {message.name} (fields: {names})"
            )
        walked.append(part)
        target = field
    lines = [f"KIND:     {info.kind}", f"VERSION:  {info.api_version}", ""]
    if isinstance(target, FieldDescriptor):
        lines += [f"FIELD:    {target.json_name} <{type_name(target)}>", ""]
    message = _children(target)
    if message is not None:
        lines.append("FIELDS:")
        lines += ["  " + line for line in _lines(message, 0, recursive, (message.full_name,))]
    return "\n".join(lines).rstrip()


@click.command("explain")
@click.argument("path")
@click.option("--recursive", is_flag=True, help="Print every field below, indented.")
def explain(path: str, recursive: bool) -> None:
    """Describe a kind's fields: raftsman explain pods.spec.containers [--recursive]."""
    try:
        click.echo(explain_text(path, recursive=recursive))
    except session.UsageProblem as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
