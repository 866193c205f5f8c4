"""The node's image catalog: what an image name means to a runtime that pulls nothing.

The process runtime has no registry and no image filesystem: the "image" of a container
is the host. What a Kubernetes user still expects from an image is its default command
(Docker's ``ENTRYPOINT`` and ``CMD``, which Kubernetes calls ``command`` and ``args``),
its working directory and its environment (``PATH``). The catalog supplies those per
image name, so that ``image: busybox`` with no command, or ``image: python:3.12`` with
``command: ["python", "-m", "http.server"]``, do what they do on a real cluster.

Names. Registry, ``library/`` namespace, tag and digest are ignored:
``docker.io/library/busybox:1.36@sha256:...`` is ``busybox``, ``ghcr.io/acme/app:v2`` is
``acme/app`` (:func:`normalize`).

Built in (work on a Debian host as is):

============  ======================================================================
busybox       ``/bin/busybox sh`` when busybox is installed, else the host's ``sh``
python        the node agent's own interpreter (``sys.executable``); ``python`` and
              ``python3`` as a command name mean that interpreter, and its directory
              leads ``PATH``
alpine,       ``/bin/sh``
debian,
ubuntu
============  ======================================================================

nginx is not built in: the host's nginx (if any) is not the image's, with its config and
paths, and pretending otherwise would mislead. Add it, or anything else, in a catalog
file (``--image-catalog FILE``, YAML or JSON)::

    images:
      nginx:
        command: ["/usr/sbin/nginx", "-g", "daemon off;"]
      acme/app:
        command: ["/opt/app/bin/server"]   # ENTRYPOINT
        args: ["--port", "8080"]           # CMD
        workingDir: /opt/app
        env: {APP_HOME: /opt/app}
        aliases: {python: /usr/bin/python3}   # a bare command name -> host executable

Entries in the file replace built-in ones of the same name. An image the catalog does
not know is still usable when the container gives its own ``command`` (it runs on the
host); without one, :meth:`ImageCatalog.resolve` raises
:class:`~node_agent.pods.errors.ImageNotFoundError` (reported as ``ErrImagePull``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from node_agent.pods.errors import ImageNotFoundError

__all__ = ["CatalogError", "Image", "ImageCatalog", "normalize"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Image:
    """One catalog entry: Kubernetes' ``command`` (ENTRYPOINT) and ``args`` (CMD) defaults."""

    name: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)


def normalize(reference: str) -> str:
    """The catalog name of an image reference: no registry, ``library/``, tag or digest."""
    name = reference.strip().split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower()


def _builtin() -> dict[str, Image]:
    env = {"PATH": DEFAULT_PATH}
    busybox = "/bin/busybox"
    shell_cmd = (busybox, "sh") if os.access(busybox, os.X_OK) else ("sh",)
    python = sys.executable
    python_dir = str(Path(python).parent)
    images = [
        Image("busybox", args=shell_cmd, env=env),
        Image(
            "python",
            args=("python3",),
            env={"PATH": f"{python_dir}:{DEFAULT_PATH}"},
            aliases={"python": python, "python3": python},
        ),
        Image("alpine", args=("/bin/sh",), env=env),
        Image("debian", args=("/bin/sh",), env=env),
        Image("ubuntu", args=("/bin/sh",), env=env),
    ]
    return {image.name: image for image in images}


class ImageCatalog:
    """Image names to :class:`Image` entries; built-ins plus a catalog file's entries."""

    def __init__(self, images: Mapping[str, Image] | None = None) -> None:
        self._images = dict(_builtin() if images is None else images)

    @property
    def names(self) -> list[str]:
        return sorted(self._images)

    def lookup(self, reference: str) -> Image | None:
        return self._images.get(normalize(reference))

    def resolve(self, reference: str) -> Image:
        """The entry for ``reference``; :class:`ImageNotFoundError` saying how to add one."""
        image = self.lookup(reference)
        if image is None:
            name = normalize(reference)
            raise ImageNotFoundError(
                f'image "{reference}" is not in the node\'s image catalog (known: '
                f"{', '.join(self.names)}); give the container a command, or add the "
                f"image to a catalog file passed with --image-catalog, e.g.\n"
                f'images:\n  {name}:\n    command: ["/path/to/program"]'
            )
        return image

    @classmethod
    def load(cls, path: Path) -> ImageCatalog:
        """Built-ins overlaid with the entries of the catalog file ``path`` (YAML or JSON)."""
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise CatalogError(f"image catalog {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise CatalogError(f"image catalog {path}: not YAML or JSON: {exc}") from None
        images = _builtin()
        images.update(_parse(path, doc))
        return cls(images)


def _strings(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"image catalog {path}: {where} must be a list of strings")
    return tuple(value)


def _string_map(path: Path, where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CatalogError(f"image catalog {path}: {where} must map strings to strings")
    return dict(value)


_FIELDS = {"command", "args", "workingDir", "env", "aliases"}


def _parse(path: Path, doc: Any) -> dict[str, Image]:
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), dict):
        raise CatalogError(f"image catalog {path}: expected a mapping with an 'images' mapping")
    images = {}
    for reference, entry in doc["images"].items():
        where = f"images[{reference!r}]"
        if not isinstance(reference, str) or not normalize(reference):
            raise CatalogError(
                f"image catalog {path}: {where}: image names must be non-empty strings"
            )
        if not isinstance(entry, dict):
            raise CatalogError(f"image catalog {path}: {where} must be a mapping")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise CatalogError(
                f"image catalog {path}: {where}: unknown field(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(_FIELDS))}"
            )
        working_dir = entry.get("workingDir")
        if working_dir is not None and (
            not isinstance(working_dir, str) or not working_dir.startswith("/")
        ):
            raise CatalogError(f"image catalog {path}: {where}.workingDir must be an absolute path")
        aliases = _string_map(path, f"{where}.aliases", entry.get("aliases", {}))
        for alias, target in aliases.items():
            if "/" in alias or not target.startswith("/"):
                raise CatalogError(
                    f"image catalog {path}: {where}.aliases: {alias!r} must be a bare command "
                    f"name and {target!r} an absolute path"
                )
        name = normalize(reference)
        images[name] = Image(
            name=name,
            command=_strings(path, f"{where}.command", entry.get("command", [])),
            args=_strings(path, f"{where}.args", entry.get("args", [])),
            working_dir=working_dir,
            env={"PATH": DEFAULT_PATH, **_string_map(path, f"{where}.env", entry.get("env", {}))},
            aliases=aliases,
        )
    return images
