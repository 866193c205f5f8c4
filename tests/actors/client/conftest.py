"""Helpers for the API client suite (object builders). Its fixtures -- one real raftstore
member per module, a real API server in-process per test, a client of it, a namespace per
test (the tests share the store) -- come from :mod:`tests.support.apiserver_fixtures`."""

from __future__ import annotations

from typing import Any

from proto.k8s import kinds


def make(kind: str, name: str, namespace: str = "", **labels: str) -> Any:
    obj = kinds.by_kind(kind).new()
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels)
    return obj


def pod(name: str, namespace: str, **labels: str) -> Any:
    obj = make("Pod", name, namespace, **labels)
    obj.spec.containers.add(name="main", image="busybox")
    return obj
