"""The namespace controller against a real API server on raftstore."""

from __future__ import annotations

from typing import Any

from actors.client import ApiClient, NotFound
from actors.controllers import namespace
from actors.controllers.namespace import ContentReport, conditions_for
from tests.actors.controllers.conftest import Harness, make, pod, wait_until


async def _get(api: ApiClient, kind: str, name: str, ns: str = "") -> Any | None:
    try:
        return await api.get(kind, name, namespace=ns)
    except NotFound:
        return None


async def test_deleting_a_namespace_deletes_its_content_then_the_namespace(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(namespace.new_controller)
    await api.create(make("ConfigMap", "settings", ns))
    svc = make("Service", "web", ns)
    svc.spec.ports.add(port=80)
    await api.create(svc)
    await api.create(pod("loose", ns))
    await api.create(pod("running", ns))
    await api.bind("running", "n1", namespace=ns)  # its node agent must stop it: grace period

    deleted = await api.delete("Namespace", ns)
    assert deleted.pending and deleted.object.status.phase == "Terminating"

    async def only_the_running_pod_left() -> Any:
        gone = [
            await _get(api, k, n, ns) is None
            for k, n in (("ConfigMap", "settings"), ("Service", "web"), ("Pod", "loose"))
        ]
        running = await _get(api, "Pod", "running", ns)
        if all(gone) and running is not None and running.metadata.HasField("deletion_timestamp"):
            return running
        return None

    await wait_until(only_the_running_pod_left)

    async def reports_remaining_pods() -> Any:
        held = await _get(api, "Namespace", ns)
        assert held is not None, "the namespace went before its content"
        conditions = {c.type: c for c in held.status.conditions}
        remaining = conditions.get(namespace.CONTENT_REMAINING)
        return remaining is not None and remaining.status == "True" and remaining

    remaining = await wait_until(reports_remaining_pods)
    assert remaining.reason == "SomeResourcesRemain"
    assert "pods. has 1 resource instances" in remaining.message

    # The node agent finishes the pod; then the namespace goes.
    await api.delete("Pod", "running", namespace=ns, grace_period_seconds=0)
    await wait_until(lambda: _absent(api, ns))


async def _absent(api: ApiClient, ns: str) -> bool:
    return await _get(api, "Namespace", ns) is None


async def test_a_namespace_not_being_deleted_is_left_alone(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    controllers = await harness.start(namespace.new_controller)
    await api.create(make("ConfigMap", "settings", ns))
    other = make("Namespace", f"{ns}-x")
    await api.create(other)
    await api.delete("Namespace", other.metadata.name)
    # The other namespace, empty, is finalized; this one keeps its content.
    await wait_until(lambda: _absent(api, other.metadata.name))
    assert controllers[0].syncs > 0
    assert await _get(api, "ConfigMap", "settings", ns) is not None
    assert await _get(api, "Namespace", ns) is not None


def test_conditions_name_what_remains_and_what_failed():
    report = ContentReport()
    report.remaining["pods."] = 2
    report.remaining["replicasets.apps"] = 1
    report.finalizers["example.com/hold"] = 1
    report.errors.append("deleting configmaps. x: boom")
    by_type = {t: (s, r, m) for t, s, r, m in conditions_for(report)}
    assert by_type[namespace.CONTENT_FAILURE][:2] == ("True", "ContentDeletionFailed")
    assert "1 remaining: deleting configmaps. x: boom" in by_type[namespace.CONTENT_FAILURE][2]
    assert by_type[namespace.CONTENT_REMAINING][2] == (
        "Some resources are remaining: pods. has 2 resource instances, "
        "replicasets.apps has 1 resource instances"
    )
    assert by_type[namespace.FINALIZERS_REMAINING][:2] == ("True", "SomeFinalizersRemain")
    clean = {t: s for t, s, _, _ in conditions_for(ContentReport())}
    assert clean == {
        namespace.CONTENT_FAILURE: "False",
        namespace.CONTENT_REMAINING: "False",
        namespace.FINALIZERS_REMAINING: "False",
    }
    assert ContentReport().done and not report.done
