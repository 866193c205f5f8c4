"""``raftsman apply -f`` and ``raftsman create -f``.

``apply`` makes the cluster match the manifests: an object that does not exist is
created; one that exists gets a JSON merge patch with what the manifest changes, as
kubectl's client-side apply does for kinds without a strategic-merge schema:

* the manifest as last applied is kept in the annotation
  ``kubectl.kubernetes.io/last-applied-configuration``; a field that was in it and is no
  longer in the manifest is deleted (set to ``null`` in the patch);
* a field the manifest sets is patched when the live object differs (lists are replaced
  whole when they changed since the last apply or the live one does not hold them);
* fields the manifest leaves out (server defaults, a ClusterIP, a pod's node) stay;
* server-owned metadata and ``status`` in a manifest (as ``get -o yaml`` prints them) are
  ignored, so such output re-applies as ``unchanged``.

An empty patch prints ``unchanged``. The patch carries the ``resourceVersion`` it was
computed from, so a concurrent writer makes it fail with a conflict; it is then computed
again from a fresh read (up to :data:`CONFLICT_RETRIES` times).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from actors.client import AlreadyExists, ApiClient, ApiError, Conflict, NotFound, Unreachable
from proto.k8s import codec, kinds

from . import manifests, session
from .get import not_found
from .resources import display

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CONFLICT_RETRIES = 5
SERVER_OWNED = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)


def desired(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest in canonical form without what the server owns or apply records."""
    out = dict(doc)
    out.pop("status", None)
    meta = dict(out.get("metadata") or {})
    for key in SERVER_OWNED:
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def _covers(live: Any, want: Any) -> bool:
    """``live`` holds everything ``want`` says (extra defaulted fields are fine)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(_covers(live.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(live, list)
            and len(live) == len(want)
            and all(_covers(a, b) for a, b in zip(live, want, strict=True))
        )
    return bool(live == want)


def three_way(original: Any, modified: Mapping[str, Any], live: Any) -> dict[str, Any]:
    """The merge patch taking ``live`` to ``modified``; ``original`` is the last apply."""
    original = original if isinstance(original, dict) else {}
    live = live if isinstance(live, dict) else {}
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified and key in live:
            patch[key] = None
    for key, want in modified.items():
        have, before = live.get(key), original.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            sub = three_way(before, want, have)
            if sub:
                patch[key] = sub
        elif isinstance(want, list):
            # Replace a list when the live one lacks what the manifest says, or when the
            # manifest dropped something the last apply had; extra defaults are fine.
            dropped = before is not None and not _covers(want, before)
            if dropped or not _covers(have, want):
                patch[key] = want
        elif not _covers(have, want):
            patch[key] = want
    return patch


async def apply_one(api: ApiClient, manifest: manifests.Manifest) -> str:
    """Create or patch one object; ``created``, ``configured`` or ``unchanged``."""
    info = kinds.by_message(manifest.obj)
    meta = manifest.obj.metadata
    want = desired(codec.encode(manifest.obj))
    recorded = json.dumps(want, sort_keys=True, separators=(",", ":"))
    for _ in range(CONFLICT_RETRIES):
        try:
            live = await api.get(info, meta.name, namespace=meta.namespace)
        except NotFound:
            obj = codec.decode(want).obj
            obj.metadata.annotations[LAST_APPLIED] = recorded
            try:
                await api.create(obj)
            except AlreadyExists:
                continue  # created meanwhile: patch it instead
            return "created"
        live_doc = codec.encode(live)
        original = json.loads(live.metadata.annotations.get(LAST_APPLIED, "null") or "null")
        patch = three_way(original, want, live_doc)
        if not patch:
            return "unchanged"
        if original != want:
            patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = recorded
        patch.setdefault("metadata", {})["resourceVersion"] = live.metadata.resource_version
        try:
            await api.patch_merge(info, meta.name, patch, namespace=live.metadata.namespace)
        except Conflict:
            continue
        return "configured"
    raise Conflict(
        f'{info.resource} "{meta.name}": still conflicting after {CONFLICT_RETRIES} tries'
    )


def _object_name(manifest: manifests.Manifest) -> str:
    info = kinds.by_message(manifest.obj)
    return f"{display(info)}/{manifest.obj.metadata.name}"


def _with_namespace(items: list[manifests.Manifest], namespace: str | None) -> None:
    for item in items:
        info = kinds.by_message(item.obj)
        meta = item.obj.metadata
        if not info.namespaced:
            continue
        if namespace and meta.namespace and meta.namespace != namespace:
            raise session.UsageProblem(
                f"the namespace from the provided object {meta.namespace!r} does not match "
                f"the namespace {namespace!r}. You must pass '--namespace={meta.namespace}' "
                "to perform this operation."
            )
        if not meta.namespace:
            meta.namespace = namespace or "default"


_file_options = [
    click.option(
        "-f",
        "--filename",
        "filenames",
        multiple=True,
        metavar="FILE|DIR|-",
        help="Manifest file, directory or - for stdin (repeatable).",
    ),  # fmt: skip
    click.option("-R", "--recursive", is_flag=True, help="Read directories recursively."),
    click.option("-n", "--namespace", default=None, help="Namespace for objects without one."),
]


def _file_verb(name: str, help_text: str, verb: str) -> click.Command:
    @session.common_options
    def command(
        filenames: tuple[str, ...],
        recursive: bool,
        namespace: str | None,
        server: str | None,
        cluster: str | None,
        verbose: bool,
        dir_: str | None,
    ) -> None:
        options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
        try:
            items = manifests.read(filenames, recursive=recursive)
            _with_namespace(items, namespace)
        except session.UsageProblem as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None

        async def run(api: ApiClient) -> bool:
            ok = True
            for item in items:
                try:
                    if verb == "apply":
                        result = await apply_one(api, item)
                    elif verb == "replace":
                        result = await replace_one(api, item)
                    else:
                        await api.create(item.obj)
                        result = "created"
                except Unreachable:
                    raise
                except ApiError as exc:
                    click.echo(session.server_error(exc), err=True)
                    ok = False
                    continue
                click.echo(f"{_object_name(item)} {result}")
            return ok

        session.run(options, run)

    for option in reversed(_file_options):
        command = option(command)
    return click.command(name, help=help_text)(command)


apply = _file_verb(
    "apply", "Create or update objects from manifests (-f FILE|DIR|-), as kubectl apply.", "apply"
)
create = _file_verb("create", "Create objects from manifests (-f FILE|DIR|-).", "create")
replace = _file_verb(
    "replace",
    "Replace objects with the manifests' content (-f FILE|DIR|-); each must exist.",
    "replace",
)


async def replace_one(api: ApiClient, manifest: manifests.Manifest) -> str:
    """Write the manifest over the stored object: fields it leaves out are cleared, as
    with kubectl replace. A resourceVersion in the manifest is a precondition; without
    one the object is replaced at the version just read (a concurrent change conflicts)."""
    obj = manifest.obj
    info = kinds.by_message(obj)
    try:
        current = await api.get(info, obj.metadata.name, namespace=obj.metadata.namespace)
    except NotFound:
        raise not_found(info, obj.metadata.name) from None
    if not obj.metadata.resource_version:
        obj.metadata.resource_version = current.metadata.resource_version
    await api.update(obj)
    return "replaced"
