"""Pod startup latency as Kubernetes defines it, observed through a watch.

Kubernetes' SLO (sig-scalability, "pod startup latency"): from the pod's creation to the
moment all its containers are reported started, *as observed through a watch*; p99 at
most 5 s for stateless pods with no image pulls. :class:`PodTimeline` watches one
namespace and keeps, per pod:

* ``created`` -- ``metadata.creationTimestamp``, stamped by the API server when it
  accepted the create (microseconds here; Kubernetes keeps whole seconds);
* ``bound`` -- when the watch first showed ``spec.nodeName`` set;
* ``running`` -- when the watch first showed phase Running with every container in
  state running: the SLO's end point;
* ``started`` -- the latest ``status.containerStatuses[].state.running.startedAt``, the
  node agent's own record of when the runtime started the container.

So ``running - created`` is the SLO figure (what a client watching the API sees), and
``started - created`` leaves out the time the status took to reach the store and the
watch. All stamps are wall-clock seconds of this host, where every component runs.

The namespace counts as all Running once ``expected`` pods that were not deleted run (a
ReplicaSet controller that created extra pods deletes them again). A watch that breaks (an API server restarted) is resumed from a fresh list; pods that
changed meanwhile are stamped when the list shows them, which errs on the slow side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.client import ApiClient, ApiError, EventType
from proto import rpc
from proto.k8s import codec

from .stats import Summary, summarize

LABEL = "bench"


def namespace_object(name: str) -> Any:
    return codec.decode({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).obj


def pod_template(app: str) -> dict[str, Any]:
    """A pod that runs until stopped, in both runtimes (``sleep infinity``), with small
    requests so that 110 fit a simulated node."""
    return {
        "metadata": {"labels": {LABEL: app}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "command": ["sleep", "infinity"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def deployment_object(name: str, namespace: str, replicas: int) -> Any:
    return codec.decode(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {LABEL: name}},
                "template": pod_template(name),
            },
        }
    ).obj


def pod_object(name: str, namespace: str, app: str) -> Any:
    doc = pod_template(app)
    doc["metadata"].update(name=name, namespace=namespace)
    return codec.decode({"apiVersion": "v1", "kind": "Pod", **doc}).obj


def _seconds(stamp: Any) -> float:
    return float(stamp.seconds + stamp.nanos / 1e9)


def _all_running(pod: Any) -> bool:
    statuses = pod.status.container_statuses
    return (
        pod.status.phase == "Running"
        and len(statuses) == len(pod.spec.containers)
        and all(s.state.HasField("running") for s in statuses)
    )


@dataclass
class PodTimeline:
    """Per-pod stamps of one namespace; see the module doc."""

    expected: int
    created: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    """Pods seen deleted (a controller that made too many removes the extra ones)."""
    resumed: int = 0
    """Times the watch broke and was resumed from a list."""

    def __post_init__(self) -> None:
        self.all_running = trio.Event()

    def observe(self, pod: Any, now: float) -> None:
        name = pod.metadata.name
        if name not in self.created:
            self.created[name] = _seconds(pod.metadata.creation_timestamp)
        if pod.spec.node_name and name not in self.bound:
            self.bound[name] = now
        if name not in self.running and _all_running(pod):
            self.running[name] = now
            self.started[name] = max(
                _seconds(s.state.running.started_at) for s in pod.status.container_statuses
            )
            self._check_done()

    def forget(self, pod: Any) -> None:
        self.deleted.add(pod.metadata.name)

    def _check_done(self) -> None:
        if len(self.running.keys() - self.deleted) >= self.expected:
            self.all_running.set()

    async def follow(
        self, api: ApiClient, namespace: str, *, task_status: trio.TaskStatus[None]
    ) -> None:
        """Watch ``namespace`` until cancelled; started once the first watch is open."""
        while True:
            listed = await api.list("pods", namespace=namespace)
            now = time.time()
            for pod in listed.items:
                self.observe(pod, now)
            try:
                async with api.watch(
                    "pods", namespace=namespace, resource_version=listed.resource_version
                ) as events:
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    async for event in events:
                        if event.type in (EventType.ADDED, EventType.MODIFIED):
                            self.observe(event.object, time.time())
                        elif event.type is EventType.DELETED:
                            self.forget(event.object)
            except (ApiError, rpc.RpcError):
                pass
            self.resumed += 1
            await trio.sleep(0.2)

    # ------------------------------------------------------------------ results

    def startup(self) -> Summary:
        """running - created: the SLO figure."""
        return summarize([self.running[n] - self.created[n] for n in self.running])

    def startup_by_started_at(self) -> Summary:
        """startedAt - created: without the status write and the watch."""
        return summarize([self.started[n] - self.created[n] for n in self.started])

    def scheduling(self) -> Summary:
        """bound - created."""
        return summarize([self.bound[n] - self.created[n] for n in self.bound if n in self.created])

    def bound_per_second(self) -> float:
        """Pods bound / (last bind - first bind), as seen by the watch."""
        if len(self.bound) < 2:
            return float("nan")
        span = max(self.bound.values()) - min(self.bound.values())
        return len(self.bound) / span if span > 0 else float("nan")

    def running_per_second(self) -> float:
        if len(self.running) < 2:
            return float("nan")
        span = max(self.running.values()) - min(self.created.values())
        return len(self.running) / span if span > 0 else float("nan")

    def created_per_second(self) -> float:
        if len(self.created) < 2:
            return float("nan")
        span = max(self.created.values()) - min(self.created.values())
        return len(self.created) / span if span > 0 else float("nan")
