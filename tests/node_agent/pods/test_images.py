"""The image catalog: names, built-in entries that run on this host, catalog files, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node_agent.pods.errors import ImageNotFoundError
from node_agent.pods.images import CatalogError, ImageCatalog, normalize


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("busybox", "busybox"),
        ("busybox:1.36", "busybox"),
        ("docker.io/library/busybox:1.36", "busybox"),
        ("library/busybox", "busybox"),
        ("python:3.12-slim", "python"),
        ("ghcr.io/acme/app:v2", "acme/app"),
        ("localhost:5000/app", "app"),
        ("registry.example.com:5000/team/app@sha256:abcd", "team/app"),
        ("acme/app", "acme/app"),
        ("Ubuntu:22.04", "ubuntu"),
    ],
)
def test_normalize(reference: str, name: str) -> None:
    assert normalize(reference) == name


def _runs(argv: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    # As in a container: stdin is /dev/null, so a shell or an interpreter exits at once.
    return subprocess.run(
        list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
    )


@pytest.mark.parametrize("reference", ["busybox", "python:3.11", "alpine", "debian:12", "ubuntu"])
def test_built_in_images_default_commands_run_on_this_host(reference: str) -> None:
    image = ImageCatalog().resolve(reference)
    argv = image.command + image.args
    argv = (image.aliases.get(argv[0], argv[0]), *argv[1:])
    assert _runs(argv, dict(image.env)).returncode == 0


def test_python_image_means_the_agents_interpreter() -> None:
    image = ImageCatalog().resolve("docker.io/library/python:3.12")
    assert image.aliases["python"] == sys.executable
    assert image.env["PATH"].split(":")[0] == os.path.dirname(sys.executable)


def test_unknown_image_says_how_to_add_it() -> None:
    with pytest.raises(
        ImageNotFoundError, match=r'image "acme/app:v1" is not in the node\'s image catalog'
    ) as info:
        ImageCatalog().resolve("acme/app:v1")
    assert "--image-catalog" in str(info.value) and "acme/app:" in str(info.value)
    assert info.value.reason == "ErrImagePull"


def test_catalog_file_adds_and_replaces_entries(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(
        "images:\n"
        "  docker.io/acme/app:v1:\n"
        "    command: [/opt/app/bin/server]\n"
        "    args: [--port, '8080']\n"
        "    workingDir: /opt/app\n"
        "    env: {APP_HOME: /opt/app}\n"
        "  busybox:\n"
        "    args: [/bin/sh]\n"
    )
    catalog = ImageCatalog.load(path)
    app = catalog.resolve("acme/app:v2")
    assert (app.command, app.args, app.working_dir) == (
        ("/opt/app/bin/server",),
        ("--port", "8080"),
        "/opt/app",
    )
    assert app.env["APP_HOME"] == "/opt/app" and "PATH" in app.env
    assert catalog.resolve("busybox").args == ("/bin/sh",)
    assert catalog.lookup("python") is not None  # built-ins stay


def test_catalog_file_may_be_json(tmp_path: Path) -> None:
    path = tmp_path / "images.json"
    path.write_text('{"images": {"tool": {"command": ["/usr/bin/env"]}}}')
    assert ImageCatalog.load(path).resolve("tool").command == ("/usr/bin/env",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("images: [a, b]", "expected a mapping with an 'images' mapping"),
        (
            "images:\n  app: {command: /bin/true}",
            r"images\['app'\].command must be a list of strings",
        ),
        (
            "images:\n  app: {entrypoint: [x]}",
            r"unknown field\(s\) entrypoint; allowed: aliases, args, command, env, workingDir",
        ),
        ("images:\n  app: {workingDir: relative}", "workingDir must be an absolute path"),
        ("images:\n  app: {aliases: {python: python3}}", "must be a bare command name"),
        ("images: {app: [", "not YAML or JSON"),
    ],
)
def test_bad_catalog_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message):
        ImageCatalog.load(path)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="No such file or directory"):
        ImageCatalog.load(tmp_path / "absent.yaml")
