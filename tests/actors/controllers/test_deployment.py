"""The Deployment controller (with the ReplicaSet controller) against a real API server.

No node agent runs here: :class:`FakeKubelet` plays its part for readiness -- it marks
pods Running and Ready as they appear (only those whose image it is told to start) -- and,
for Recreate, finishes the graceful deletion of bound pods when the test says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from actors.client import ApiClient, Conflict, NotFound
from actors.controllers import deployment, replicaset
from actors.controllers.deployment import POD_TEMPLATE_HASH_LABEL, compute_hash, rollback_template
from actors.controllers.deployment.rollback import RollbackError
from actors.controllers.podcontrol import controller_of, is_pod_ready
from tests.actors.controllers.conftest import Harness, make, pod_template, wait_until

REVISION = "deployment.kubernetes.io/revision"


def a_deployment(
    name: str,
    ns: str,
    replicas: int,
    image: str = "app:1",
    *,
    surge: int | str | None = None,
    unavailable: int | str | None = None,
    strategy: str = "RollingUpdate",
    **spec: Any,
) -> Any:
    d = make("Deployment", name, ns)
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    pod_template(d.spec.template, image=image, app=name)
    d.spec.strategy.type = strategy
    if surge is not None:
        _int_or_str(d.spec.strategy.rolling_update.max_surge, surge)
    if unavailable is not None:
        _int_or_str(d.spec.strategy.rolling_update.max_unavailable, unavailable)
    for k, v in spec.items():
        setattr(d.spec, k, v)
    return d


def _int_or_str(target: Any, value: int | str) -> None:
    if isinstance(value, int):
        target.int_val = value
    else:
        target.str_val = value


@dataclass
class FakeKubelet:
    """Marks pods with an image in ``images`` Running + Ready (bound to ``node``)."""

    api: ApiClient
    ns: str
    images: set[str] = field(default_factory=set)
    node: str = ""

    async def run(self) -> None:
        while True:
            listed = await self.api.list("Pod", namespace=self.ns)
            for p in listed.items:
                if p.metadata.HasField("deletion_timestamp") or is_pod_ready(p):
                    continue
                if p.spec.containers[0].image not in self.images:
                    continue
                await self._start(p)
            await trio.sleep(0.05)

    async def _start(self, p: Any) -> None:
        try:
            if self.node and not p.spec.node_name:
                p = await self.api.bind(p.metadata.name, self.node, namespace=self.ns)
            p.status.phase = "Running"
            c = p.status.conditions.add(type="Ready", status="True")
            c.last_transition_time.GetCurrentTime()
            await self.api.update_status(p)
        except (Conflict, NotFound):
            pass

    async def finish_deletions(self) -> int:
        """Delete terminating pods for good (the kubelet has stopped them)."""
        listed = await self.api.list("Pod", namespace=self.ns)
        done = 0
        for p in listed.items:
            if p.metadata.HasField("deletion_timestamp"):
                try:
                    await self.api.delete(
                        "Pod", p.metadata.name, namespace=self.ns, grace_period_seconds=0
                    )
                    done += 1
                except NotFound:
                    pass
        return done


@pytest.fixture
async def controllers(harness: Harness) -> Harness:
    await harness.start(replicaset.new_controller, deployment.new_controller)
    return harness


async def get(api: ApiClient, kind: str, name: str, ns: str) -> Any:
    return await api.get(kind, name, namespace=ns)


async def replica_sets(api: ApiClient, ns: str) -> list[Any]:
    return list((await api.list("ReplicaSet", namespace=ns)).items)


async def live_pods(api: ApiClient, ns: str) -> list[Any]:
    listed = await api.list("Pod", namespace=ns)
    return [p for p in listed.items if not p.metadata.HasField("deletion_timestamp")]


def condition(d: Any, type_: str) -> tuple[str, str] | None:
    for c in d.status.conditions:
        if c.type == type_:
            return c.status, c.reason
    return None


async def complete(api: ApiClient, ns: str, name: str) -> Any:
    d = await get(api, "Deployment", name, ns)
    s = d.status
    done = (
        s.observed_generation == d.metadata.generation
        and s.updated_replicas == s.replicas == s.available_replicas == d.spec.replicas
        and condition(d, "Progressing") == ("True", "NewReplicaSetAvailable")
    )
    return d if done else None


# ------------------------------------------------------------------------- tests


async def test_creates_hash_named_replica_set_and_reports_availability(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    created = await api.create(a_deployment("web", ns, 3))
    rs_list = await wait_until(lambda: replica_sets(api, ns))
    [rs] = rs_list
    pod_hash = compute_hash(created.spec.template)
    assert rs.metadata.name == f"web-{pod_hash}"
    assert rs.metadata.labels[POD_TEMPLATE_HASH_LABEL] == pod_hash
    assert rs.spec.selector.match_labels[POD_TEMPLATE_HASH_LABEL] == pod_hash
    assert rs.spec.template.metadata.labels[POD_TEMPLATE_HASH_LABEL] == pod_hash
    ref = controller_of(rs)
    assert ref is not None and (ref.kind, ref.uid) == ("Deployment", created.metadata.uid)
    annotations = dict(rs.metadata.annotations)
    assert annotations[REVISION] == "1"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "3"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "4"  # 25% of 3 rounds up
    pods = await wait_until(lambda: _count(live_pods(api, ns), 3))
    assert {p.metadata.labels[POD_TEMPLATE_HASH_LABEL] for p in pods} == {pod_hash}

    async def unavailable() -> Any:
        got = await get(api, "Deployment", "web", ns)
        return got if condition(got, "Available") else None

    d = await wait_until(unavailable)
    assert d.metadata.annotations[REVISION] == "1"
    assert condition(d, "Available") == ("False", "MinimumReplicasUnavailable")
    nursery.start_soon(FakeKubelet(api, ns, {"app:1"}).run)
    d = await wait_until(lambda: complete(api, ns, "web"))
    assert condition(d, "Available") == ("True", "MinimumReplicasAvailable")
    assert (d.status.ready_replicas, d.status.unavailable_replicas) == (3, 0)


async def test_rolling_update_stays_within_surge_and_unavailability(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    replicas, surge, unavailable = 6, 2, 1
    kubelet = FakeKubelet(api, ns, {"app:1", "app:2"})
    nursery.start_soon(kubelet.run)
    await api.create(a_deployment("roll", ns, replicas, surge=surge, unavailable=unavailable))
    d = await wait_until(lambda: complete(api, ns, "roll"))
    old_rs_name = f"roll-{compute_hash(d.spec.template)}"

    d.spec.template.spec.containers[0].image = "app:2"
    d = await api.update(d)
    samples = 0
    most_total, fewest_ready = 0, replicas
    with trio.fail_after(30):
        while True:
            rss = await replica_sets(api, ns)
            pods = await live_pods(api, ns)
            total = sum(rs.spec.replicas for rs in rss)
            ready = sum(1 for p in pods if is_pod_ready(p))
            most_total = max(most_total, total)
            fewest_ready = min(fewest_ready, ready)
            samples += 1
            assert total <= replicas + surge, f"{total} replicas wanted at once"
            assert ready >= replicas - unavailable, f"only {ready} ready pods"
            if await complete(api, ns, "roll"):
                break
            await trio.sleep(0.02)
    assert samples > 5
    assert most_total == replicas + surge  # the surge was used
    by_name = {rs.metadata.name: rs for rs in await replica_sets(api, ns)}
    new_name = f"roll-{compute_hash(d.spec.template)}"
    assert by_name[old_rs_name].spec.replicas == 0
    assert by_name[new_name].spec.replicas == replicas
    assert by_name[new_name].metadata.annotations[REVISION] == "2"
    d = await get(api, "Deployment", "roll", ns)
    assert d.metadata.annotations[REVISION] == "2"
    images = {p.spec.containers[0].image for p in await live_pods(api, ns)}
    assert images == {"app:2"}


async def test_recreate_removes_old_pods_before_creating_new_ones(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    kubelet = FakeKubelet(api, ns, {"app:1", "app:2"}, node="n1")
    nursery.start_soon(kubelet.run)
    await api.create(a_deployment("rec", ns, 2, strategy="Recreate"))
    d = await wait_until(lambda: complete(api, ns, "rec"))
    d.spec.template.spec.containers[0].image = "app:2"
    await api.update(d)

    # Old pods are bound, so deleting them leaves them Terminating until the kubelet is
    # done: the new ReplicaSet must wait for that.
    async def all_old_terminating() -> bool:
        listed = await api.list("Pod", namespace=ns)
        return bool(listed.items) and all(
            p.metadata.HasField("deletion_timestamp") for p in listed.items
        )

    await wait_until(all_old_terminating)
    await trio.sleep(0.5)  # give a wrong controller the chance to create new pods early
    listed = await api.list("Pod", namespace=ns)
    assert {p.spec.containers[0].image for p in listed.items} == {"app:1"}
    assert len(await replica_sets(api, ns)) == 1
    assert await kubelet.finish_deletions() == 2
    d = await wait_until(lambda: complete(api, ns, "rec"))
    images = [p.spec.containers[0].image for p in await live_pods(api, ns)]
    assert images == ["app:2", "app:2"]


async def test_rollback_restores_an_earlier_template_as_a_new_revision(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    nursery.start_soon(FakeKubelet(api, ns, {"app:1", "app:2"}).run)
    await api.create(a_deployment("undo", ns, 2))
    d = await wait_until(lambda: complete(api, ns, "undo"))
    first_rs = f"undo-{compute_hash(d.spec.template)}"
    d.spec.template.spec.containers[0].image = "app:2"
    await api.update(d)
    await wait_until(lambda: _revision_is(api, ns, "undo", "2"))
    await wait_until(lambda: complete(api, ns, "undo"))

    with pytest.raises(RollbackError, match="unable to find specified revision 7"):
        await rollback_template(api, "undo", 7, namespace=ns)
    result = await rollback_template(api, "undo", 0, namespace=ns)
    assert not result.skipped and result.revision == 1
    assert result.deployment.spec.template.spec.containers[0].image == "app:1"
    await wait_until(lambda: _revision_is(api, ns, "undo", "3"))
    d = await wait_until(lambda: complete(api, ns, "undo"))
    rss = {rs.metadata.name: rs for rs in await replica_sets(api, ns)}
    assert len(rss) == 2  # the first ReplicaSet came back, none was added
    assert rss[first_rs].metadata.annotations[REVISION] == "3"
    assert rss[first_rs].spec.replicas == 2
    again = await rollback_template(api, "undo", 3, namespace=ns)
    assert again.skipped and "skipped rollback" in again.message


async def test_pause_holds_the_rollout_but_scaling_applies(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    nursery.start_soon(FakeKubelet(api, ns, {"app:1", "app:2"}).run)
    await api.create(a_deployment("hold", ns, 2))
    d = await wait_until(lambda: complete(api, ns, "hold"))
    d.spec.paused = True
    d.spec.template.spec.containers[0].image = "app:2"
    d.spec.replicas = 3
    await api.update(d)

    async def paused_and_scaled() -> bool:
        got = await get(api, "Deployment", "hold", ns)
        rss = await replica_sets(api, ns)
        return (
            condition(got, "Progressing") == ("Unknown", "DeploymentPaused")
            and len(rss) == 1
            and rss[0].spec.replicas == 3
        )

    await wait_until(paused_and_scaled)
    with pytest.raises(RollbackError, match="paused"):
        await rollback_template(api, "hold", 0, namespace=ns)
    await trio.sleep(0.3)
    assert len(await replica_sets(api, ns)) == 1  # still no new ReplicaSet

    await api.patch_merge("Deployment", "hold", {"spec": {"paused": False}}, namespace=ns)
    d = await wait_until(lambda: _revision_is(api, ns, "hold", "2"))
    d = await wait_until(lambda: complete(api, ns, "hold"))
    images = {p.spec.containers[0].image for p in await live_pods(api, ns)}
    assert images == {"app:2"} and d.status.replicas == 3


async def test_progress_deadline_exceeded_when_pods_never_become_ready(
    api: ApiClient, ns: str, controllers: Harness
) -> None:
    await api.create(a_deployment("stuck", ns, 2, progress_deadline_seconds=1))

    async def timed_out() -> bool:
        got = await get(api, "Deployment", "stuck", ns)
        return condition(got, "Progressing") == ("False", "ProgressDeadlineExceeded")

    # No pod or ReplicaSet changes after the pods were created: only the requeue at the
    # deadline can set the condition.
    await wait_until(timed_out, timeout=10)
    got = await get(api, "Deployment", "stuck", ns)
    assert condition(got, "Available") == ("False", "MinimumReplicasUnavailable")


async def test_revision_history_limit_deletes_oldest_scaled_down_sets(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    images = {f"app:{i}" for i in range(1, 5)}
    nursery.start_soon(FakeKubelet(api, ns, images).run)
    await api.create(a_deployment("hist", ns, 1, revision_history_limit=1))
    for i in range(2, 5):
        d = await wait_until(lambda: complete(api, ns, "hist"))
        d.spec.template.spec.containers[0].image = f"app:{i}"
        await api.update(d)
        await wait_until(lambda i=i: _revision_is(api, ns, "hist", str(i)))  # type: ignore[misc]
    await wait_until(lambda: complete(api, ns, "hist"))

    async def pruned() -> list[str] | None:
        rss = await replica_sets(api, ns)
        revs = sorted(rs.metadata.annotations[REVISION] for rs in rss)
        return revs if revs == ["3", "4"] else None

    await wait_until(pruned)


async def test_restart_annotation_rolls_to_a_new_replica_set(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    nursery.start_soon(FakeKubelet(api, ns, {"app:1"}).run)
    await api.create(a_deployment("rs", ns, 1))
    d = await wait_until(lambda: complete(api, ns, "rs"))
    d.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] = (
        "2024-05-01T12:00:00Z"
    )
    await api.update(d)
    await wait_until(lambda: _revision_is(api, ns, "rs", "2"))
    await wait_until(lambda: complete(api, ns, "rs"))
    assert len(await replica_sets(api, ns)) == 2


# ------------------------------------------------------------------------- helpers


async def _count(pods: Any, n: int) -> list[Any] | None:
    got = await pods
    return got if len(got) == n else None


async def _revision_is(api: ApiClient, ns: str, name: str, revision: str) -> Any:
    d = await get(api, "Deployment", name, ns)
    return d if d.metadata.annotations.get(REVISION) == revision else None


async def test_scaling_mid_rollout_is_proportional(
    api: ApiClient, ns: str, controllers: Harness, nursery: trio.Nursery
) -> None:
    # app:2 pods never become ready, so the rollout stalls with both ReplicaSets active.
    nursery.start_soon(FakeKubelet(api, ns, {"app:1"}).run)
    await api.create(a_deployment("prop", ns, 4))
    d = await wait_until(lambda: complete(api, ns, "prop"))
    d.spec.template.spec.containers[0].image = "app:2"
    await api.update(d)

    async def sizes(expected: dict[str, int]) -> dict[str, int] | None:
        rss = await replica_sets(api, ns)
        got = {rs.spec.template.spec.containers[0].image: rs.spec.replicas for rs in rss}
        return got if got == expected else None

    # 4 replicas, surge 1, unavailable 1: old 3 + new 2 and no further.
    await wait_until(lambda: sizes({"app:1": 3, "app:2": 2}))
    await api.patch_merge("Deployment", "prop", {"spec": {"replicas": 8}}, namespace=ns)
    # 8 replicas + surge 2 = 10, split 3:2 as before.
    await wait_until(lambda: sizes({"app:1": 6, "app:2": 4}))
    await api.patch_merge("Deployment", "prop", {"spec": {"replicas": 2}}, namespace=ns)
    # 2 replicas + surge 1 = 3: 6*3/10 -> 2, 4*3/10 -> 1.
    await wait_until(lambda: sizes({"app:1": 2, "app:2": 1}))
