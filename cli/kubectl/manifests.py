"""Reading ``-f`` arguments: files, directories (``-R``: recursively) and ``-`` (stdin).

Directories contribute their ``.yaml``, ``.yml`` and ``.json`` files in name order, as
kubectl does. Every document is decoded before anything is sent, so a typo in the last
file stops the whole apply before the first object changes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from proto.k8s import codec

from .session import UsageProblem

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    source: str
    doc: dict[str, Any]
    obj: Message


def _files(path: Path, recursive: bool) -> list[Path]:
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        return sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in SUFFIXES)
    if not path.exists():
        raise UsageProblem(f'the path "{path}" does not exist')
    return [path]


def read(filenames: Sequence[str], *, recursive: bool = False) -> list[Manifest]:
    """Every object the ``-f`` arguments hold, in order; :class:`UsageProblem` else."""
    if not filenames:
        raise UsageProblem("must specify one of -f and -k")
    texts: list[tuple[str, str]] = []
    for name in filenames:
        if name == "-":
            texts.append(("STDIN", sys.stdin.read()))
            continue
        for path in _files(Path(name), recursive):
            texts.append((str(path), path.read_text()))
    out = []
    for source, text in texts:
        try:
            for doc in codec.load_manifests(text):
                out.append(Manifest(source, doc, codec.decode(doc).obj))
        except codec.DecodeError as exc:
            raise UsageProblem(f"error validating {source!r}: {exc}") from None
    if not out:
        raise UsageProblem("no objects passed to apply")
    return out
