"""``run_apiserver``: the API server process's one long-running task.

Start-up order, each step finished before the next: reach the store (retrying with
backoff, so a server started before its store simply waits), create the system
namespaces, list every resource into its watch cache, then listen. So the first request
a server answers already sees every object. Health (``grpc.health.v1``) is SERVING while
the store answers and NOT_SERVING while it does not; requests during an outage fail with
``UNAVAILABLE`` and watches keep their place, resuming when the store is back.

The store client talks to the store's leader when it can: on start and every few health
checks the server asks who leads and moves there (a follower would forward every write
and commit a no-op entry for every linearizable read: more hops, more log writes).

With ``metrics_port`` the server also serves Prometheus metrics (:mod:`.metrics`) over
HTTP at ``/metrics``, from the moment it listens until it stops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import trio

from actors.apiserver import events, namespaces
from actors.apiserver.allocation import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_NODE_CIDR_MASK,
    DEFAULT_SERVICE_CLUSTER_IP_RANGE,
    NODE_PORT_RANGE,
    Allocator,
    parse_range,
)
from actors.apiserver.metrics import Metrics, instrument, serve_metrics
from actors.apiserver.service import DEFAULT_BOOKMARK_INTERVAL, ApiService
from actors.apiserver.storage import Storage
from actors.apiserver.watch_cache import DEFAULT_WINDOW, WatchCache
from proto import rpc
from proto.apiserver import apiserver_pb2
from proto.k8s import kinds
from raftstore.client import Client, open_client

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 1.0
HEALTH_TIMEOUT = 2.0
LEADER_CHECK_EVERY = 5
"""Every this many health checks, look for the store's leader (:func:`_use_leader`)."""
_START_RETRY_MAX = 2.0


async def _store_answers(client: Client) -> bool:
    with trio.move_on_after(HEALTH_TIMEOUT):
        try:
            await client.get("/registry/", limit=1, keys_only=True)
        except rpc.RpcError:
            return False
        return True
    return False


async def _wait_for_store(client: Client) -> None:
    delay = 0.05
    while not await _store_answers(client):
        log.warning("store unreachable endpoints=%s; retrying", ",".join(client.endpoints))
        await trio.sleep(delay)
        delay = min(2 * delay, _START_RETRY_MAX)


async def _use_leader(client: Client) -> None:
    """Point the store client at the store's leader, if it can be found (best effort)."""
    before = client.current_endpoint
    with trio.move_on_after(HEALTH_TIMEOUT):
        try:
            await client.use_leader()
        except rpc.RpcError:
            return
    if client.current_endpoint != before:
        log.info("store leader at %s: sending requests there", client.current_endpoint)


async def _report_health(client: Client, server: rpc.Server, interval: float) -> None:
    serving = True
    checks = 0
    while True:
        await trio.sleep(interval)
        checks += 1
        if checks % LEADER_CHECK_EVERY == 0:
            await _use_leader(client)
        ok = await _store_answers(client)
        if ok != serving:
            log.warning("store %s; health=%s", "reachable" if ok else "unreachable",
                        "SERVING" if ok else "NOT_SERVING")  # fmt: skip
            await server.set_serving(ok)
            serving = ok


async def run_apiserver(
    *,
    etcd_endpoints: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 0,
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    watch_window: int = DEFAULT_WINDOW,
    health_interval: float = HEALTH_INTERVAL,
    service_cluster_ip_range: str = DEFAULT_SERVICE_CLUSTER_IP_RANGE,
    node_port_range: tuple[int, int] = NODE_PORT_RANGE,
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
    node_cidr_mask: int = DEFAULT_NODE_CIDR_MASK,
    event_ttl: int = events.DEFAULT_TTL,
    event_window: float = events.DEFAULT_WINDOW,
    metrics_port: int | None = None,
    metrics: Metrics | None = None,
    task_status: trio.TaskStatus[rpc.Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on ``host:port`` (0: a free port) until cancelled.

    ``task_status.started`` gets the :class:`proto.rpc.Server` once every watch cache is
    synced and the server listens. ``watch_window`` is how many recent events per resource
    each watch cache keeps for watches to resume from. Services get clusterIPs from
    ``service_cluster_ip_range`` (inside 127.0.0.0/8; ``ValueError`` otherwise) and
    nodePorts from ``node_port_range``; Nodes get a ``/node_cidr_mask`` podCIDR from
    ``cluster_cidr``; Events live ``event_ttl`` seconds after their last
    write. ``metrics_port`` (0: a free one) serves ``metrics`` (a fresh :class:`Metrics`
    if None) on ``host``.
    """
    service_ips = parse_range(service_cluster_ip_range)
    pod_cidrs = parse_range(cluster_cidr)
    if not pod_cidrs.prefixlen <= node_cidr_mask <= 30:
        raise ValueError(
            f"node CIDR mask /{node_cidr_mask} must be between the cluster CIDR's "
            f"/{pod_cidrs.prefixlen} and /30"
        )
    metrics = metrics or Metrics()
    async with open_client(etcd_endpoints) as client, trio.open_nursery() as nursery:
        storage = Storage(client, ttls={"Event": event_ttl})
        await _wait_for_store(client)
        await _use_leader(client)
        await namespaces.ensure_system_namespaces(storage)
        caches = {info.kind: WatchCache(info, client, window=watch_window) for info in kinds.KINDS}
        async with trio.open_nursery() as starting:
            for cache in caches.values():
                starting.start_soon(nursery.start, cache.run)
        service = ApiService(
            storage,
            caches,
            allocator=Allocator(
                client,
                service_ips=service_ips,
                node_ports=node_port_range,
                cluster_cidr=pod_cidrs,
                node_cidr_mask=node_cidr_mask,
            ),
            bookmark_interval=bookmark_interval,
            event_window=event_window,
        )
        server: rpc.Server = await nursery.start(
            partial(
                rpc.serve,
                [rpc.Service.of(instrument(service, metrics), apiserver_pb2, "ApiServer")],
                host=host,
                port=port,
            )
        )
        nursery.start_soon(_report_health, client, server, health_interval)
        if metrics_port is not None:
            nursery.start_soon(_serve_metrics, metrics, host, metrics_port)
        log.info(
            "apiserver listening address=%s store=%s service-cluster-ip-range=%s",
            server.address,
            ",".join(etcd_endpoints),
            service_ips,
        )
        task_status.started(server)


async def _serve_metrics(metrics: Metrics, host: str, port: int) -> None:
    with serve_metrics(metrics, host=host, port=port) as bound:
        log.info("apiserver metrics listening address=%s:%d", host, bound)
        await trio.sleep_forever()
