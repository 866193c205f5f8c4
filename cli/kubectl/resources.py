"""What ``get``/``delete`` arguments name: ``KIND [NAME...]``, ``kind/name ...``,
``kind1,kind2`` and ``all``, in every spelling :func:`proto.k8s.kinds.lookup` accepts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proto.k8s import kinds
from proto.k8s.kinds import KindInfo

from .session import UsageProblem

# kubectl's "all" category, in its order.
ALL = ("pods", "services", "daemonsets", "deployments", "replicasets", "jobs", "cronjobs")


@dataclass(frozen=True)
class Request:
    """One kind and the names asked for (empty: every object of the kind)."""

    info: KindInfo
    names: tuple[str, ...] = ()


def display(info: KindInfo) -> str:
    """How kubectl prefixes names: ``pod``, ``deployment.apps``, ``job.batch``."""
    return f"{info.singular}.{info.group}" if info.group else info.singular


def lookup(name: str) -> KindInfo:
    try:
        return kinds.lookup(name)
    except kinds.UnknownKind as exc:
        hint = f"; did you mean {' or '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise UsageProblem(f'the server doesn\'t have a resource type "{name}"{hint}') from None


def _kinds(spec: str) -> list[KindInfo]:
    out: list[KindInfo] = []
    for part in (p for p in spec.split(",") if p):
        for info in [lookup(k) for k in ALL] if part.lower() == "all" else [lookup(part)]:
            if info not in out:
                out.append(info)
    return out


def parse(args: Sequence[str]) -> list[Request]:
    """The requests ``args`` make, in order; :class:`UsageProblem` for a bad mix."""
    if not args:
        raise UsageProblem("you must specify the type of resource to get, e.g. `pods`")
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise UsageProblem("there is no need to specify a resource type as a separate "
                               "argument when passing arguments in resource/name form")  # fmt: skip
        merged: dict[str, list[str]] = {}
        found: dict[str, KindInfo] = {}
        for arg in args:
            kind, _, name = arg.partition("/")
            if not name:
                raise UsageProblem(f"arguments in resource/name form must have a name: {arg!r}")
            info = lookup(kind)
            found[info.kind] = info
            merged.setdefault(info.kind, []).append(name)
        return [Request(found[k], tuple(names)) for k, names in merged.items()]
    infos = _kinds(args[0])
    names = tuple(args[1:])
    if names and len(infos) != 1:
        raise UsageProblem("names may follow only a single resource type")
    return [Request(info, names) for info in infos]
