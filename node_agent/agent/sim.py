"""Many simulated nodes in one process: Kubernetes' kubemark, for Raftsman.

Scale tests of the control plane (the scheduler with hundreds of nodes, the node
lifecycle controller with hundreds of leases) need many nodes but no real containers.
:class:`SimCluster` runs ``count`` node agents named ``<prefix>-0`` ...
``<prefix>-<count-1>`` in one trio run, each a full :class:`~.agent.NodeAgent` -- Node
registration, Lease, status reports, pod workers, restart policy, backoff, probes,
deletion -- on its own :class:`~node_agent.runtime.sim.SimRuntime`, so the only code path
not exercised is the launch of a process.

What is shared, so that a node costs little
    * **one API client** (one gRPC channel per API server);
    * **one pods informer** for all nodes (bound pods only, ``spec.nodeName!=``), indexed
      by ``spec.nodeName``; its events are routed to the node the pod is bound to --
      pods bound to names this process does not run are ignored (a real agent may run
      them);
    * **one ConfigMap and one Secret informer**, whose changes poke the pods of that
      namespace on every node.
    Per node remain the Node, the Lease, the status manager, the event recorder and the
    pod workers. Nodes register a few at a time (:data:`REGISTRATION_CONCURRENCY`). Simulated nodes report no resource pressure and run no service proxy
    (there is nothing to connect to behind a simulated pod's IP).

See docs/node-agent.md for measured costs (memory and CPU per node and per pod).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import trio

from actors.client import ApiClient, open_api_client
from actors.controller import Handlers, Informer
from node_agent.agent.agent import (
    DEFAULT_OPTIONS,
    AgentOptions,
    NodeAgent,
    SharedInformers,
    validate_node_name,
)
from node_agent.pods.images import ImageCatalog
from node_agent.runtime.sim import SimRuntime
from proto.k8s import core_pb2

__all__ = ["SimCluster", "run_sim_nodes", "sim_node_names"]

logger = logging.getLogger(__name__)

NODE_INDEX = "node"
REGISTRATION_CONCURRENCY = 2
"""Nodes registering at once: every new Node takes a podCIDR from one allocation record
in the API server, and racing creators of Nodes mostly lose and retry (measured: 100
nodes register in ~5 s with 1-4 at a time, in ~30 s all at once)."""


def sim_node_names(prefix: str, count: int) -> list[str]:
    """``<prefix>-0`` ... ``<prefix>-<count-1>``."""
    if count < 1:
        raise ValueError(f"the number of simulated nodes must be at least 1, not {count}")
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in (names[0], names[-1]):
        validate_node_name(name)
    return names


def _node_of(pod: core_pb2.Pod) -> list[str]:
    return [pod.spec.node_name] if pod.spec.node_name else []


class SimCluster:
    """``count`` simulated node agents sharing one API client and informers."""

    def __init__(
        self,
        api: ApiClient,
        *,
        names: Sequence[str],
        data_dir: Path,
        options: AgentOptions = DEFAULT_OPTIONS,
        catalog: ImageCatalog | None = None,
    ) -> None:
        self.api = api
        self.config_maps = Informer(api, "configmaps")
        self.secrets = Informer(api, "secrets")
        self.pods = Informer(
            api, "pods", field_selector="spec.nodeName!=", indexers={NODE_INDEX: _node_of}
        )
        shared = SharedInformers(config_maps=self.config_maps, secrets=self.secrets)
        options = replace(options, proxy=False, host_pressure=False, daemon_port=0)
        catalog = catalog or ImageCatalog()
        registration = trio.CapacityLimiter(REGISTRATION_CONCURRENCY)
        self.agents: dict[str, NodeAgent] = {
            name: NodeAgent(
                api,
                name=name,
                runtime=SimRuntime(),
                data_dir=Path(data_dir) / name,
                options=options,
                catalog=catalog,
                shared=shared,
                registration=registration,
            )
            for name in names
        }

    def _route(self, pod: core_pb2.Pod, *, removed: bool = False) -> None:
        agent = self.agents.get(pod.spec.node_name)
        if agent is None or agent.pods is None:
            return
        if removed:
            agent.pods.pod_removed(pod)
        else:
            agent.pods.pod_changed(pod)

    def _poke(self, obj: core_pb2.ConfigMap | core_pb2.Secret) -> None:
        for agent in self.agents.values():
            if agent.pods is not None:
                agent.pods.poke_namespace(obj.metadata.namespace)

    async def run(
        self, *, task_status: trio.TaskStatus[SimCluster] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run every node until cancelled; started once all are registered and syncing."""
        poke = Handlers(
            on_add=self._poke,
            on_update=lambda _old, new: self._poke(new),
            on_delete=self._poke,
        )
        self.config_maps.add_handler(poke)
        self.secrets.add_handler(poke)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.config_maps.run)
            await nursery.start(self.secrets.run)
            async with trio.open_nursery() as starting:
                for agent in self.agents.values():
                    starting.start_soon(nursery.start, agent.run)
            self.pods.add_handler(
                Handlers(
                    on_add=self._route,
                    on_update=lambda _old, new: self._route(new),
                    on_delete=lambda pod: self._route(pod, removed=True),
                )
            )
            await nursery.start(self.pods.run)
            for agent in self.agents.values():
                assert agent.pods is not None
                agent.pods.synced()
            logger.info("%d simulated nodes running", len(self.agents))
            task_status.started(self)


async def run_sim_nodes(
    api_addresses: str | Sequence[str],
    *,
    count: int,
    prefix: str,
    data_dir: Path,
    options: AgentOptions = DEFAULT_OPTIONS,
    catalog: ImageCatalog | None = None,
    task_status: trio.TaskStatus[SimCluster] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``count`` simulated nodes ``<prefix>-<i>`` against the API server(s) until cancelled."""
    names = sim_node_names(prefix, count)
    async with open_api_client(api_addresses) as api:
        cluster = SimCluster(api, names=names, data_dir=data_dir, options=options, catalog=catalog)
        await cluster.run(task_status=task_status)
