"""How process-runtime containers see their mounts: a root of symlinks, env, path mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_agent.runtime import logs, rootfs
from node_agent.runtime.base import Mount, StartError, WorkingDirError, exec_capture
from node_agent.runtime.process import ProcessRuntime
from tests.node_agent.runtime.conftest import SpecFactory


def _volume(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    directory = tmp_path / "volumes" / name
    directory.mkdir(parents=True)
    for relative, text in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    return directory


def test_mounts_appear_as_symlinks_under_the_root(tmp_path: Path) -> None:
    config = _volume(tmp_path, "config", {"game.properties": "lives=3\n"})
    data = _volume(tmp_path, "data", {})
    root = tmp_path / "root"
    mounts = [Mount("config", "/etc/config", config), Mount("data", "/var/lib/data/", data)]
    rootfs.prepare_root(root, mounts)
    assert (root / "etc" / "config").readlink() == config
    assert (root / "etc/config/game.properties").read_text() == "lives=3\n"
    assert (root / "var/lib/data").resolve() == data.resolve()
    # Preparing again (a restarted container) replaces the links.
    other = _volume(tmp_path, "other", {})
    rootfs.prepare_root(root, [Mount("config", "/etc/config", other)])
    assert (root / "etc" / "config").readlink() == other


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["/data", "/data/cache"], "mount path /data/cache is inside mount path /data"),
        (["/data", "/data/"], "two volumes are mounted at /data"),
        (["relative/path"], "must be absolute"),
        (["/a/../etc"], "must not contain '..'"),
        (["/"], "cannot be mounted at '/'"),
    ],
)
def test_bad_mount_layouts_are_refused(tmp_path: Path, paths: list[str], message: str) -> None:
    mounts = [Mount(f"v{i}", path, tmp_path) for i, path in enumerate(paths)]
    with pytest.raises(StartError, match=message):
        rootfs.prepare_root(tmp_path / "root", mounts)


def test_paths_resolve_through_the_longest_mount(tmp_path: Path) -> None:
    mounts = [Mount("a", "/srv", tmp_path / "a"), Mount("b", "/srv2/x", tmp_path / "b")]
    root = tmp_path / "root"
    assert rootfs.resolve(root, mounts, "/srv/www/index.html") == tmp_path / "a" / "www/index.html"
    assert rootfs.resolve(root, mounts, "/srv") == tmp_path / "a"
    assert rootfs.resolve(root, mounts, "/srv2/x/y") == tmp_path / "b" / "y"
    assert rootfs.resolve(root, mounts, "/srv2/y") == Path("/srv2/y")  # the host's own
    assert rootfs.resolve(root, mounts, "relative") == root / "relative"


def test_working_directory_rules(tmp_path: Path) -> None:
    app = _volume(tmp_path, "app", {"src/main.py": ""})
    mounts = [Mount("app", "/app", app)]
    root = tmp_path / "root"
    assert rootfs.working_directory(root, mounts, None) == root
    assert rootfs.working_directory(root, mounts, "/app/src") == app / "src"
    assert rootfs.working_directory(root, mounts, "/tmp") == Path("/tmp")
    with pytest.raises(
        WorkingDirError, match=r'"/app/nope" \(host path .*/app/nope\) does not exist'
    ):
        rootfs.working_directory(root, mounts, "/app/nope")
    with pytest.raises(WorkingDirError, match="is not a directory"):
        rootfs.working_directory(root, mounts, "/app/src/main.py")
    with pytest.raises(WorkingDirError, match="must be an absolute path"):
        rootfs.working_directory(root, mounts, "src")


def test_mount_env_names_each_volume(tmp_path: Path) -> None:
    mounts = [
        Mount("config-vol", "/etc/config", tmp_path / "c"),
        Mount("config-vol", "/etc/again", tmp_path / "c" / "sub"),
        Mount("data.v2", "/data", tmp_path / "d"),
    ]
    assert rootfs.mount_env(tmp_path / "root", mounts) == {
        "RAFTSMAN_ROOT": str(tmp_path / "root"),
        "RAFTSMAN_MOUNT_CONFIG_VOL": str(tmp_path / "c"),
        "RAFTSMAN_MOUNT_DATA_V2": str(tmp_path / "d"),
    }


async def test_a_container_reads_its_mounts(
    runtime: ProcessRuntime, make_spec: SpecFactory, tmp_path: Path
) -> None:
    config = _volume(tmp_path, "config", {"game.properties": "lives=3\n"})
    scripts = _volume(tmp_path, "scripts", {"run.sh": "#!/bin/sh\necho ran from the volume\n"})
    (scripts / "run.sh").chmod(0o755)
    spec = make_spec(
        "reader",
        ["/scripts/run.sh"],
        mounts=(Mount("config", "/etc/config", config), Mount("scripts", "/scripts", scripts)),
    )
    container_id = await runtime.start(spec)
    assert (await runtime.wait(container_id)).exit_code == 0
    assert [r.content for r in logs.read_log(spec.log_path)] == [b"ran from the volume"]
    spec = make_spec(
        "reader2",
        ["sleep", "1000"],
        mounts=(Mount("config", "/etc/config", config),),
    )
    container_id = await runtime.start(spec)
    result = await exec_capture(
        runtime,
        container_id,
        [
            "sh",
            "-c",
            'cat etc/config/game.properties; cat "$RAFTSMAN_ROOT/etc/config/game.properties"; '
            'cat "$RAFTSMAN_MOUNT_CONFIG/game.properties"',
        ],
    )
    assert (result.exit_code, result.stdout) == (0, b"lives=3\n" * 3)
