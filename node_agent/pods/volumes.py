"""A pod's volumes on the node: materialized under ``<pods_dir>/<uid>/volumes/<name>``.

Sources
    * ``emptyDir`` -- an empty directory (mode 0777, as the kubelet makes it), deleted
      with the pod by :meth:`PodVolumes.teardown`. ``medium: Memory``: the kubelet mounts
      a tmpfs, which needs root; we put the directory on the host's tmpfs instead,
      ``/dev/shm/raftsman-<digest of pods_dir>/<uid>/<name>`` (one root per node agent),
      so its files are RAM-backed too. Where ``/dev/shm`` is not a writable tmpfs the
      volume falls back to disk, with a logged warning and a ``MemoryMediumOnDisk``
      Warning event on the pod. ``sizeLimit`` is enforced as the kubelet does it, by
      eviction: :meth:`PodVolumes.emptydir_usage` measures a volume (:func:`disk_usage`,
      a bounded ``du``) for :mod:`node_agent.agent.eviction`.
    * ``configMap`` / ``secret`` -- one file per key (``binaryData`` included), or only
      the ``items`` listed, at their ``path``; ``defaultMode`` (0644 by default) or the
      item's ``mode``, always *without write bits* since Kubernetes mounts these volumes
      read-only (a process runtime cannot mount, so removing write permission is how the
      files stay read-only -- advisory for root). A missing object or key fails unless
      ``optional``; an optional missing object gives an empty directory.
    * ``hostPath`` -- the host path itself, after the kubelet's type check
      (``DirectoryOrCreate``, ``Directory``, ``FileOrCreate``, ``File``, ``Socket``,
      ``CharDevice``, ``BlockDevice``); a path the agent cannot read, or that does not
      exist when no type is given, is an error too (there is nothing to present).

Atomic updates. ConfigMap and Secret volumes use the kubelet's AtomicWriter layout, so
a reader never sees a half-updated set of files::

    volumes/config/
        ..2024_05_01_12_00_00.123456789/   the payload (a new directory per version)
        ..data -> ..2024_05_01_12_00_00.123456789
        game.properties -> ..data/game.properties
        ui.properties -> ..data/ui.properties

:meth:`PodVolumes.setup` is idempotent and cheap to call on every sync: when the source
changed it writes a new payload directory, swaps ``..data`` with one ``rename`` (atomic),
fixes the top-level symlinks and deletes the old payload; when nothing changed it writes
nothing.

Errors are :class:`~node_agent.pods.errors.VolumeError` with the kubelet's message,
``MountVolume.SetUp failed for volume "config" : configmap "game-demo" not found``.

Memory-medium directories are deleted with the pod (:meth:`PodVolumes.teardown` removes
them before the pod's directory). Since a pod's directory under ``pods_dir`` is created
before its memory directories and removed after them, a memory directory without a pod
directory is an orphan (an agent died halfway through a teardown): the first use of the
memory root in a process removes those.

Mounts. :func:`container_mounts` turns a container's ``volumeMounts`` into runtime
:class:`~node_agent.runtime.base.Mount` entries; a ``subPath`` mounts that path inside the
volume (created as a directory when missing, as the kubelet does). How the process
runtime presents mounts to a container is described in :mod:`node_agent.runtime.rootfs`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from node_agent.pods.errors import VolumeError
from node_agent.pods.sources import ObjectSource
from node_agent.runtime.base import Mount
from proto.k8s import core_pb2

__all__ = [
    "MEMORY_ROOT",
    "MEMORY_ON_DISK",
    "PodVolumes",
    "container_mounts",
    "disk_usage",
    "filesystem_type",
    "write_atomic",
]

logger = logging.getLogger(__name__)

DEFAULT_MODE = 0o644
_DATA = "..data"

MEMORY_ROOT = Path("/dev/shm")
"""Where ``medium: Memory`` emptyDirs go (a tmpfs on Linux)."""

MEMORY_ON_DISK = "MemoryMediumOnDisk"
"""The Warning event's reason when a ``medium: Memory`` emptyDir had to go to disk."""

MAX_USAGE_ENTRIES = 100_000
""":func:`disk_usage` stops after this many directory entries (its cost is bounded)."""

Warn = Callable[[core_pb2.Pod, str, str], None]
"""Records a Warning event on a pod: ``warn(pod, reason, message)``."""


@dataclass(frozen=True)
class _File:
    data: bytes
    mode: int


def _fail(volume: str, detail: str) -> VolumeError:
    return VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : {detail}')


def _check_relative(volume: str, path: str) -> str:
    if not path or path.startswith("/"):
        raise _fail(volume, f"path {path!r} must be a relative path")
    parts = path.split("/")
    if ".." in parts:
        raise _fail(volume, f"path {path!r} must not contain '..'")
    if parts[0].startswith(".."):
        raise _fail(volume, f"path {path!r} must not start with '..'")
    return posixpath.normpath(path)


class PodVolumes:
    """Sets up, measures and tears down the volumes of pods under ``pods_dir``.

    ``memory_root`` is the tmpfs for ``medium: Memory`` emptyDirs (None: always on disk);
    ``warn`` records Warning events (the agent's event recorder); ``mountinfo`` replaces
    ``/proc/self/mountinfo`` (tests).
    """

    def __init__(
        self,
        *,
        pods_dir: Path,
        sources: ObjectSource,
        memory_root: Path | None = MEMORY_ROOT,
        warn: Warn | None = None,
        mountinfo: str | None = None,
        max_usage_entries: int = MAX_USAGE_ENTRIES,
    ) -> None:
        self.pods_dir = Path(pods_dir)
        self.sources = sources
        self.memory_base = memory_root
        self.warn = warn
        self.max_usage_entries = max_usage_entries
        self._mountinfo = mountinfo
        self._memory: Path | None = None
        self._memory_problem: str | None = None
        self._warned: set[tuple[str, str]] = set()

    def pod_dir(self, pod_uid: str) -> Path:
        return self.pods_dir / pod_uid

    def volume_dir(self, pod_uid: str, name: str) -> Path:
        return self.pod_dir(pod_uid) / "volumes" / name

    def container_root(self, pod_uid: str, container_name: str) -> Path:
        """Where the process runtime builds the container's root (see ``rootfs``)."""
        return self.pod_dir(pod_uid) / "containers" / container_name / "root"

    # ------------------------------------------------------------------ memory medium

    def memory_root(self) -> Path | None:
        """This agent's directory on the tmpfs, or None (and :attr:`memory_problem` says
        why) when ``medium: Memory`` volumes go to disk. Decided once, on first use."""
        if self._memory is None and self._memory_problem is None:
            self._memory, self._memory_problem = self._open_memory_root()
        return self._memory

    @property
    def memory_problem(self) -> str | None:
        self.memory_root()
        return self._memory_problem

    def _open_memory_root(self) -> tuple[Path | None, str | None]:
        base = self.memory_base
        if base is None:
            return None, "no memory root is configured"
        try:
            fstype = filesystem_type(base, self._mountinfo)
        except OSError as exc:
            return None, f"cannot read the mount table: {exc}"
        if fstype != "tmpfs":
            found = "not mounted" if fstype is None else f"a {fstype} file system"
            return None, f"{base} is not a tmpfs ({found})"
        root = self.memory_location()
        assert root is not None
        try:
            root.mkdir(mode=0o755, exist_ok=True)
        except OSError as exc:
            return None, f"{base} is not writable: {exc.strerror or exc}"
        self._remove_memory_orphans(root)
        return root, None

    def memory_location(self) -> Path | None:
        """Where this agent's memory root is (or would be), without creating it."""
        if self.memory_base is None:
            return None
        digest = hashlib.sha256(str(self.pods_dir.resolve()).encode()).hexdigest()[:16]
        return self.memory_base / f"raftsman-{digest}"

    def _remove_memory_orphans(self, root: Path) -> None:
        for entry in os.listdir(root):
            if not self.pod_dir(entry).exists():
                logger.info("removing the memory volumes of pod %s, which is gone", entry)
                shutil.rmtree(root / entry, onerror=_retry_writable)

    def _memory_dir(self, pod: core_pb2.Pod, name: str) -> Path:
        uid = pod.metadata.uid
        root = self.memory_root()
        if root is not None:
            return root / uid / name
        if (uid, name) not in self._warned:
            self._warned.add((uid, name))
            message = (
                f'emptyDir volume "{name}" has medium Memory, but {self._memory_problem}: '
                "its files are on disk"
            )
            logger.warning("pod %s/%s: %s", pod.metadata.namespace, pod.metadata.name, message)
            if self.warn is not None:
                self.warn(pod, MEMORY_ON_DISK, message)
        return self.volume_dir(uid, name)

    # ------------------------------------------------------------------ usage

    def emptydir_path(self, pod: core_pb2.Pod, name: str) -> Path | None:
        """Where the emptyDir ``name`` of ``pod`` lives (None: no such emptyDir)."""
        for volume in pod.spec.volumes:
            if volume.name == name and volume.HasField("empty_dir"):
                if volume.empty_dir.medium == "Memory":
                    root = self.memory_root()
                    if root is not None:
                        return root / pod.metadata.uid / name
                return self.volume_dir(pod.metadata.uid, name)
        return None

    async def emptydir_usage(
        self, pod: core_pb2.Pod, name: str, *, stop_above: int | None = None
    ) -> int | None:
        """Bytes used by the emptyDir ``name`` of ``pod`` (:func:`disk_usage`, in a worker
        thread); None while it does not exist (not set up yet, or no such emptyDir)."""
        path = self.emptydir_path(pod, name)
        if path is None:
            return None
        measure = partial(
            disk_usage, path, stop_above=stop_above, max_entries=self.max_usage_entries
        )
        try:
            return await trio.to_thread.run_sync(measure, abandon_on_cancel=True)
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ setup

    async def setup(self, pod: core_pb2.Pod) -> dict[str, Path]:
        """Make every volume of ``pod`` current; the host path of each, by volume name."""
        uid = pod.metadata.uid
        if not uid:
            raise ValueError("the pod has no uid")
        paths = {}
        for volume in pod.spec.volumes:
            paths[volume.name] = await self._setup_one(pod, volume)
        return paths

    async def _setup_one(self, pod: core_pb2.Pod, volume: core_pb2.Volume) -> Path:
        uid = pod.metadata.uid
        namespace = pod.metadata.namespace or "default"
        target = self.volume_dir(uid, volume.name)
        if volume.HasField("empty_dir"):
            if volume.empty_dir.medium == "Memory":
                # The pod's directory first: a memory directory without one is an orphan.
                self.pod_dir(uid).mkdir(parents=True, exist_ok=True)
                target = self._memory_dir(pod, volume.name)
            if not target.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(0o777)
            return target
        if volume.HasField("config_map"):
            source = volume.config_map
            config_map = await self.sources.config_map(namespace, source.name)
            if config_map is None and not source.optional:
                raise _fail(volume.name, f'configmap "{source.name}" not found')
            content: dict[str, bytes] = {}
            if config_map is not None:
                content = {k: v.encode() for k, v in config_map.data.items()}
                content.update(config_map.binary_data)
            payload = _payload(
                volume.name,
                content,
                source.items,
                source,
                "configmap references non-existent config key",
            )
            write_atomic(target, payload)
            return target
        if volume.HasField("secret"):
            ssource = volume.secret
            secret = await self.sources.secret(namespace, ssource.secret_name)
            if secret is None and not ssource.optional:
                raise _fail(volume.name, f'secret "{ssource.secret_name}" not found')
            data = {} if secret is None else dict(secret.data)
            payload = _payload(
                volume.name, data, ssource.items, ssource, "references non-existent secret key"
            )
            write_atomic(target, payload)
            return target
        if volume.HasField("host_path"):
            return _host_path(volume.name, volume.host_path)
        raise _fail(
            volume.name, "no supported volume source (emptyDir, configMap, secret, hostPath)"
        )

    def teardown(self, pod_uid: str) -> None:
        """Delete everything the pod had on the node (volumes, memory volumes, container
        roots); the pod's directory last.

        Never follows symlinks: a hostPath volume's contents are left alone.
        """
        self._warned = {key for key in self._warned if key[0] != pod_uid}
        root = self.memory_location()
        if root is not None and (root / pod_uid).exists():
            shutil.rmtree(root / pod_uid, onerror=_retry_writable)
            try:
                root.rmdir()  # the last pod with memory volumes leaves nothing in /dev/shm
            except OSError:
                pass
        directory = self.pod_dir(pod_uid)
        if not directory.exists():
            return
        shutil.rmtree(directory, onerror=_retry_writable)


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the file system ``path`` is on (``tmpfs``, ``ext4``), from the mount
    table (``/proc/self/mountinfo`` unless given); None when no mount covers it."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        # The last of several mounts on one point is the one in effect.
        if inside and len(point) >= len(best):
            best, best_type = point, tail[0]
    return best_type


def disk_usage(
    path: Path, *, stop_above: int | None = None, max_entries: int = MAX_USAGE_ENTRIES
) -> int:
    """Bytes allocated to ``path`` and everything under it, as ``du -s -x`` counts them.

    Allocated blocks (sparse files count what they hold), each hard-linked file once; never
    follows symlinks or crosses into another file system; entries that vanish while it
    walks are skipped. Bounded cost: it returns what it has counted as soon as that is
    above ``stop_above``, or after ``max_entries`` directory entries (then the result is a
    lower bound). Raises FileNotFoundError when ``path`` does not exist.
    """
    top = os.lstat(path)
    device = top.st_dev
    total = top.st_blocks * 512
    seen: set[int] = set()
    entries = 0
    pending = [os.fspath(path)] if stat.S_ISDIR(top.st_mode) else []
    while pending:
        try:
            scanner = os.scandir(pending.pop())
        except OSError:
            continue
        with scanner:
            for entry in scanner:
                entries += 1
                if entries > max_entries:
                    return total
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_dev != device:
                    continue
                if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                    if info.st_ino in seen:
                        continue
                    seen.add(info.st_ino)
                total += info.st_blocks * 512
                if stop_above is not None and total > stop_above:
                    return total
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
    return total


def _retry_writable(function: Callable[[str], object], path: str, _: object) -> None:
    """rmtree's error handler: a container may have left a directory without write bit."""
    os.chmod(os.path.dirname(path), stat.S_IRWXU)
    function(path)


def _payload(
    volume: str,
    content: Mapping[str, bytes],
    items: Iterable[core_pb2.KeyToPath],
    source: core_pb2.ConfigMapVolumeSource | core_pb2.SecretVolumeSource,
    missing: str,
) -> dict[str, _File]:
    default_mode = source.default_mode if source.HasField("default_mode") else DEFAULT_MODE
    if not 0 <= default_mode <= 0o777:
        raise _fail(volume, f"defaultMode {default_mode:#o} must be between 0 and 0777")
    payload = {}
    if not items:
        for key, data in content.items():
            payload[_check_relative(volume, key)] = _File(data, default_mode)
        return payload
    for item in items:
        if item.key not in content:
            if source.optional:
                continue
            raise _fail(volume, f"{missing}: {item.key}")
        mode = item.mode if item.HasField("mode") else default_mode
        if not 0 <= mode <= 0o777:
            raise _fail(volume, f"mode {mode:#o} of item {item.key} must be between 0 and 0777")
        payload[_check_relative(volume, item.path or item.key)] = _File(content[item.key], mode)
    return payload


def _current(target: Path) -> dict[str, _File] | None:
    data_dir = target / _DATA
    if not data_dir.is_symlink():
        return None
    found = {}
    base = data_dir.resolve()
    for root, _, files in os.walk(base):
        for name in files:
            path = Path(root) / name
            found[str(path.relative_to(base))] = _File(
                path.read_bytes(), stat.S_IMODE(path.stat().st_mode)
            )
    return found


def write_atomic(target: Path, payload: Mapping[str, _File]) -> bool:
    """Make ``target`` hold ``payload`` (the AtomicWriter layout); False when it already did."""
    wanted = {path: _File(f.data, f.mode & ~0o222) for path, f in payload.items()}
    if _current(target) == wanted:
        return False
    target.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    new_dir = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=target))
    new_dir.chmod(0o755)
    for relative, file in wanted.items():
        path = new_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data)
        path.chmod(file.mode)
    old = os.readlink(target / _DATA) if (target / _DATA).is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(new_dir.name, tmp_link)
    os.replace(tmp_link, target / _DATA)
    tops = {relative.split("/")[0] for relative in wanted}
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in tops:
            (target / entry).unlink()
    for top in tops:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"{_DATA}/{top}", link)
    if old is not None and old != new_dir.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


_TYPES = {
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def _host_path(volume: str, source: core_pb2.HostPathVolumeSource) -> Path:
    path = Path(source.path)
    if not source.path.startswith("/"):
        raise _fail(volume, f"hostPath {source.path!r} must be an absolute path")
    kind = source.type if source.HasField("type") else ""
    try:
        if kind == "DirectoryOrCreate" and not path.exists():
            path.mkdir(mode=0o755, parents=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.touch(mode=0o644)
    except OSError as exc:
        raise _fail(volume, f"hostPath {path}: cannot create it: {exc.strerror or exc}") from None
    if kind in ("DirectoryOrCreate", "Directory"):
        if not path.is_dir():
            raise _fail(volume, f"hostPath type check failed: {path} is not a directory")
    elif kind in ("FileOrCreate", "File"):
        if not path.is_file():
            raise _fail(volume, f"hostPath type check failed: {path} is not a file")
    elif kind in _TYPES:
        check, what = _TYPES[kind]
        try:
            ok = check(path.stat().st_mode)
        except OSError:
            ok = False
        if not ok:
            raise _fail(volume, f"hostPath type check failed: {path} {what}")
    elif kind != "":
        raise _fail(volume, f"{kind} is an invalid volume type")
    elif not path.exists():
        raise _fail(volume, f"hostPath {path} does not exist on the node")
    if not os.access(path, os.R_OK):
        raise _fail(
            volume,
            f"hostPath {path} is not readable by the node agent (uid {os.getuid()}): permission denied",
        )
    return path


def container_mounts(
    container: core_pb2.Container, volume_paths: Mapping[str, Path]
) -> tuple[Mount, ...]:
    """The runtime mounts of ``container`` given the host path of each pod volume."""
    mounts = []
    for volume_mount in container.volume_mounts:
        if volume_mount.name not in volume_paths:
            raise VolumeError(
                f'volumeMount "{volume_mount.name}" of container {container.name} refers to '
                "no volume of the pod"
            )
        host = volume_paths[volume_mount.name]
        if volume_mount.sub_path:
            sub = _check_relative(volume_mount.name, volume_mount.sub_path)
            target = host / sub
            if not target.exists() and not target.is_symlink():
                if not host.is_dir():
                    raise _fail(
                        volume_mount.name, f"subPath {sub!r}: the volume is not a directory"
                    )
                target.mkdir(parents=True, exist_ok=True)
            host = target
        mounts.append(
            Mount(
                name=volume_mount.name,
                container_path=volume_mount.mount_path,
                host_path=host,
                read_only=volume_mount.read_only,
            )
        )
    return tuple(mounts)
