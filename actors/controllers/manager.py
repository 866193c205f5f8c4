"""The controller manager: every controller of the cluster, leader-elected as one unit.

``raftsman controller-manager`` runs this. Several replicas may run for availability; the
Lease ``kube-system/raftsman-controller-manager`` decides which one acts (two
ReplicaSet controllers acting at once would each create the missing pods). While a
replica holds the Lease it runs a *term*:

1. a fresh :class:`~actors.controller.InformerFactory` (one watch per kind, shared by
   all controllers) and :class:`~actors.controller.EventRecorder`;
2. each enabled controller, built by its module's ``new_controller(ctx)``;
3. the factory, the recorder, and a one-for-one supervisor
   (:mod:`actors.runtime.supervisor`) with one child per controller: a controller whose
   loop crashes is restarted with backoff on the same queue and caches while the others
   keep running; one that crashes too often escalates, which ends the term (and the
   process, for the launcher to restart).

When the Lease is lost (not renewed within ``renew_deadline``, or taken), the elector
cancels the term: every controller, informer and pending Event stops before anyone else
can take over (see :mod:`actors.controller.leaderelection`). The replica campaigns again
and, should it win, starts a new term from scratch -- level-triggered controllers need
nothing from the previous one.

A controller whose module cannot be built (its ``new_controller`` raises) is logged and
left out of the term; the others run. Controllers whose module does not exist are skipped
when the manager starts (see :func:`actors.controllers.load`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import trio

from actors.client import ApiClient, open_api_client
from actors.controller import Controller, EventRecorder, InformerFactory
from actors.controller.leaderelection import LeaderElectionConfig, LeaderElector, run_leader_elected
from actors.runtime import (
    BackoffPolicy,
    ChildSpec,
    RestartIntensity,
    Supervisor,
    run_supervisor,
)

from . import NewController, load_all, resolve_names
from .context import ControllerContext, ControllerOptions

__all__ = [
    "COMPONENT",
    "LEASE_NAME",
    "ControllerManager",
    "Term",
    "default_leader_election",
    "run_controller_manager",
]

logger = logging.getLogger(__name__)

COMPONENT = "controller-manager"
LEASE_NAME = "raftsman-controller-manager"

CONTROLLER_BACKOFF = BackoffPolicy(initial=0.5, factor=2.0, max_delay=30.0, reset_after=60.0)
CONTROLLER_INTENSITY = RestartIntensity(max_restarts=10, window=60.0)


def default_leader_election(
    *,
    identity: str | None = None,
    lease_duration: float = 15.0,
    renew_deadline: float = 10.0,
    retry_period: float = 2.0,
) -> LeaderElectionConfig:
    """The Lease ``kube-system/raftsman-controller-manager``; Kubernetes' timings by default."""
    if identity is None:
        return LeaderElectionConfig(
            lock_name=LEASE_NAME,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
    return LeaderElectionConfig(
        lock_name=LEASE_NAME,
        identity=identity,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
    )


@dataclass
class Term:
    """What one stretch of leadership runs; discarded when it ends."""

    context: ControllerContext
    controllers: dict[str, Controller]
    supervisor: Supervisor | None = None


@dataclass
class ControllerManager:
    """The state of a running manager, for callers and tests."""

    identity: str
    names: tuple[str, ...]
    """Controllers enabled and present, in start order."""
    elector: LeaderElector | None = None
    term: Term | None = None
    """The current term while leading, else None."""
    terms: int = 0
    """Terms started so far."""
    failed: list[str] = field(default_factory=list)
    """Controllers whose ``new_controller`` raised in the latest term."""

    @property
    def leading(self) -> bool:
        return self.term is not None


async def run_controller_manager(
    api_addresses: str | Sequence[str],
    *,
    controllers: str | Iterable[str] = "*",
    options: ControllerOptions | None = None,
    leader_election: LeaderElectionConfig | None = None,
    leader_elect: bool = True,
    factories: Mapping[str, NewController] | None = None,
    backoff: BackoffPolicy = CONTROLLER_BACKOFF,
    intensity: RestartIntensity = CONTROLLER_INTENSITY,
    api_timeout: float = 10.0,
    task_status: trio.TaskStatus[ControllerManager] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the controllers named by ``controllers`` against the API server(s) at
    ``api_addresses`` until cancelled (see the module doc).

    ``leader_election`` defaults to :func:`default_leader_election`; ``leader_elect=False``
    runs one term at once, without a Lease (a single replica, or tests). ``factories``
    replaces the registry (name -> ``new_controller``): a seam for tests. Reports the
    :class:`ControllerManager` once the first attempt at the Lease was made (or, without
    election, once the term's controllers run).
    """
    if factories is None:
        factories = load_all(resolve_names(controllers))
    config = leader_election or default_leader_election()
    manager = ControllerManager(identity=config.identity, names=tuple(factories))
    if not manager.names:
        logger.warning("no controller to run (--controllers and the modules present)")
    logger.info("controller manager %s: controllers=%s", manager.identity, ",".join(manager.names))
    opts = options or ControllerOptions()
    async with open_api_client(api_addresses, timeout=api_timeout) as api:
        lead = partial(_lead, api, manager, factories, opts, backoff, intensity)
        if not leader_elect:
            await lead(task_status=task_status)
            return
        async with trio.open_nursery() as nursery:
            manager.elector = await nursery.start(
                partial(
                    run_leader_elected,
                    api,
                    config,
                    lead,
                    on_new_leader=lambda who: logger.info("leader is now %r", who or "(nobody)"),
                )
            )
            task_status.started(manager)


async def _lead(
    api: ApiClient,
    manager: ControllerManager,
    factories: Mapping[str, NewController],
    options: ControllerOptions,
    backoff: BackoffPolicy,
    intensity: RestartIntensity,
    *,
    task_status: trio.TaskStatus[ControllerManager] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One term: build everything afresh, run it until cancelled."""
    manager.terms += 1
    factory = InformerFactory(api)
    recorder = EventRecorder(api, COMPONENT, host=manager.identity)
    ctx = ControllerContext(api=api, informers=factory, recorder=recorder, options=options)
    built: dict[str, Controller] = {}
    manager.failed = []
    for name, new in factories.items():
        try:
            built[name] = new(ctx)
        except Exception:
            logger.exception("controller=%s could not be built; running without it", name)
            manager.failed.append(name)
    term = Term(context=ctx, controllers=built)
    logger.info("term %d: leading with %d controller(s)", manager.terms, len(built))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run)
            nursery.start_soon(factory.run)
            children = [ChildSpec(name=name, target=ctrl.run) for name, ctrl in built.items()]
            term.supervisor = await nursery.start(
                partial(
                    run_supervisor,
                    name=COMPONENT,
                    children=children,
                    backoff=backoff,
                    intensity=intensity,
                )
            )
            manager.term = term
            task_status.started(manager)
            await trio.sleep(math.inf)
    finally:
        manager.term = None
        logger.info("term %d ended", manager.terms)
