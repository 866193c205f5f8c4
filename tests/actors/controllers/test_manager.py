"""The controller manager: registry, supervision of controllers, leader election."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import pytest
import trio

import actors.controllers as registry
from actors.client import ApiClient
from actors.controller import Controller
from actors.controller.leaderelection import LeaderElectionConfig
from actors.controllers import ControllerContext, UnknownController, replicaset, resolve_names
from actors.controllers.manager import (
    LEASE_NAME,
    ControllerManager,
    default_leader_election,
    run_controller_manager,
)
from actors.runtime import BackoffPolicy
from proto import rpc
from tests.actors.controllers.conftest import make, pod_template, wait_until

FAST_BACKOFF = BackoffPolicy(initial=0.05, factor=2.0, max_delay=0.2, jitter=0.0, reset_after=5.0)


def test_controllers_flag_follows_kubernetes_syntax() -> None:
    everything = list(registry.CONTROLLERS)
    assert resolve_names("*") == everything == resolve_names("")
    assert resolve_names("*,-podgc,-job") == [n for n in everything if n not in ("podgc", "job")]
    assert resolve_names("deployment,replicaset") == ["replicaset", "deployment"]
    assert resolve_names(["replicaset", "-replicaset"]) == []
    with pytest.raises(
        UnknownController, match="unknown controller 'replicasets'.*known: replicaset"
    ):
        resolve_names("replicasets")


def test_missing_module_is_skipped_but_present_ones_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry,
        "CONTROLLERS",
        {**registry.CONTROLLERS, "ghost": "actors.controllers.no_such_controller"},
    )
    loaded = registry.load_all(["replicaset", "ghost", "deployment"])
    assert list(loaded) == ["replicaset", "deployment"]
    assert loaded["replicaset"] is replicaset.new_controller
    assert default_leader_election().lock_name == LEASE_NAME == "raftsman-controller-manager"
    assert default_leader_election().lock_namespace == "kube-system"


def a_replica_set(name: str, ns: str, replicas: int) -> Any:
    rs = make("ReplicaSet", name, ns)
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = name
    pod_template(rs.spec.template, app=name)
    return rs


async def pod_count(api: ApiClient, ns: str, prefix: str) -> int:
    listed = await api.list("Pod", namespace=ns)
    return sum(1 for p in listed.items if p.metadata.name.startswith(prefix + "-"))


async def test_runs_registered_controllers(
    api: ApiClient, ns: str, server: rpc.Server, nursery: trio.Nursery
) -> None:
    manager: ControllerManager = await nursery.start(
        partial(
            run_controller_manager,
            server.address,
            controllers="replicaset,deployment",
            leader_elect=False,
        )
    )
    assert manager.names == ("replicaset", "deployment")
    assert manager.leading and set(manager.term.controllers) == {"replicaset", "deployment"}  # type: ignore[union-attr]
    d = make("Deployment", "web", ns)
    d.spec.replicas = 2
    d.spec.selector.match_labels["app"] = "web"
    pod_template(d.spec.template, app="web")
    await api.create(d)
    await wait_until(lambda: _equals(pod_count(api, ns, "web"), 2))


class Flaky(Controller):
    """A controller whose loop crashes the first ``crashes`` times it runs."""

    def __init__(self, crashes: int) -> None:
        async def reconcile(key: str) -> None:
            return None

        super().__init__("flaky", reconcile)
        self.crashes = crashes
        self.runs = 0

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise RuntimeError(f"crash {self.runs}")
        await super().run(task_status=task_status)


async def test_crashing_controller_is_restarted_and_others_keep_running(
    api: ApiClient, ns: str, server: rpc.Server, nursery: trio.Nursery
) -> None:
    flaky = Flaky(crashes=3)

    def new_flaky(ctx: ControllerContext) -> Controller:
        return flaky

    def broken(ctx: ControllerContext) -> Controller:
        raise RuntimeError("cannot build")

    manager: ControllerManager = await nursery.start(
        partial(
            run_controller_manager,
            server.address,
            factories={
                "replicaset": replicaset.new_controller,
                "flaky": new_flaky,
                "broken": broken,
            },
            leader_elect=False,
            backoff=FAST_BACKOFF,
        )
    )
    assert manager.failed == ["broken"]
    await api.create(a_replica_set("steady", ns, 2))
    await wait_until(lambda: flaky.runs == 4)
    await wait_until(lambda: _equals(pod_count(api, ns, "steady"), 2))
    assert manager.term is not None and manager.term.supervisor is not None


async def test_one_leader_of_two_and_takeover_when_it_stops(
    api: ApiClient, ns: str, server: rpc.Server
) -> None:
    lock = f"cm-{uuid.uuid4().hex[:8]}"

    def config(identity: str) -> LeaderElectionConfig:
        # release_on_cancel=False: the stopped leader leaves its Lease to expire, as a
        # killed process would.
        return LeaderElectionConfig(
            lock_name=lock,
            identity=identity,
            lease_duration=1.5,
            renew_deadline=1.0,
            retry_period=0.2,
            release_on_cancel=False,
        )

    async with trio.open_nursery() as nursery:
        scopes: dict[str, trio.CancelScope] = {}
        managers: dict[str, ControllerManager] = {}

        async def run(identity: str, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                scopes[identity] = scope
                await run_controller_manager(
                    server.address,
                    controllers="replicaset",
                    leader_election=config(identity),
                    task_status=task_status,
                )

        managers["a"] = await nursery.start(run, "a")
        managers["b"] = await nursery.start(run, "b")
        await wait_until(lambda: any(m.leading for m in managers.values()))
        with trio.move_on_after(1.0):
            while True:
                assert sum(m.leading for m in managers.values()) == 1
                await trio.sleep(0.02)
        leader = next(name for name, m in managers.items() if m.leading)
        other = "b" if leader == "a" else "a"
        lease: Any = await api.get("Lease", lock, namespace="kube-system")
        assert lease.spec.holder_identity == leader

        await api.create(a_replica_set("first", ns, 1))
        await wait_until(lambda: _equals(pod_count(api, ns, "first"), 1))

        scopes[leader].cancel()
        await wait_until(lambda: managers[other].leading, timeout=10)
        assert not managers[leader].leading
        lease = await api.get("Lease", lock, namespace="kube-system")
        assert lease.spec.holder_identity == other
        # The new leader's controllers work (its term built everything afresh).
        await api.create(a_replica_set("second", ns, 2))
        await wait_until(lambda: _equals(pod_count(api, ns, "second"), 2))
        assert managers[other].terms == 1
        nursery.cancel_scope.cancel()


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
