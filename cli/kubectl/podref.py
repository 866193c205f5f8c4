"""Which pod ``logs`` and ``exec`` mean: ``NAME``, ``pod/NAME``, or ``KIND/NAME`` of a
workload (``deploy/web``, ``rs/web-5d4``, ``job/pi``, ``ds/agent``, ``svc/web``), which
stands for one of the pods its selector matches -- as kubectl does, a running and ready
one first, then the oldest -- named on stderr (``Found 3 pods, using pod/web-5d4-x2x``).
"""

from __future__ import annotations

from typing import Any

import click

from actors.client import ApiClient
from actors.controller import selector_to_string

from . import resources, session

_POD_KINDS = ("pod", "pods", "po")


def pod_name(argument: str) -> str | None:
    """The pod's name when ``argument`` names a pod directly, else None."""
    kind, slash, name = argument.partition("/")
    if not slash:
        return argument
    if kind.lower() in _POD_KINDS:
        if not name:
            raise session.UsageProblem(f"{argument!r}: a pod name is required after 'pod/'")
        return name
    return None


def _selector_of(obj: Any, kind: str) -> str:
    if kind == "Service":
        return ",".join(f"{k}={v}" for k, v in sorted(obj.spec.selector.items()))
    spec = getattr(obj, "spec", None)
    if spec is None or "selector" not in type(spec).DESCRIPTOR.fields_by_name:
        return ""
    if not spec.HasField("selector"):
        return ""
    return selector_to_string(obj.spec.selector)


def _rank(pod: Any) -> tuple[int, int, float]:
    running = pod.status.phase == "Running"
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    created = pod.metadata.creation_timestamp
    return (0 if running else 1, 0 if ready else 1, created.seconds + created.nanos / 1e9)


async def resolve_pod(api: ApiClient, argument: str, namespace: str) -> str:
    name = pod_name(argument)
    if name is not None:
        return name
    kind_text, _, obj_name = argument.partition("/")
    info = resources.lookup(kind_text)
    if not obj_name:
        raise session.UsageProblem(f"{argument!r}: use KIND/NAME, e.g. deploy/web")
    obj = await api.get(info, obj_name, namespace=namespace)
    selector = _selector_of(obj, info.kind)
    if not selector:
        raise session.UsageProblem(f"{resources.display(info)}/{obj_name} has no pod selector")
    pods = (await api.list_all("pods", namespace=namespace, label_selector=selector)).items
    pods = [p for p in pods if not p.metadata.HasField("deletion_timestamp")]
    if not pods:
        raise session.UsageProblem(f"no pods found for {resources.display(info)}/{obj_name}")
    chosen = min(pods, key=_rank)
    if len(pods) > 1:
        click.echo(f"Found {len(pods)} pods, using pod/{chosen.metadata.name}", err=True)
    return str(chosen.metadata.name)
