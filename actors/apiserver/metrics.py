"""Prometheus metrics of the API server, named as Kubernetes' own:

* ``apiserver_request_total{verb, resource, code}``: requests answered, ``code`` the gRPC
  status name (``OK``, ``NOT_FOUND``, ``CANCELLED`` for a watch its client ended);
* ``apiserver_request_duration_seconds{verb, resource}``: latency of every request but
  watches (which last as long as their client wants);
* ``apiserver_registered_watchers{resource}``: watches open now.

``verb`` is the RPC in lower case (``create``, ``list``, ``watch``, ``update_status``,
``record_event``); ``resource`` the kind's resource (``pods``), ``""`` when the request
names no known kind. :func:`instrument` wraps a servicer so that every RPC is counted
without the service knowing; each server has its own registry (several run in one test
process), served over HTTP by :func:`serve_metrics`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from proto import rpc
from proto.apiserver import apiserver_pb2
from proto.k8s import kinds

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_STREAMING = frozenset({"Watch"})


class Metrics:
    """The API server's collectors, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total",
            "API requests answered, by verb, resource and gRPC status code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "API request latency (watches excluded), by verb and resource.",
            ["verb", "resource"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.watchers = Gauge(
            "apiserver_registered_watchers",
            "Watches open now, by resource.",
            ["resource"],
            registry=self.registry,
        )


def _verb(method: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()


def resource_of(request: Any) -> str:
    """The resource a request is about, from its kind, object, event or manifest."""
    try:
        if getattr(request, "kind", ""):
            return kinds.lookup(request.kind).resource
        for field in ("object", "event"):
            envelope = getattr(request, field, None)
            if envelope is not None and envelope.type_url:
                full_name = envelope.type_url.rpartition("/")[2]
                return next(
                    k.resource for k in kinds.KINDS if k.message.DESCRIPTOR.full_name == full_name
                )
        if getattr(request, "manifest_json", ""):
            return kinds.by_kind(str(json.loads(request.manifest_json).get("kind"))).resource
        if isinstance(request, apiserver_pb2.BindRequest):
            return "pods"
    except (kinds.UnknownKind, StopIteration, ValueError, AttributeError):
        pass
    return ""


def instrument(servicer: object, metrics: Metrics) -> object:
    """A servicer that answers as ``servicer`` does, counting every RPC in ``metrics``."""
    wrapped = _Instrumented()
    for method in apiserver_pb2.DESCRIPTOR.services_by_name["ApiServer"].methods:
        fn = getattr(servicer, method.name, None)
        if fn is not None:
            setattr(wrapped, method.name, _wrap(method.name, fn, metrics))
    return wrapped


class _Instrumented:
    pass


def _wrap(
    method: str, fn: Callable[[Any, rpc.ServerContext], Awaitable[Any]], metrics: Metrics
) -> Callable[[Any, rpc.ServerContext], Awaitable[Any]]:
    verb = _verb(method)
    streaming = method in _STREAMING

    async def handle(request: Any, ctx: rpc.ServerContext) -> Any:
        resource = resource_of(request)
        started = time.perf_counter()
        code = "UNKNOWN"
        with _watching(metrics, resource, streaming):
            try:
                result = await fn(request, ctx)
                code = "OK"
                return result
            except rpc.RpcError as exc:
                code = exc.code.name
                raise
            except trio.Cancelled:
                code = "CANCELLED"
                raise
            except Exception:
                code = "INTERNAL"
                raise
            finally:
                metrics.requests.labels(verb, resource, code).inc()
                if not streaming:
                    metrics.latency.labels(verb, resource).observe(time.perf_counter() - started)

    handle.__name__ = method
    return handle


@contextmanager
def _watching(metrics: Metrics, resource: str, streaming: bool) -> Iterator[None]:
    if not streaming:
        yield
        return
    gauge = metrics.watchers.labels(resource)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


@contextmanager
def serve_metrics(metrics: Metrics, *, host: str, port: int) -> Iterator[int]:
    """Serve ``/metrics`` on ``host:port`` (0: a free port) from a thread while the block
    runs; yields the bound port."""
    httpd, thread = start_http_server(port, addr=host, registry=metrics.registry)
    try:
        yield int(httpd.server_port)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
