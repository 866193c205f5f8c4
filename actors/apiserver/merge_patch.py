"""JSON merge patch (RFC 7386) applied to objects through their JSON form.

A merge patch is a JSON document shaped like the object: objects merge key by key, a
``null`` removes a key, anything else (strings, numbers, lists) replaces the old value
whole. It is applied to the object's Kubernetes JSON (:func:`proto.k8s.codec.encode`:
``metadata.resourceVersion``, ``spec.nodeName``, ``targetPort: 8080``) and the result
decoded back with the manifest codec, so a wrongly typed value is an ``InvalidArgument``
naming it, and an unknown field a warning (an error when ``strict``).
"""

from __future__ import annotations

import json
from typing import Any

from proto import rpc
from proto.k8s import codec

__all__ = ["apply_merge_patch", "merge"]


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386's MergePatch(target, patch) on plain JSON values."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def apply_merge_patch(
    obj: Any, patch_text: str, *, strict: bool = False
) -> tuple[Any, tuple[codec.FieldIssue, ...]]:
    """A new message: ``obj`` with the merge patch ``patch_text`` applied, and the
    unknown fields the patch names (an ``InvalidArgument`` when ``strict``)."""
    try:
        patch = json.loads(patch_text)
    except ValueError as exc:
        raise rpc.InvalidArgument(f"the patch is not valid JSON: {exc}") from None
    if not isinstance(patch, dict):
        raise rpc.InvalidArgument("a merge patch must be a JSON object")
    document = codec.encode(obj)
    patched = merge(document, patch)
    out = type(obj)()
    try:
        warnings = codec.decode_into(patched, out, strict=strict)
    except codec.DecodeError as exc:
        unknown = [i for i in exc.issues if i.message == "unknown field"]
        if strict and len(unknown) == len(exc.issues):
            raise strict_error(unknown) from None
        raise rpc.InvalidArgument(f"the patched object is invalid: {exc}") from None
    return out, warnings


def strict_error(unknown: list[codec.FieldIssue]) -> rpc.InvalidArgument:
    """Kubernetes' wording for unknown fields under ``fieldValidation=Strict``."""
    fields = ", ".join(f'unknown field "{i.path}"' for i in unknown)
    return rpc.InvalidArgument(f"strict decoding error: {fields}")
