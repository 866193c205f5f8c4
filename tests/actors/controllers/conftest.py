"""Fixtures shared by every controller test: a real raftstore member per module, a real
API server in-process per test, an :class:`ApiClient`, a fresh namespace per test (those
four from :mod:`tests.support.apiserver_fixtures`), and :class:`Harness` -- builds
:class:`ControllerContext` objects and runs controllers.

Stable API (other controller test files rely on it; extend, never change):

* fixtures ``store`` (module), ``server``, ``api``, ``ns``, ``harness``
* ``harness.context(options=None, namespace=<ns>) -> ControllerContext``
* ``await harness.start(new_controller, ..., options=None, namespace=<ns>) -> [Controller]``:
  builds one context, calls each ``new_controller(ctx)``, starts the informer factory,
  the event recorder and every controller in the test's nursery; returns once all caches
  have synced and the workers run. Everything stops when the test ends.
* helpers ``make``, ``pod``, ``pod_template``, ``set_pod_ready``, ``wait_until``,
  ``events_for``.

Tests share the store of their module, so each works in its own namespace. The
informers the harness builds are **scoped to that namespace** for namespaced kinds
(cluster-scoped kinds such as Node and Namespace are watched whole), so one test's
controllers never see -- or act on -- objects left behind by an earlier test. Pass
``namespace=None`` to get cluster-wide informers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from actors.client import ApiClient, KindRef, kind_info
from actors.controller import Controller, EventRecorder, Informer, InformerFactory
from actors.controllers.context import ControllerContext, ControllerOptions
from proto.k8s import kinds

__all__ = [
    "Harness",
    "ScopedInformerFactory",
    "events_for",
    "make",
    "pod",
    "pod_template",
    "set_pod_ready",
    "wait_until",
]


class ScopedInformerFactory(InformerFactory):
    """An :class:`InformerFactory` whose informers of namespaced kinds watch one namespace."""

    def __init__(self, api: ApiClient, namespace: str | None) -> None:
        super().__init__(api)
        self.scope = namespace

    def informer(
        self,
        kind: KindRef,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Informer:
        if self.scope is not None and kind_info(kind).namespaced and namespace is None:
            namespace = self.scope
        return super().informer(
            kind, namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )


class Harness:
    """Builds controller contexts on the test's API client and runs controllers."""

    def __init__(self, api: ApiClient, ns: str, nursery: trio.Nursery) -> None:
        self.api = api
        self.ns = ns
        self.nursery = nursery

    def context(
        self, options: ControllerOptions | None = None, *, namespace: str | None | object = ...
    ) -> ControllerContext:
        scope = self.ns if namespace is ... else namespace
        assert scope is None or isinstance(scope, str)
        return ControllerContext(
            api=self.api,
            informers=ScopedInformerFactory(self.api, scope),
            recorder=EventRecorder(self.api, "controller-manager", host="test"),
            options=options or ControllerOptions(),
        )

    async def start(
        self,
        *new_controllers: Callable[[ControllerContext], Controller],
        options: ControllerOptions | None = None,
        namespace: str | None | object = ...,
    ) -> list[Controller]:
        """Build, start and return the controllers (caches synced, workers running)."""
        ctx = self.context(options, namespace=namespace)
        built = [new(ctx) for new in new_controllers]
        await self.nursery.start(ctx.recorder.run)
        await self.nursery.start(ctx.informers.run)
        for controller in built:
            await self.nursery.start(controller.run)
        return built


@pytest.fixture
def harness(api: ApiClient, ns: str, nursery: trio.Nursery) -> Harness:
    return Harness(api, ns, nursery)


# ------------------------------------------------------------------------- helpers


def make(kind: str, name: str, namespace: str = "", **labels: str) -> Any:
    """A new object of ``kind`` named ``name`` with ``labels``."""
    obj = kinds.by_kind(kind).new()
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels)
    return obj


def pod(name: str, namespace: str, image: str = "busybox", **labels: str) -> Any:
    """A Pod with one container ``main`` running ``image``."""
    obj = make("Pod", name, namespace, **labels)
    obj.spec.containers.add(name="main", image=image)
    return obj


def pod_template(target: Any, image: str = "busybox", **labels: str) -> None:
    """Fill ``target`` (a PodTemplateSpec field) with ``labels`` and one container."""
    target.metadata.labels.update(labels)
    target.spec.containers.add(name="main", image=image)


async def set_pod_ready(
    api: ApiClient, namespace: str, name: str, *, ready: bool = True, node: str = ""
) -> Any:
    """Make pod ``name`` look Running and Ready (or Running, not Ready) -- what a node agent
    would report; with ``node``, bind it there first. Retries on a write conflict; returns
    the updated pod."""
    from actors.client import Conflict

    if node:
        await api.bind(name, node, namespace=namespace)
    while True:
        current: Any = await api.get("Pod", name, namespace=namespace)
        current.status.phase = "Running"
        del current.status.conditions[:]
        condition = current.status.conditions.add(type="Ready", status=str(ready))
        condition.last_transition_time.GetCurrentTime()
        if not current.status.HasField("start_time"):
            current.status.start_time.GetCurrentTime()
        try:
            return await api.update_status(current)
        except Conflict:
            continue


async def wait_until(
    predicate: Callable[[], Awaitable[Any] | Any], *, timeout: float = 15.0, every: float = 0.05
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return it.

    Fails the test with the last value when ``timeout`` passes.
    """
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = predicate()
            if isinstance(last, Awaitable):
                last = await last
            if last:
                return last
            await trio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def events_for(api: ApiClient, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events recorded about ``name`` in ``namespace``."""
    listed = await api.list("Event", namespace=namespace)
    return [(e.type, e.reason, e.message) for e in listed.items if e.involved_object.name == name]
