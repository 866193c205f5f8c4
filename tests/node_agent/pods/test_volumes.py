"""Pod volumes on disk: emptyDir, configMap/secret (atomic updates), hostPath, mounts, teardown."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node_agent.pods.errors import VolumeError
from node_agent.pods.limits import container_limits
from node_agent.pods.sources import StaticSources
from node_agent.pods.volumes import (
    MEMORY_ON_DISK,
    MEMORY_ROOT,
    PodVolumes,
    container_mounts,
    disk_usage,
    filesystem_type,
)
from node_agent.runtime.base import Limits
from proto.k8s import codec, core_pb2


def pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None) -> core_pb2.Pod:
    obj = codec.decode(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-7"},
            "spec": {
                "volumes": volumes,
                "containers": [{"name": "main", "image": "busybox", "volumeMounts": mounts or []}],
            },
        }
    ).obj
    assert isinstance(obj, core_pb2.Pod)
    return obj


def config_map(
    name: str, data: dict[str, str], binary: dict[str, bytes] | None = None
) -> core_pb2.ConfigMap:
    obj = core_pb2.ConfigMap()
    obj.metadata.name, obj.metadata.namespace = name, "default"
    obj.data.update(data)
    obj.binary_data.update(binary or {})
    return obj


def secret(name: str, data: dict[str, bytes]) -> core_pb2.Secret:
    obj = core_pb2.Secret()
    obj.metadata.name, obj.metadata.namespace = name, "default"
    obj.data.update(data)
    return obj


@pytest.fixture
def sources() -> StaticSources:
    return StaticSources(
        [
            config_map(
                "game",
                {"game.properties": "lives=3\n", "ui.properties": "color=red\n"},
                {"logo.png": b"\x89PNG"},
            ),
            secret("creds", {"password": b"s3cret"}),
        ]
    )


@pytest.fixture
def shm() -> Iterator[Path]:
    """A directory of this test on the host's tmpfs (``/dev/shm``), removed after it."""
    if filesystem_type(MEMORY_ROOT) != "tmpfs":
        pytest.skip(f"{MEMORY_ROOT} is not a tmpfs here")
    path = Path(tempfile.mkdtemp(prefix="raftsman-test-", dir=MEMORY_ROOT))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def volumes(tmp_path: Path, sources: StaticSources, shm: Path) -> PodVolumes:
    return PodVolumes(pods_dir=tmp_path / "pods", sources=sources, memory_root=shm)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_empty_dir_is_created_and_deleted_with_the_pod(volumes: PodVolumes) -> None:
    p = pod(
        [{"name": "scratch", "emptyDir": {}}, {"name": "ram", "emptyDir": {"medium": "Memory"}}]
    )
    paths = await volumes.setup(p)
    assert paths["scratch"] == volumes.volume_dir("uid-7", "scratch")
    assert paths["scratch"].is_dir() and paths["ram"].is_dir()
    assert _mode(paths["scratch"]) == 0o777
    (paths["scratch"] / "data.txt").write_text("kept across setups")
    locked = paths["scratch"] / "locked"
    locked.mkdir()
    (locked / "f").touch()
    locked.chmod(0o500)  # a container may leave this behind
    await volumes.setup(p)
    assert (paths["scratch"] / "data.txt").read_text() == "kept across setups"
    volumes.teardown("uid-7")
    assert not volumes.pod_dir("uid-7").exists()
    assert not paths["ram"].exists()


async def test_memory_medium_is_on_the_tmpfs_and_deleted_with_the_pod(
    tmp_path: Path, sources: StaticSources, shm: Path
) -> None:
    warnings: list[tuple[str, str, str]] = []
    volumes = PodVolumes(
        pods_dir=tmp_path / "pods",
        sources=sources,
        memory_root=shm,
        warn=lambda p, reason, message: warnings.append((p.metadata.name, reason, message)),
    )
    p = pod([{"name": "ram", "emptyDir": {"medium": "Memory"}}])
    paths = await volumes.setup(p)
    ram = paths["ram"]
    assert ram.parent.parent.parent == shm and ram.parent.name == "uid-7"
    assert filesystem_type(ram) == "tmpfs" and _mode(ram) == 0o777
    assert volumes.emptydir_path(p, "ram") == ram
    (ram / "blob").write_bytes(b"x" * 8192)
    assert await volumes.setup(p) == paths  # idempotent, contents kept
    assert (ram / "blob").stat().st_size == 8192
    assert warnings == []
    volumes.teardown("uid-7")
    assert not ram.parent.exists() and not volumes.pod_dir("uid-7").exists()
    assert os.listdir(shm) == []  # nothing left on the tmpfs


async def test_memory_medium_falls_back_to_disk_with_a_warning(
    tmp_path: Path, sources: StaticSources
) -> None:
    warnings: list[tuple[str, str, str]] = []
    disk = tmp_path / "not-tmpfs"
    disk.mkdir()
    volumes = PodVolumes(
        pods_dir=tmp_path / "pods",
        sources=sources,
        memory_root=disk,
        warn=lambda p, reason, message: warnings.append((p.metadata.name, reason, message)),
    )
    p = pod([{"name": "ram", "emptyDir": {"medium": "Memory"}}])
    paths = await volumes.setup(p)
    await volumes.setup(p)  # one warning per pod and volume, not per sync
    assert paths["ram"] == volumes.volume_dir("uid-7", "ram") and paths["ram"].is_dir()
    fstype = filesystem_type(disk)
    assert warnings == [
        (
            "web",
            MEMORY_ON_DISK,
            f'emptyDir volume "ram" has medium Memory, but {disk} is not a tmpfs '
            f"(a {fstype} file system): its files are on disk",
        )
    ]
    assert os.listdir(disk) == []
    volumes.teardown("uid-7")
    assert not volumes.pod_dir("uid-7").exists()


async def test_memory_volumes_of_pods_that_are_gone_are_removed(
    tmp_path: Path, sources: StaticSources, shm: Path
) -> None:
    first = PodVolumes(pods_dir=tmp_path / "pods", sources=sources, memory_root=shm)
    ram = (await first.setup(pod([{"name": "ram", "emptyDir": {"medium": "Memory"}}])))["ram"]
    (ram / "f").write_text("left behind")
    # The agent died halfway through the teardown: the pod's directory is gone, the
    # memory volume is not. The next agent on the same data directory removes it.
    shutil.rmtree(first.pod_dir("uid-7"))
    second = PodVolumes(pods_dir=tmp_path / "pods", sources=sources, memory_root=shm)
    assert second.memory_root() == ram.parent.parent
    assert not ram.parent.exists()


def test_filesystem_type_is_the_innermost_mount() -> None:
    mountinfo = (
        "22 1 8:1 / / rw,relatime - ext4 /dev/vda rw\n"
        "23 22 0:5 / /dev rw - devtmpfs udev rw\n"
        "24 23 0:6 / /dev/shm rw - tmpfs tmpfs rw\n"
        "25 22 0:7 / /mnt/my\\040disk rw - xfs /dev/vdb rw\n"
    )
    assert filesystem_type(Path("/dev/shm/raftsman-x/uid"), mountinfo) == "tmpfs"
    assert filesystem_type(Path("/dev/shmem"), mountinfo) == "devtmpfs"
    assert filesystem_type(Path("/mnt/my disk/a"), mountinfo) == "xfs"
    assert filesystem_type(Path("/var/lib"), mountinfo) == "ext4"
    assert filesystem_type(Path("/var"), "") is None


def test_disk_usage_counts_allocated_blocks_like_du(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    (root / "sub").mkdir(parents=True)
    base = disk_usage(root)
    (root / "sub" / "a").write_bytes(os.urandom(256 * 1024))
    with open(root / "sparse", "wb") as f:
        f.truncate(64 * 1024 * 1024)  # holds nothing
    os.link(root / "sub" / "a", root / "hardlink")  # the same blocks again
    outside = tmp_path / "outside"
    outside.write_bytes(os.urandom(512 * 1024))
    os.symlink(outside, root / "link")  # not followed
    used = disk_usage(root)
    assert 256 * 1024 <= used - base < 256 * 1024 + 64 * 1024
    # Bounded: it stops once above the limit it is asked about, or after max_entries.
    assert 0 < disk_usage(root, stop_above=1024) < used
    assert disk_usage(root, max_entries=1) < used
    with pytest.raises(FileNotFoundError):
        disk_usage(tmp_path / "missing")


async def test_emptydir_usage_of_a_pod(volumes: PodVolumes) -> None:
    p = pod(
        [
            {"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}},
            {"name": "cfg", "configMap": {"name": "game"}},
        ]
    )
    assert await volumes.emptydir_usage(p, "scratch") is None  # not set up yet
    paths = await volumes.setup(p)
    (paths["scratch"] / "blob").write_bytes(os.urandom(300 * 1024))
    used = await volumes.emptydir_usage(p, "scratch")
    assert used is not None and used >= 300 * 1024
    assert await volumes.emptydir_usage(p, "cfg") is None  # not an emptyDir
    assert await volumes.emptydir_usage(p, "nope") is None


async def test_config_map_files_with_atomic_layout_and_read_only_modes(volumes: PodVolumes) -> None:
    p = pod([{"name": "config", "configMap": {"name": "game"}}])
    target = (await volumes.setup(p))["config"]
    entries = sorted(os.listdir(target))
    assert entries[0].startswith("..20")  # the payload directory, named by its time
    assert entries[1:] == ["..data", "game.properties", "logo.png", "ui.properties"]
    assert os.readlink(target / "game.properties") == "..data/game.properties"
    assert (target / "game.properties").read_text() == "lives=3\n"
    assert (target / "logo.png").read_bytes() == b"\x89PNG"
    assert _mode(target / "game.properties") == 0o444  # defaultMode 0644 without write bits


async def test_config_map_update_swaps_the_data_atomically(
    volumes: PodVolumes, sources: StaticSources
) -> None:
    p = pod([{"name": "config", "configMap": {"name": "game"}}])
    target = (await volumes.setup(p))["config"]
    first = os.readlink(target / "..data")
    await volumes.setup(p)
    assert os.readlink(target / "..data") == first  # unchanged source: nothing rewritten
    sources.put(config_map("game", {"game.properties": "lives=5\n", "new.properties": "x=1\n"}))
    await volumes.setup(p)
    second = os.readlink(target / "..data")
    assert second != first
    assert not (target / first).exists()  # the old payload is gone
    assert (target / "game.properties").read_text() == "lives=5\n"
    assert (target / "new.properties").read_text() == "x=1\n"
    assert not (target / "ui.properties").exists() and not (target / "ui.properties").is_symlink()


async def test_items_paths_and_modes(volumes: PodVolumes) -> None:
    p = pod(
        [
            {
                "name": "config",
                "configMap": {
                    "name": "game",
                    "defaultMode": 0o600,
                    "items": [
                        {"key": "game.properties", "path": "conf/game.cfg"},
                        {"key": "ui.properties", "path": "ui", "mode": 0o755},
                    ],
                },
            },
            {"name": "secret", "secret": {"secretName": "creds"}},
        ]
    )
    paths = await volumes.setup(p)
    config = paths["config"]
    assert sorted(e for e in os.listdir(config) if not e.startswith("..")) == ["conf", "ui"]
    assert (config / "conf" / "game.cfg").read_text() == "lives=3\n"
    assert _mode(config / "conf" / "game.cfg") == 0o400
    assert _mode(config / "ui") == 0o555
    assert (paths["secret"] / "password").read_bytes() == b"s3cret"


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            {"name": "config", "configMap": {"name": "gone"}},
            'MountVolume.SetUp failed for volume "config" : configmap "gone" not found',
        ),
        (
            {"name": "creds", "secret": {"secretName": "gone"}},
            'MountVolume.SetUp failed for volume "creds" : secret "gone" not found',
        ),
        (
            {
                "name": "config",
                "configMap": {"name": "game", "items": [{"key": "nope", "path": "x"}]},
            },
            'MountVolume.SetUp failed for volume "config" : configmap references non-existent config key: nope',
        ),
        (
            {
                "name": "creds",
                "secret": {"secretName": "creds", "items": [{"key": "token", "path": "t"}]},
            },
            'MountVolume.SetUp failed for volume "creds" : references non-existent secret key: token',
        ),
        (
            {
                "name": "config",
                "configMap": {"name": "game", "items": [{"key": "ui.properties", "path": "../x"}]},
            },
            "must not contain '..'",
        ),
        ({"name": "nothing"}, "no supported volume source"),
    ],
)
async def test_volume_errors_use_the_kubelets_messages(
    volumes: PodVolumes, volume: dict[str, Any], message: str
) -> None:
    with pytest.raises(VolumeError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        await volumes.setup(pod([volume]))
    assert info.value.reason == "FailedMount"


async def test_optional_sources_may_be_missing(volumes: PodVolumes) -> None:
    p = pod(
        [
            {"name": "config", "configMap": {"name": "gone", "optional": True}},
            {
                "name": "keys",
                "configMap": {
                    "name": "game",
                    "optional": True,
                    "items": [{"key": "nope", "path": "x"}],
                },
            },
        ]
    )
    paths = await volumes.setup(p)
    assert [e for e in os.listdir(paths["config"]) if not e.startswith("..")] == []
    assert [e for e in os.listdir(paths["keys"]) if not e.startswith("..")] == []


async def test_host_path_types(volumes: PodVolumes, tmp_path: Path) -> None:
    existing = tmp_path / "host" / "dir"
    existing.mkdir(parents=True)
    a_file = tmp_path / "host" / "file"
    a_file.write_text("x")
    created_dir = tmp_path / "host" / "made"
    created_file = tmp_path / "host" / "made.txt"
    sock_path = tmp_path / "host" / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        p = pod(
            [
                {"name": "plain", "hostPath": {"path": str(existing)}},
                {"name": "dir", "hostPath": {"path": str(existing), "type": "Directory"}},
                {
                    "name": "mkdir",
                    "hostPath": {"path": str(created_dir), "type": "DirectoryOrCreate"},
                },
                {"name": "file", "hostPath": {"path": str(a_file), "type": "File"}},
                {"name": "touch", "hostPath": {"path": str(created_file), "type": "FileOrCreate"}},
                {"name": "sock", "hostPath": {"path": str(sock_path), "type": "Socket"}},
            ]
        )
        paths = await volumes.setup(p)
    finally:
        server.close()
    assert paths["plain"] == existing and paths["dir"] == existing
    assert created_dir.is_dir() and created_file.is_file()
    assert paths["touch"] == created_file


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("Directory", "file", "hostPath type check failed: {path} is not a directory"),
        ("File", "dir", "hostPath type check failed: {path} is not a file"),
        ("Socket", "file", "hostPath type check failed: {path} is not a socket file"),
        ("CharDevice", "file", "hostPath type check failed: {path} is not a character device"),
        ("Directory", "absent", "hostPath type check failed: {path} is not a directory"),
        ("", "absent", "hostPath {path} does not exist on the node"),
        ("Folder", "dir", "Folder is an invalid volume type"),
    ],
)
async def test_host_path_errors(
    volumes: PodVolumes, tmp_path: Path, kind: str, target: str, message: str
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    path = tmp_path / target
    source: dict[str, Any] = {"path": str(path)}
    if kind:
        source["type"] = kind
    with pytest.raises(VolumeError) as info:
        await volumes.setup(pod([{"name": "host", "hostPath": source}]))
    assert str(info.value) == 'MountVolume.SetUp failed for volume "host" : ' + message.format(
        path=path
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read everything")
async def test_unreadable_host_path(volumes: PodVolumes, tmp_path: Path) -> None:
    secret_dir = tmp_path / "private"
    secret_dir.mkdir(mode=0o000)
    try:
        with pytest.raises(VolumeError, match="is not readable by the node agent"):
            await volumes.setup(pod([{"name": "host", "hostPath": {"path": str(secret_dir)}}]))
    finally:
        secret_dir.chmod(0o700)


async def test_container_mounts_with_sub_paths(volumes: PodVolumes) -> None:
    p = pod(
        [{"name": "config", "configMap": {"name": "game"}}, {"name": "scratch", "emptyDir": {}}],
        mounts=[
            {"name": "config", "mountPath": "/etc/config", "readOnly": True},
            {"name": "config", "mountPath": "/etc/game.properties", "subPath": "game.properties"},
            {"name": "scratch", "mountPath": "/cache", "subPath": "a/b"},
        ],
    )
    paths = await volumes.setup(p)
    mounts = container_mounts(p.spec.containers[0], paths)
    assert [(m.name, m.container_path, m.read_only) for m in mounts] == [
        ("config", "/etc/config", True),
        ("config", "/etc/game.properties", False),
        ("scratch", "/cache", False),
    ]
    assert mounts[1].host_path.read_text() == "lives=3\n"
    assert mounts[2].host_path == paths["scratch"] / "a" / "b" and mounts[2].host_path.is_dir()
    bad = pod([], mounts=[{"name": "ghost", "mountPath": "/x"}])
    with pytest.raises(
        VolumeError, match='volumeMount "ghost" of container main refers to no volume'
    ):
        container_mounts(bad.spec.containers[0], {})


def test_container_limits_from_quantities() -> None:
    container = core_pb2.Container(name="main")
    assert container_limits(container) == Limits()
    container.resources.limits.update({"cpu": "0.1m", "memory": "64Mi"})
    assert container_limits(container) == Limits(cpu_millis=1, memory_bytes=64 * 1024 * 1024)
    container.resources.limits["cpu"] = "1.5"
    assert container_limits(container).cpu_millis == 1500
