"""The Job controller against a real API server on a real raftstore member.

Pods do not run here: the tests play the node agent and set a pod's phase to Succeeded
or Failed through the status subresource, as a node agent would report it. The pod
failure backoff is shortened (0.2 s doubling) so that retries take a fraction of a second.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from actors.client import ApiClient, Conflict, NotFound
from actors.controller import Controller
from actors.controllers import job as jobctl
from actors.controllers.context import ControllerContext
from actors.controllers.podcontrol import controller_of
from tests.actors.controllers.conftest import Harness, events_for, make, wait_until

FAST = jobctl.PodFailureBackoff(initial=0.2, maximum=1.0)


def new_fast(ctx: ControllerContext) -> Controller:
    return jobctl.new_controller(ctx, pod_failure_backoff=FAST)


def job(
    name: str,
    ns: str,
    *,
    completions: int | None = 1,
    parallelism: int | None = 1,
    backoff_limit: int | None = None,
    restart_policy: str = "Never",
    **spec: Any,
) -> Any:
    out = make("Job", name, ns)
    if completions is not None:
        out.spec.completions = completions
    if parallelism is not None:
        out.spec.parallelism = parallelism
    if backoff_limit is not None:
        out.spec.backoff_limit = backoff_limit
    for field, value in spec.items():
        setattr(out.spec, field, value)
    out.spec.template.spec.restart_policy = restart_policy
    out.spec.template.spec.containers.add(name="main", image="busybox")
    return out


async def pods_of(api: ApiClient, ns: str, owner: Any, *, active: bool = True) -> list[Any]:
    listed = await api.list("Pod", namespace=ns)
    out = []
    for p in listed.items:
        ref = controller_of(p)
        if ref is None or ref.uid != owner.metadata.uid:
            continue
        if active and (
            p.metadata.HasField("deletion_timestamp") or p.status.phase in ("Succeeded", "Failed")
        ):
            continue
        out.append(p)
    return sorted(out, key=lambda p: p.metadata.name)


async def finish(api: ApiClient, ns: str, name: str, phase: str) -> Any:
    """Report pod ``name`` Succeeded or Failed, as a node agent does (container
    terminated now, Ready=False)."""
    while True:
        pod: Any = await api.get("Pod", name, namespace=ns)
        pod.status.phase = phase
        del pod.status.container_statuses[:]
        status = pod.status.container_statuses.add(name="main")
        status.state.terminated.exit_code = 0 if phase == "Succeeded" else 1
        status.state.terminated.finished_at.GetCurrentTime()
        del pod.status.conditions[:]
        ready = pod.status.conditions.add(type="Ready", status="False")
        ready.last_transition_time.GetCurrentTime()
        try:
            return await api.update_status(pod)
        except Conflict:
            continue


async def current(api: ApiClient, ns: str, name: str) -> Any:
    got: Any = await api.get("Job", name, namespace=ns)
    return got


def condition(j: Any, type_: str) -> Any:
    return next((c for c in j.status.conditions if c.type == type_ and c.status == "True"), None)


async def has_condition(api: ApiClient, ns: str, name: str, type_: str) -> Any:
    j = await current(api, ns, name)
    return j if condition(j, type_) is not None else None


async def exactly(api: ApiClient, ns: str, owner: Any, count: int) -> list[Any] | None:
    pods = await pods_of(api, ns, owner)
    return pods if len(pods) == count else None


async def test_runs_completions_with_parallelism_and_completes(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("calc", ns, completions=3, parallelism=2))
    assert created.spec.selector.match_labels["batch.kubernetes.io/controller-uid"] == (
        created.metadata.uid
    )
    first = await wait_until(lambda: exactly(api, ns, created, 2))
    for p in first:
        assert p.metadata.name.startswith("calc-")
        assert jobctl.TRACKING_FINALIZER in p.metadata.finalizers
        assert p.metadata.labels["batch.kubernetes.io/job-name"] == "calc"
        ref: Any = controller_of(p)
        assert (ref.kind, ref.name, ref.api_version) == ("Job", "calc", "batch/v1")

    async def counts() -> tuple[int, int, int]:
        s = (await current(api, ns, "calc")).status
        return (s.active, s.succeeded, s.failed)

    await wait_until(lambda: _eq(counts(), (2, 0, 0)))
    j = await current(api, ns, "calc")
    assert j.status.HasField("start_time")
    await finish(api, ns, first[0].metadata.name, "Succeeded")
    await finish(api, ns, first[1].metadata.name, "Succeeded")
    # Only one more is needed: never more than completions - succeeded at once.
    last = await wait_until(lambda: exactly(api, ns, created, 1))
    await wait_until(lambda: _eq(counts(), (1, 2, 0)))
    assert condition(await current(api, ns, "calc"), "Complete") is None
    await finish(api, ns, last[0].metadata.name, "Succeeded")
    done = await wait_until(lambda: has_condition(api, ns, "calc", "Complete"))
    assert (done.status.active, done.status.succeeded, done.status.failed) == (0, 3, 0)
    assert condition(done, "SuccessCriteriaMet") is not None
    assert condition(done, "Complete").reason == "CompletionsReached"
    assert done.status.HasField("completion_time")
    assert not done.status.uncounted_terminated_pods.succeeded
    # Every pod was counted, then let go of.
    finished = await pods_of(api, ns, created, active=False)
    assert len(finished) == 3
    assert all(jobctl.TRACKING_FINALIZER not in p.metadata.finalizers for p in finished)
    await wait_until(lambda: _has_event(api, ns, "calc", "Completed"))
    assert len(await pods_of(api, ns, created, active=False)) == 3


async def test_fails_twice_then_succeeds_with_backoff(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("flaky", ns, backoff_limit=3))
    for attempt in range(2):
        pods = await wait_until(lambda: exactly(api, ns, created, 1))
        failed_at = trio.current_time()
        await finish(api, ns, pods[0].metadata.name, "Failed")
        # The replacement waits for the backoff: 0.2 s, then 0.4 s.
        replaced = await wait_until(
            partial(_newer, api, ns, created, {pods[0].metadata.name}), timeout=10
        )
        assert trio.current_time() - failed_at >= 0.2 * 2**attempt * 0.8
        assert replaced
    pods = await wait_until(lambda: exactly(api, ns, created, 1))
    await finish(api, ns, pods[0].metadata.name, "Succeeded")
    done = await wait_until(lambda: has_condition(api, ns, "flaky", "Complete"))
    assert (done.status.succeeded, done.status.failed) == (1, 2)


async def test_backoff_limit_exceeded_fails_the_job(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("doomed", ns, backoff_limit=1))
    seen: set[str] = set()
    for _ in range(2):
        pods = await wait_until(lambda: _newer(api, ns, created, seen))
        seen.add(pods[0].metadata.name)
        await finish(api, ns, pods[0].metadata.name, "Failed")
    failed = await wait_until(lambda: has_condition(api, ns, "doomed", "Failed"))
    assert condition(failed, "Failed").reason == "BackoffLimitExceeded"
    assert condition(failed, "FailureTarget") is not None
    assert (failed.status.failed, failed.status.succeeded, failed.status.active) == (2, 0, 0)
    assert not failed.status.HasField("completion_time")
    await wait_until(lambda: _has_event(api, ns, "doomed", "BackoffLimitExceeded"))
    # No third pod once failed.
    assert len(await pods_of(api, ns, created, active=False)) == 2


async def test_on_failure_restarts_count_toward_backoff_limit(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("restarts", ns, backoff_limit=2, restart_policy="OnFailure"))
    pods = await wait_until(lambda: exactly(api, ns, created, 1))
    running: Any = await api.get("Pod", pods[0].metadata.name, namespace=ns)
    running.status.phase = "Running"
    running.status.container_statuses.add(name="main", restart_count=2)
    await api.update_status(running)
    failed = await wait_until(lambda: has_condition(api, ns, "restarts", "Failed"))
    assert condition(failed, "Failed").reason == "BackoffLimitExceeded"
    # The running pod was deleted and counted as a failure.
    assert failed.status.failed == 1
    await wait_until(lambda: _gone(api, ns, pods[0].metadata.name))


async def test_active_deadline_fails_and_deletes_pods(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(
        job("slow", ns, completions=2, parallelism=2, active_deadline_seconds=1)
    )
    pods = await wait_until(lambda: exactly(api, ns, created, 2))
    started = trio.current_time()
    failed = await wait_until(lambda: has_condition(api, ns, "slow", "Failed"), timeout=10)
    assert trio.current_time() - started < 5
    assert condition(failed, "Failed").reason == "DeadlineExceeded"
    assert condition(failed, "Failed").message == "Job was active longer than specified deadline"
    assert (failed.status.active, failed.status.failed) == (0, 2)
    for p in pods:
        await wait_until(partial(_gone, api, ns, p.metadata.name))
    await wait_until(lambda: _has_event(api, ns, "slow", "DeadlineExceeded"))


async def test_ttl_after_finished_deletes_the_job(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("brief", ns, ttl_seconds_after_finished=1))
    pods = await wait_until(lambda: exactly(api, ns, created, 1))
    await finish(api, ns, pods[0].metadata.name, "Succeeded")
    await wait_until(lambda: has_condition(api, ns, "brief", "Complete"))
    completed = trio.current_time()
    await wait_until(lambda: _job_gone(api, ns, "brief"), timeout=10)
    assert trio.current_time() - completed >= 0.5


async def test_indexed_job_gives_each_pod_its_index(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(
        job("shards", ns, completions=3, parallelism=3, completion_mode="Indexed")
    )
    pods = await wait_until(lambda: exactly(api, ns, created, 3))
    by_index = {}
    for p in pods:
        index = p.metadata.annotations[jobctl.COMPLETION_INDEX_KEY]
        assert p.metadata.labels[jobctl.COMPLETION_INDEX_KEY] == index
        assert p.metadata.name.startswith(f"shards-{index}-")
        assert p.spec.hostname == f"shards-{index}"
        env = {e.name: e.value for e in p.spec.containers[0].env}
        assert env[jobctl.JOB_COMPLETION_INDEX_ENV] == index
        by_index[index] = p
    assert sorted(by_index) == ["0", "1", "2"]
    await finish(api, ns, by_index["1"].metadata.name, "Succeeded")
    await finish(api, ns, by_index["2"].metadata.name, "Failed")
    # Index 2 gets a new pod; index 1 is done.
    replacement = await wait_until(
        lambda: _newer(api, ns, created, {p.metadata.name for p in pods})
    )
    assert replacement[0].metadata.annotations[jobctl.COMPLETION_INDEX_KEY] == "2"
    j = await wait_until(lambda: _completed_indexes(api, ns, "shards", "1"))
    assert j.status.succeeded == 1
    await finish(api, ns, by_index["0"].metadata.name, "Succeeded")
    await finish(api, ns, replacement[0].metadata.name, "Succeeded")
    done = await wait_until(lambda: has_condition(api, ns, "shards", "Complete"))
    assert done.status.completed_indexes == "0-2"
    assert (done.status.succeeded, done.status.failed) == (3, 1)


async def test_suspend_deletes_pods_and_resume_recreates(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("paused", ns, completions=2, parallelism=2, suspend=True))
    j = await wait_until(lambda: has_condition(api, ns, "paused", "Suspended"))
    assert not j.status.HasField("start_time")
    assert await pods_of(api, ns, created) == []
    j.spec.suspend = False
    await api.update(j)
    pods = await wait_until(lambda: exactly(api, ns, created, 2))
    resumed = await wait_until(lambda: _suspended_condition(api, ns, "paused", "False"))
    suspended = next(c for c in resumed.status.conditions if c.type == "Suspended")
    assert suspended.reason == "JobResumed"
    assert resumed.status.HasField("start_time")
    # Suspending again deletes the pods without counting them as failures.
    resumed.spec.suspend = True
    await api.update(resumed)
    for p in pods:
        await wait_until(partial(_gone, api, ns, p.metadata.name))
    again = await wait_until(lambda: has_condition(api, ns, "paused", "Suspended"))
    assert (again.status.active, again.status.failed) == (0, 0)


async def test_counts_stay_exact_across_a_controller_restart(
    api: ApiClient, ns: str, harness: Harness, nursery: trio.Nursery
) -> None:
    created = await api.create(job("exact", ns, completions=4, parallelism=2))
    first = trio.CancelScope()

    async def run_first(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with first:
            ctx = harness.context()
            ctl = new_fast(ctx)
            async with trio.open_nursery() as inner:
                await inner.start(ctx.recorder.run)
                await inner.start(ctx.informers.run)
                await inner.start(ctl.run)
                task_status.started()
                await trio.sleep_forever()

    await nursery.start(run_first)
    pods = await wait_until(lambda: exactly(api, ns, created, 2))
    await finish(api, ns, pods[0].metadata.name, "Succeeded")
    await finish(api, ns, pods[1].metadata.name, "Failed")
    await wait_until(lambda: _counted(api, ns, "exact", 1, 1))
    first.cancel()
    # A new controller with fresh caches sees the same pods and counts nothing again.
    await harness.start(new_fast)
    more = await wait_until(lambda: exactly(api, ns, created, 2))
    j = await current(api, ns, "exact")
    assert (j.status.succeeded, j.status.failed) == (1, 1)
    for p in more:
        await finish(api, ns, p.metadata.name, "Succeeded")
    last = await wait_until(lambda: exactly(api, ns, created, 1))
    await finish(api, ns, last[0].metadata.name, "Succeeded")
    done = await wait_until(lambda: has_condition(api, ns, "exact", "Complete"))
    assert (done.status.succeeded, done.status.failed) == (4, 1)


async def test_finalizers_of_a_deleted_jobs_pods_are_removed(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(new_fast)
    created = await api.create(job("gone", ns, completions=1))
    pods = await wait_until(lambda: exactly(api, ns, created, 1))
    await api.delete("Job", "gone", namespace=ns, propagation_policy="Orphan")
    # Without its Job, nothing may keep the pod from being deleted.
    await wait_until(lambda: _no_finalizer(api, ns, pods[0].metadata.name))


# ------------------------------------------------------------------------- helpers


async def _eq(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _has_event(api: ApiClient, ns: str, name: str, reason: str) -> bool:
    return any(r == reason for _, r, _ in await events_for(api, ns, name))


async def _newer(api: ApiClient, ns: str, owner: Any, seen: set[str]) -> list[Any] | None:
    fresh = [p for p in await pods_of(api, ns, owner) if p.metadata.name not in seen]
    return fresh or None


async def _gone(api: ApiClient, ns: str, name: str) -> bool:
    try:
        await api.get("Pod", name, namespace=ns)
    except NotFound:
        return True
    return False


async def _job_gone(api: ApiClient, ns: str, name: str) -> bool:
    try:
        await api.get("Job", name, namespace=ns)
    except NotFound:
        return True
    return False


async def _no_finalizer(api: ApiClient, ns: str, name: str) -> bool:
    try:
        pod: Any = await api.get("Pod", name, namespace=ns)
    except NotFound:
        return True
    return jobctl.TRACKING_FINALIZER not in pod.metadata.finalizers


async def _completed_indexes(api: ApiClient, ns: str, name: str, expected: str) -> Any:
    j = await current(api, ns, name)
    return j if j.status.completed_indexes == expected else None


async def _suspended_condition(api: ApiClient, ns: str, name: str, value: str) -> Any:
    j = await current(api, ns, name)
    found = [c for c in j.status.conditions if c.type == "Suspended" and c.status == value]
    return j if found else None


async def _counted(api: ApiClient, ns: str, name: str, succeeded: int, failed: int) -> bool:
    s = (await current(api, ns, name)).status
    return (s.succeeded, s.failed) == (succeeded, failed) and not (
        s.uncounted_terminated_pods.succeeded or s.uncounted_terminated_pods.failed
    )
