"""API call latency during a burst, as a client sees it.

Kubernetes' API call latency SLOs (sig-scalability): p99 of single-object mutating calls
at most 1 s; p99 of LIST calls at most 5 s for a namespace (30 s cluster-wide). They are
measured in the API server (``apiserver_request_duration_seconds``); :class:`ApiProbe`
measures from the client instead -- a little more (the client and the loopback hop),
never less -- with calls made while the cluster is busy:

* **mutations** -- every ``interval`` a cycle of three single-object calls on a
  ConfigMap of its own: create, merge-patch, delete, each timed;
* **lists** -- every ``list_interval`` a LIST of the benchmark's pods namespace (up to
  thousands of pods), timed.

A call that fails (timeout, unavailable) is counted in ``errors`` and not in the
latencies; the report shows both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.client import ApiClient, ApiError
from proto.k8s import codec

from .stats import Summary, summarize


def _config_map(name: str, namespace: str) -> Any:
    return codec.decode(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"k": "v"},
        }
    ).obj


@dataclass
class ApiProbe:
    namespace: str
    interval: float = 0.5
    list_interval: float = 1.0
    mutations: dict[str, list[float]] = field(
        default_factory=lambda: {"create": [], "patch": [], "delete": []}
    )
    lists: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    async def _timed(
        self, verb: str, into: list[float], fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any
    ) -> bool:
        started = time.perf_counter()
        try:
            await fn(*args, **kw)
        except ApiError:
            self.errors[verb] = self.errors.get(verb, 0) + 1
            return False
        into.append(time.perf_counter() - started)
        return True

    async def _mutate(self, api: ApiClient) -> None:
        ns, times = self.namespace, self.mutations
        for i in range(1_000_000):
            name = f"probe-{i}"
            tick = trio.current_time()
            if await self._timed("create", times["create"], api.create, _config_map(name, ns)):
                patch = {"data": {"k": str(i)}}
                await self._timed(
                    "patch",
                    times["patch"],
                    api.patch_merge,
                    "configmaps",
                    name,
                    patch,
                    namespace=ns,
                )
                await self._timed(
                    "delete", times["delete"], api.delete, "configmaps", name, namespace=ns
                )
            await trio.sleep_until(tick + self.interval)

    async def _list(self, api: ApiClient) -> None:
        while True:
            tick = trio.current_time()
            await self._timed("list", self.lists, api.list, "pods", namespace=self.namespace)
            await trio.sleep_until(tick + self.list_interval)

    async def run(self, api: ApiClient) -> None:
        """Probe until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._mutate, api)
            nursery.start_soon(self._list, api)

    def mutation_summary(self) -> Summary:
        return summarize(v for values in self.mutations.values() for v in values)

    def list_summary(self) -> Summary:
        return summarize(self.lists)
