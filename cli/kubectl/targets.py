"""Which objects a mutating verb acts on: ``KIND NAME...``, ``kind/name...``, ``-l`` or
``--all`` -- resolved against the server into ``(kind, namespace, name)`` triples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actors.client import ApiClient
from proto.k8s.kinds import KindInfo

from . import resources
from .session import UsageProblem


@dataclass(frozen=True)
class Target:
    info: KindInfo
    namespace: str
    name: str

    @property
    def display(self) -> str:
        """``deployment.apps/web``, as kubectl prints it."""
        return f"{resources.display(self.info)}/{self.name}"


async def resolve(
    api: ApiClient,
    args: Sequence[str],
    *,
    namespace: str,
    selector: str = "",
    all_: bool = False,
    verb: str,
) -> list[Target]:
    """The objects ``args`` (plus ``-l``/``--all``) name; :class:`UsageProblem` if none."""
    if not args:
        raise UsageProblem(f"you must specify the type of resource to {verb}, e.g. `pods`")
    requests = resources.parse(args)
    out: list[Target] = []
    for request in requests:
        info = request.info
        ns = namespace if info.namespaced else ""
        if request.names:
            if selector or all_:
                raise UsageProblem("names cannot be combined with --selector or --all")
            out.extend(Target(info, ns, name) for name in request.names)
        elif selector or all_:
            page = await api.list_all(info, namespace=ns, label_selector=selector)
            out.extend(Target(info, ns, o.metadata.name) for o in page.items)
        else:
            raise UsageProblem(
                f"resource(s) were provided, but no name was specified; name the "
                f"{info.resource} to {verb}, or use --selector / --all"
            )
    return out
