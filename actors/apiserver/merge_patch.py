"""JSON merge patch (RFC 7386) applied to objects through their JSON form.

A merge patch is a JSON document shaped like the object: objects merge key by key, a
``null`` removes a key, anything else (strings, numbers, lists) replaces the old value
whole. It is applied to the object's JSON with Kubernetes' field names (proto3's JSON
mapping: ``metadata.resourceVersion``, ``spec.nodeName``) and the result parsed back, so
an unknown field or a wrongly typed value is an ``InvalidArgument`` naming it.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from proto import rpc

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


def apply_merge_patch(obj: Any, patch_text: str) -> Any:
    """A new message: ``obj`` with the merge patch ``patch_text`` applied."""
    try:
        patch = json.loads(patch_text)
    except ValueError as exc:
        raise rpc.InvalidArgument(f"the patch is not valid JSON: {exc}") from None
    if not isinstance(patch, dict):
        raise rpc.InvalidArgument("a merge patch must be a JSON object")
    document = json_format.MessageToDict(obj)
    patched = merge(document, patch)
    out = type(obj)()
    try:
        json_format.ParseDict(patched, out)
    except json_format.ParseError as exc:
        raise rpc.InvalidArgument(f"the patched object is invalid: {exc}") from None
    return out
