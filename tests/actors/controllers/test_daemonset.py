"""The DaemonSet controller against a real API server on a real raftstore member.

Nodes are Node objects the tests create (with a Ready condition), labelled with the
test's namespace so that every DaemonSet here selects only its own test's nodes (nodes
are cluster-scoped and the store is shared by the module). Where pods must come up or go
away, :func:`fake_node_agent` plays the node agents: it reports bound pods Running and
Ready, and finishes the deletion of terminating ones (grace 0), as a node agent does once
the containers stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from actors.client import ApiClient, Conflict, NotFound
from actors.controllers import daemonset
from actors.controllers.podcontrol import controller_of, is_pod_available
from tests.actors.controllers.conftest import (
    Harness,
    events_for,
    make,
    pod_template,
    set_pod_ready,
    wait_until,
)


async def add_node(
    api: ApiClient, ns: str, name: str, *taints: tuple[str, str], **labels: str
) -> Any:
    node = make("Node", f"{ns}-{name}", "", pool=ns, **labels)
    for key, effect in taints:
        node.spec.taints.add(key=key, effect=effect)
    ready = node.status.conditions.add(type="Ready", status="True")
    ready.last_heartbeat_time.GetCurrentTime()
    return await api.create(node)


async def edit_node(api: ApiClient, ns: str, name: str, change: Callable[[Any], None]) -> None:
    while True:
        node: Any = await api.get("Node", f"{ns}-{name}")
        change(node)
        try:
            await api.update(node)
            return
        except Conflict:
            continue


async def set_image(api: ApiClient, ns: str, name: str, image: str) -> Any:
    while True:
        ds: Any = await api.get("DaemonSet", name, namespace=ns)
        ds.spec.template.spec.containers[0].image = image
        try:
            return await api.update(ds)
        except Conflict:
            continue


def daemon_set(name: str, ns: str, *, strategy: str = "RollingUpdate", **extra: str) -> Any:
    ds = make("DaemonSet", name, ns)
    ds.spec.selector.match_labels["app"] = name
    pod_template(ds.spec.template, image="agent:1", app=name)
    ds.spec.template.spec.node_selector["pool"] = ns
    ds.spec.template.spec.node_selector.update(extra)
    ds.spec.update_strategy.type = strategy
    return ds


async def daemon_pods(api: ApiClient, ns: str, ds: Any, *, live: bool = True) -> list[Any]:
    listed = await api.list("Pod", namespace=ns)
    out = []
    for p in listed.items:
        ref = controller_of(p)
        if ref is None or ref.uid != ds.metadata.uid:
            continue
        if live and p.metadata.HasField("deletion_timestamp"):
            continue
        out.append(p)
    return out


async def on_nodes(api: ApiClient, ns: str, ds: Any, names: set[str]) -> list[Any] | None:
    """The live daemon pods, if there is exactly one on each of ``names`` and no other."""
    pods = await daemon_pods(api, ns, ds)
    placed = sorted(p.spec.node_name for p in pods)
    return pods if placed == sorted(f"{ns}-{n}" for n in names) else None


async def status_is(api: ApiClient, ns: str, name: str, **expected: int) -> Any:
    got: Any = await api.get("DaemonSet", name, namespace=ns)
    s = got.status
    actual = {k: getattr(s, k) for k in expected}
    return got if actual == expected else None


@asynccontextmanager
async def fake_node_agent(api: ApiClient, ns: str) -> AsyncIterator[None]:
    """Bound pods become Running and Ready; terminating pods are finished (grace 0)."""

    async def loop() -> None:
        while True:
            listed = await api.list("Pod", namespace=ns)
            for p in listed.items:
                if not p.spec.node_name:
                    continue
                try:
                    if p.metadata.HasField("deletion_timestamp"):
                        await api.delete(
                            "Pod", p.metadata.name, namespace=ns, grace_period_seconds=0
                        )
                    elif p.status.phase != "Running":
                        await set_pod_ready(api, ns, p.metadata.name)
                except NotFound:
                    pass
            await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(loop)
        yield
        nursery.cancel_scope.cancel()


async def test_one_pod_per_eligible_node(api: ApiClient, ns: str, harness: Harness) -> None:
    await harness.start(daemonset.new_controller)
    await add_node(api, ns, "a")
    await add_node(api, ns, "b")
    await add_node(api, ns, "tainted", ("dedicated", "NoSchedule"))
    await add_node(api, ns, "cordoned", ("node.kubernetes.io/unschedulable", "NoSchedule"))
    await add_node(api, ns, "sick", ("node.kubernetes.io/not-ready", "NoExecute"))
    ds = await api.create(daemon_set("agent", ns))
    pods = await wait_until(lambda: on_nodes(api, ns, ds, {"a", "b", "cordoned", "sick"}))
    expected_hash = daemonset.template_hash(ds.spec.template)
    for p in pods:
        assert p.metadata.labels[daemonset.HASH_LABEL] == expected_hash
        assert p.metadata.labels[daemonset.TEMPLATE_GENERATION_LABEL] == "1"
        required = p.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        [term] = required.node_selector_terms
        assert (term.match_fields[0].key, list(term.match_fields[0].values)) == (
            "metadata.name",
            [p.spec.node_name],
        )
        tolerated = {(t.key, t.effect) for t in p.spec.tolerations}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in tolerated
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
        unreachable = next(
            t for t in p.spec.tolerations if t.key == "node.kubernetes.io/unreachable"
        )
        assert not unreachable.HasField("toleration_seconds"), "daemons are never evicted"
    await wait_until(
        lambda: status_is(
            api,
            ns,
            "agent",
            desired_number_scheduled=4,
            current_number_scheduled=4,
            number_ready=0,
            number_available=0,
            number_unavailable=4,
            updated_number_scheduled=4,
            number_misscheduled=0,
        )
    )
    for p in pods[:3]:
        await set_pod_ready(api, ns, p.metadata.name)
    got = await wait_until(lambda: status_is(api, ns, "agent", number_ready=3, number_available=3))
    assert got.status.observed_generation == got.metadata.generation
    assert await wait_until(lambda: _event(api, ns, "agent", "SuccessfulCreate"))


async def test_follows_nodes_that_join_change_and_leave(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(daemonset.new_controller)
    await add_node(api, ns, "a", disk="ssd")
    await add_node(api, ns, "b", disk="ssd")
    ds = await api.create(daemon_set("exporter", ns, disk="ssd"))
    await wait_until(lambda: on_nodes(api, ns, ds, {"a", "b"}))
    # A node joins: it gets a pod.
    await add_node(api, ns, "c", disk="ssd")
    await wait_until(lambda: on_nodes(api, ns, ds, {"a", "b", "c"}))
    # A node stops matching the selector: its pod is deleted.
    await edit_node(api, ns, "a", lambda n: n.metadata.labels.update(disk="hdd"))
    await wait_until(lambda: on_nodes(api, ns, ds, {"b", "c"}))
    # Cordoning keeps the pod; a NoExecute taint it does not tolerate evicts it.
    await edit_node(api, ns, "b", lambda n: setattr(n.spec, "unschedulable", True))
    await edit_node(
        api, ns, "c", lambda n: n.spec.taints.add(key="maintenance", effect="NoExecute")
    )
    await wait_until(lambda: on_nodes(api, ns, ds, {"b"}))
    # A node that is removed takes its pod along (deleted outright: no agent is left).
    on_b = (await daemon_pods(api, ns, ds))[0]
    await api.delete("Node", f"{ns}-b")
    await wait_until(partial(_gone, api, ns, on_b.metadata.name))
    # The pods on a and c are still terminating (no node agent finishes them here):
    # until they are gone they count as misscheduled, as in Kubernetes.
    await wait_until(
        lambda: status_is(
            api,
            ns,
            "exporter",
            desired_number_scheduled=0,
            current_number_scheduled=0,
            number_misscheduled=2,
        )
    )


async def test_failed_daemon_pod_is_replaced(api: ApiClient, ns: str, harness: Harness) -> None:
    await harness.start(daemonset.new_controller)
    await add_node(api, ns, "a")
    ds = await api.create(daemon_set("flaky", ns))
    [first] = await wait_until(lambda: on_nodes(api, ns, ds, {"a"}))
    failed: Any = await api.get("Pod", first.metadata.name, namespace=ns)
    failed.status.phase = "Failed"
    await api.update_status(failed)

    async def replaced() -> Any:
        pods = await on_nodes(api, ns, ds, {"a"})
        return pods if pods and pods[0].metadata.name != first.metadata.name else None

    # The failed pod is bound, so its deletion waits for the node agent: play it.
    async with fake_node_agent(api, ns):
        await wait_until(replaced)
    assert await wait_until(lambda: _event(api, ns, "flaky", "FailedDaemonPod"))


async def test_rolling_update_respects_max_unavailable(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(daemonset.new_controller)
    names = {"a", "b", "c", "d"}
    for name in names:
        await add_node(api, ns, name)
    ds = await api.create(daemon_set("roller", ns))
    async with fake_node_agent(api, ns):
        await wait_until(
            lambda: status_is(api, ns, "roller", desired_number_scheduled=4, number_available=4)
        )
        ds = await set_image(api, ns, "roller", "agent:2")
        new_hash = daemonset.template_hash(ds.spec.template)
        worst = 4

        async def rolled() -> bool:
            nonlocal worst
            pods = await daemon_pods(api, ns, ds, live=False)
            available = {
                p.spec.node_name
                for p in pods
                if not p.metadata.HasField("deletion_timestamp") and is_pod_available(p, 0)
            }
            worst = min(worst, len(available))
            done = [
                p
                for p in pods
                if p.metadata.labels.get(daemonset.HASH_LABEL) == new_hash
                and is_pod_available(p, 0)
            ]
            return len(done) == 4 and len(pods) == 4

        await wait_until(rolled, timeout=20, every=0.02)
        # maxUnavailable 1: never fewer than 3 of the 4 nodes had an available daemon.
        assert worst >= 3
        images = {p.spec.containers[0].image for p in await daemon_pods(api, ns, ds)}
        assert images == {"agent:2"}
        await wait_until(
            lambda: status_is(api, ns, "roller", updated_number_scheduled=4, number_available=4)
        )


async def test_on_delete_waits_for_manual_deletion(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(daemonset.new_controller)
    await add_node(api, ns, "a")
    await add_node(api, ns, "b")
    ds = await api.create(daemon_set("manual", ns, strategy="OnDelete"))
    async with fake_node_agent(api, ns):
        pods = await wait_until(lambda: on_nodes(api, ns, ds, {"a", "b"}))
        ds = await set_image(api, ns, "manual", "agent:2")
        await wait_until(
            lambda: status_is(api, ns, "manual", observed_generation=2, updated_number_scheduled=0)
        )
        assert {p.metadata.name for p in await daemon_pods(api, ns, ds)} == {
            p.metadata.name for p in pods
        }
        await api.delete("Pod", pods[0].metadata.name, namespace=ns)

        async def one_new() -> Any:
            now = await on_nodes(api, ns, ds, {"a", "b"})
            if not now:
                return None
            images = sorted(p.spec.containers[0].image for p in now)
            return now if images == ["agent:1", "agent:2"] else None

        await wait_until(one_new)
        await wait_until(lambda: status_is(api, ns, "manual", updated_number_scheduled=1))


async def test_adopts_a_matching_orphan_instead_of_adding_a_pod(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await add_node(api, ns, "a")
    await add_node(api, ns, "b")
    orphan = make("Pod", "handmade", ns, app="keeper")
    orphan.spec.containers.add(name="main", image="agent:1")
    orphan.spec.node_name = f"{ns}-a"
    await api.create(orphan)
    await harness.start(daemonset.new_controller)
    # OnDelete: the adopted pod lacks the revision label, so a RollingUpdate would
    # replace it at once as an out-of-date pod (as in Kubernetes).
    ds = await api.create(daemon_set("keeper", ns, strategy="OnDelete"))
    pods = await wait_until(lambda: on_nodes(api, ns, ds, {"a", "b"}))
    assert "handmade" in {p.metadata.name for p in pods}
    adopted: Any = await api.get("Pod", "handmade", namespace=ns)
    ref = controller_of(adopted)
    assert ref is not None and ref.uid == ds.metadata.uid


# ------------------------------------------------------------------------- helpers


async def _event(api: ApiClient, ns: str, name: str, reason: str) -> bool:
    return any(r == reason for _, r, _ in await events_for(api, ns, name))


async def _gone(api: ApiClient, ns: str, name: str) -> bool:
    try:
        await api.get("Pod", name, namespace=ns)
    except NotFound:
        return True
    return False
