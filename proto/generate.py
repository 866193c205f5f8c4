"""Regenerate the Python modules for every ``.proto`` file under ``proto/``.

Run from the repository root::

    python -m proto.generate          # rewrite *_pb2.py, *_pb2.pyi, *_pb2_grpc.py
    python -m proto.generate --check  # exit 1 if a checked-in module is stale

Sources are compiled with the repository root as the include path, so a file imports
another as ``import "proto/mvccpb/kv.proto";`` and the generated code imports
``proto.mvccpb.kv_pb2``. Generated modules are checked in so that an install needs no
protobuf compiler.

Staleness is judged on the compiled descriptors, not on the text of the generated files:
the text changes with the generator's version, the descriptor only when a ``.proto`` does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

PROTO_DIR = Path(__file__).resolve().parent
ROOT = PROTO_DIR.parent


def proto_sources() -> list[Path]:
    """Every ``.proto`` file under ``proto/``, as paths relative to the repository root."""
    return sorted(p.relative_to(ROOT) for p in PROTO_DIR.rglob("*.proto"))


def _protoc(args: Sequence[str]) -> None:
    from grpc_tools import protoc  # the test extra; not needed at run time

    well_known = str(resources.files("grpc_tools") / "_proto")
    argv = ["grpc_tools.protoc", f"-I{ROOT}", f"-I{well_known}", *args]
    if protoc.main(argv) != 0:
        raise SystemExit(f"protoc failed: {' '.join(argv)}")


def generate() -> None:
    sources = [str(ROOT / s) for s in proto_sources()]
    _protoc([f"--python_out={ROOT}", f"--pyi_out={ROOT}", f"--grpc_python_out={ROOT}", *sources])


def _module_name(source: Path) -> str:
    return ".".join(source.with_suffix("").parts) + "_pb2"


def _normalized(fdp: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """A copy without ``json_name``, which the Python generator leaves out of its modules."""
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(fdp)
    pending = list(out.message_type)
    while pending:
        message = pending.pop()
        for field in message.field:
            field.ClearField("json_name")
        pending.extend(message.nested_type)
    return out


def stale_modules() -> list[str]:
    """Names of generated modules whose descriptor differs from their ``.proto`` source."""
    sources = proto_sources()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        _protoc([f"--descriptor_set_out={out}", *(str(ROOT / s) for s in sources)])
        fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    expected = {f.name: f for f in fresh.file}
    stale = []
    for source in sources:
        name = _module_name(source)
        try:
            module = importlib.import_module(name)
        except ImportError:
            stale.append(f"{name} (missing)")
            continue
        checked_in = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        if _normalized(checked_in) != _normalized(expected[source.as_posix()]):
            stale.append(name)
        has_services = bool(expected[source.as_posix()].service)
        grpc_file = ROOT / source.with_name(source.stem + "_pb2_grpc.py")
        if has_services and not grpc_file.exists():
            stale.append(f"{name}_grpc (missing)")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proto.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale modules")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_modules()
        for name in stale:
            print(f"stale: {name}; run `python -m proto.generate`", file=sys.stderr)
        return 1 if stale else 0
    generate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
