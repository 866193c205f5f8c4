"""Admission: defaults, then validation, for every object the server writes.

:func:`admit` is the one place the service calls before a write. It applies
``actors.apiserver.defaults.apply_defaults`` and then ``actors.apiserver.validation``'s
checks, whose findings become one ``InvalidArgument``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from proto import rpc


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"actors.apiserver.{name}")
    except ImportError:
        return None


def admit(obj: Any, *, old: Any | None = None) -> Any:
    """A defaulted copy of ``obj``; ``InvalidArgument`` when it is not valid."""
    defaults = _module("defaults")
    out = obj if defaults is None else defaults.apply_defaults(obj)
    validation = _module("validation")
    if validation is not None:
        errors = validation.validate(out, old=old)
        if errors:
            raise invalid(out, [str(e) for e in errors])
    return out


def invalid(obj: Any, problems: list[str]) -> rpc.InvalidArgument:
    """Kubernetes' wording: ``Pod "web" is invalid: spec.containers[0].image: ...``."""
    detail = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return rpc.InvalidArgument(f'{obj.kind} "{obj.metadata.name}" is invalid: {detail}')
