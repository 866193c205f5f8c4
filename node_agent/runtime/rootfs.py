"""How a container of the process runtime sees its volume mounts: a root of symlinks.

Without root there are no mount namespaces and no bind mounts, so a process cannot find
``/etc/config`` where its pod spec mounted a ConfigMap. The process runtime therefore gives
every container a *root directory* (``ContainerSpec.root_dir``) and presents each mount
there as a symlink: a volume mounted at ``/etc/config`` appears as
``<root_dir>/etc/config -> <volume's host path>``. The convention a program relies on:

* the working directory is ``root_dir`` unless the spec names one, so the relative path
  ``etc/config/game.properties`` reaches the mounted file;
* ``RAFTSMAN_ROOT`` holds ``root_dir``, so ``$RAFTSMAN_ROOT/etc/config`` works anywhere;
* ``RAFTSMAN_MOUNT_<NAME>`` holds the host path of the mount of volume ``<name>``
  (upper-cased, characters other than letters and digits as ``_``; the first mount of a
  volume wins when a container mounts it twice);
* an absolute ``argv[0]`` or working directory inside a mount path is translated to the
  host path (``command: ["/scripts/run.sh"]`` runs the file from the volume); other
  absolute paths are the host's own -- the "image" of the process runtime is the host.
  Arguments are never rewritten.

Nested mount paths (``/data`` and ``/data/cache``) are refused: the inner symlink would
have to be created inside the outer volume. ``readOnly`` cannot be enforced on a symlink;
it is advisory here (ConfigMap and Secret files are written without write permission).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from node_agent.runtime.base import Mount, StartError, WorkingDirError

__all__ = ["mount_env", "prepare_root", "resolve", "working_directory"]


def _normalize(container_path: str) -> str:
    if not container_path.startswith("/"):
        raise StartError(f"mount path {container_path!r} must be absolute")
    if ".." in container_path.split("/"):
        raise StartError(f"mount path {container_path!r} must not contain '..'")
    normal = posixpath.normpath(container_path)
    if normal in ("/", "//"):
        raise StartError("a volume cannot be mounted at '/' by the process runtime")
    return normal


def _check_nesting(paths: Sequence[str]) -> None:
    ordered = sorted(paths)
    for outer, inner in zip(ordered, ordered[1:], strict=False):
        if inner == outer:
            raise StartError(f"two volumes are mounted at {outer}")
        if inner.startswith(outer + "/"):
            raise StartError(
                f"mount path {inner} is inside mount path {outer}; "
                "the process runtime does not support nested mounts"
            )


def prepare_root(root_dir: Path, mounts: Sequence[Mount]) -> None:
    """Create ``root_dir`` with one symlink per mount (replacing older ones atomically)."""
    paths = [_normalize(m.container_path) for m in mounts]
    _check_nesting(paths)
    root_dir.mkdir(parents=True, exist_ok=True)
    for mount, path in zip(mounts, paths, strict=True):
        link = root_dir / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() and not link.is_symlink():
            if link.is_dir() and not any(link.iterdir()):
                link.rmdir()
            else:
                raise StartError(f"cannot mount {mount.name} at {path}: {link} already exists")
        tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(mount.host_path, tmp)
        os.replace(tmp, link)


def resolve(root_dir: Path, mounts: Sequence[Mount], container_path: str) -> Path:
    """The host path behind ``container_path``: through the longest mount prefix, else as is."""
    if not container_path.startswith("/"):
        return root_dir / container_path
    path = posixpath.normpath(container_path)
    best: tuple[int, Mount] | None = None
    for mount in mounts:
        prefix = posixpath.normpath(mount.container_path)
        if path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), mount)
    if best is None:
        return Path(path)
    rest = path[best[0] :].lstrip("/")
    return best[1].host_path / rest if rest else best[1].host_path


def working_directory(root_dir: Path, mounts: Sequence[Mount], working_dir: str | None) -> Path:
    """The host directory to run in; :class:`WorkingDirError` when it is not a directory."""
    if working_dir is None or working_dir == "":
        return root_dir
    if not working_dir.startswith("/"):
        raise WorkingDirError(f'working directory "{working_dir}" must be an absolute path')
    host = resolve(root_dir, mounts, working_dir)
    if not host.exists():
        where = "" if str(host) == working_dir else f" (host path {host})"
        raise WorkingDirError(
            f'working directory "{working_dir}"{where} does not exist: the process runtime '
            "runs containers on the host's filesystem, so the directory must exist on the "
            "node or inside a volume mount"
        )
    if not host.is_dir():
        raise WorkingDirError(f'working directory "{working_dir}" ({host}) is not a directory')
    return host


_NOT_NAME = re.compile(r"[^A-Za-z0-9]")


def mount_env(root_dir: Path, mounts: Sequence[Mount]) -> Mapping[str, str]:
    """``RAFTSMAN_ROOT`` and one ``RAFTSMAN_MOUNT_<NAME>`` per mounted volume."""
    env = {"RAFTSMAN_ROOT": str(root_dir)}
    for mount in mounts:
        key = "RAFTSMAN_MOUNT_" + _NOT_NAME.sub("_", mount.name).upper()
        env.setdefault(key, str(mount.host_path))
    return env
