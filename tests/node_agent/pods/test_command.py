"""A container's argv from image defaults, command and args (Kubernetes' table) with expansion."""

from __future__ import annotations

import sys

import pytest

from node_agent.pods.command import container_argv, resolve_argv
from node_agent.pods.errors import CommandError, ImageNotFoundError
from node_agent.pods.images import Image, ImageCatalog

IMAGE = Image("app", command=("/entry",), args=("--default",))


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ([], [], ("/entry", "--default")),
        (["/bin/run"], [], ("/bin/run",)),
        ([], ["--flag"], ("/entry", "--flag")),
        (["/bin/run"], ["--flag"], ("/bin/run", "--flag")),
    ],
)
def test_kubernetes_command_and_args_table(
    command: list[str], args: list[str], argv: tuple[str, ...]
) -> None:
    assert container_argv(IMAGE, command, args) == argv


def test_an_image_without_entrypoint_runs_args_alone() -> None:
    image = Image("busybox", args=("sh",))
    assert container_argv(image, [], []) == ("sh",)
    assert container_argv(image, [], ["echo", "hi"]) == ("echo", "hi")


def test_nothing_to_run_is_an_error() -> None:
    with pytest.raises(CommandError, match="no command specified"):
        container_argv(Image("empty"), [], [])


def test_aliases_map_bare_names_only() -> None:
    catalog = ImageCatalog()
    assert resolve_argv(catalog, "python:3.12", ["python", "-V"], [], {})[0] == sys.executable
    assert (
        resolve_argv(catalog, "python", ["/usr/bin/python3", "-V"], [], {})[0] == "/usr/bin/python3"
    )
    assert resolve_argv(catalog, "busybox", ["python", "-V"], [], {})[0] == "python"


def test_command_and_args_expand_against_the_env() -> None:
    env = {"GREETING": "hello", "TARGET": "world"}
    argv = resolve_argv(
        ImageCatalog(), "busybox", ["sh", "-c"], ["echo $(GREETING) $$(TARGET) $(NOPE)"], env
    )
    assert argv == ("sh", "-c", "echo hello $(TARGET) $(NOPE)")


def test_unknown_image_needs_a_command() -> None:
    catalog = ImageCatalog()
    assert resolve_argv(catalog, "acme/tool:1", ["/bin/echo", "x"], [], {}) == ("/bin/echo", "x")
    with pytest.raises(ImageNotFoundError, match='image "acme/tool:1"'):
        resolve_argv(catalog, "acme/tool:1", [], ["x"], {})
