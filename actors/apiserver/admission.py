"""Admission: defaults, then validation, for every object the server writes.

:func:`admit` is the one place the service calls before a write: it converts write-only
fields (a Secret's ``stringData`` is merged into ``data`` and cleared, as Kubernetes'
conversion does, so it is never stored), applies
:func:`actors.apiserver.defaults.apply_defaults`, then
:func:`actors.apiserver.validation.validate` (as an update when given the stored object),
and turns every problem found into one ``InvalidArgument`` in Kubernetes' wording.
"""

from __future__ import annotations

from typing import Any

from actors.apiserver import defaults, validation
from proto import rpc


def admit(obj: Any, *, old: Any | None = None) -> Any:
    """A defaulted copy of ``obj``; ``InvalidArgument`` when it is not valid."""
    out = defaults.apply_defaults(convert(obj))
    errors = validation.validate(out, old=old)
    if errors:
        raise invalid(out, [str(e) for e in errors])
    return out


def convert(obj: Any) -> Any:
    """``obj`` with write-only fields folded in: a Secret's ``stringData`` entries
    overwrite the same keys of ``data`` (UTF-8 bytes; base64 on the wire) and vanish."""
    if obj.kind != "Secret" or not obj.string_data:
        return obj
    out = type(obj)()
    out.CopyFrom(obj)
    for key, value in out.string_data.items():
        out.data[key] = value.encode()
    out.ClearField("string_data")
    return out


def invalid(obj: Any, problems: list[str]) -> rpc.InvalidArgument:
    """``Pod "web" is invalid: spec.containers[0].image: Required value`` (several
    problems in brackets, comma-separated)."""
    detail = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return rpc.InvalidArgument(f'{obj.kind} "{obj.metadata.name}" is invalid: {detail}')
