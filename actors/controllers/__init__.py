"""The controllers of ``raftsman controller-manager``, by Kubernetes' names.

Every controller lives in its own module (or package) that exposes
``new_controller(ctx: ControllerContext) -> Controller`` (see :mod:`.context`).
:data:`CONTROLLERS` maps each of Kubernetes' controller names to that module. Modules
are imported lazily, when the manager asks for them: a controller whose module is not
there (yet) is skipped with a warning instead of stopping the others, while a module
that is there but fails to import is a bug and raises.

``--controllers`` takes Kubernetes' syntax: ``*`` is every controller, ``name`` turns
one on, ``-name`` turns one off (``*,-podgc``). :func:`resolve_names` applies it.

Shared helpers for writing a controller: :mod:`.podcontrol` (pods from templates,
ownerReferences, adoption, slow-start batches, expectations, readiness).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from actors.controller import Controller

from .context import ControllerContext, ControllerOptions

__all__ = [
    "CONTROLLERS",
    "ControllerContext",
    "ControllerOptions",
    "NewController",
    "UnknownController",
    "load",
    "load_all",
    "resolve_names",
]

logger = logging.getLogger(__name__)

NewController = Callable[[ControllerContext], Controller]

CONTROLLERS: Mapping[str, str] = MappingProxyType(
    {
        "replicaset": "actors.controllers.replicaset",
        "deployment": "actors.controllers.deployment",
        "endpoints": "actors.controllers.endpoints",
        "garbagecollector": "actors.controllers.garbagecollector",
        "namespace": "actors.controllers.namespace",
        "nodelifecycle": "actors.controllers.nodelifecycle",
        "podgc": "actors.controllers.podgc",
        "job": "actors.controllers.job",
        "cronjob": "actors.controllers.cronjob",
        "daemonset": "actors.controllers.daemonset",
    }
)
"""Controller name -> module exposing ``new_controller``, in start order."""


class UnknownController(ValueError):
    """A name in ``--controllers`` that is not one of :data:`CONTROLLERS`."""


def resolve_names(spec: str | Iterable[str] = "*") -> list[str]:
    """The controllers ``spec`` turns on, in :data:`CONTROLLERS` order.

    ``spec`` is a comma-separated string or a list of items: ``*`` (all), ``name``,
    ``-name``. Later items win over ``*``; an empty spec means ``*``.
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        items = ["*"]
    wanted: set[str] = set()
    unwanted: set[str] = set()
    star = False
    for item in items:
        if item == "*":
            star = True
            continue
        name = item[1:] if item.startswith("-") else item
        if name not in CONTROLLERS:
            raise UnknownController(
                f"unknown controller {name!r} in --controllers "
                f"(known: {', '.join(CONTROLLERS)}; '*' for all, '-name' to turn one off)"
            )
        (unwanted if item.startswith("-") else wanted).add(name)
    return [n for n in CONTROLLERS if (star or n in wanted) and n not in unwanted]


def load(name: str) -> NewController | None:
    """``new_controller`` of the controller ``name``, or None when its module is absent."""
    module_path = CONTROLLERS.get(name)
    if module_path is None:
        raise UnknownController(f"unknown controller {name!r} (known: {', '.join(CONTROLLERS)})")
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        # Only the controller's own module missing means "not there"; a missing
        # dependency inside it is a real error.
        if exc.name is not None and (
            exc.name == module_path or module_path.startswith(exc.name + ".")
        ):
            logger.warning("controller=%s skipped: module %s not found", name, module_path)
            return None
        raise
    factory = getattr(module, "new_controller", None)
    if not callable(factory):
        raise TypeError(f"{module_path} must define new_controller(ctx) -> Controller")
    new: NewController = factory
    return new


def load_all(names: Iterable[str]) -> dict[str, NewController]:
    """``{name: new_controller}`` for each of ``names`` whose module exists."""
    loaded: dict[str, NewController] = {}
    for name in names:
        new = load(name)
        if new is not None:
            loaded[name] = new
    return loaded
