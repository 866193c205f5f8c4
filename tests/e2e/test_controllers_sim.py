"""The controllers end to end, on one real ``raftsman up --runtime sim --nodes 3`` cluster.

Every test here talks to the same cluster (:func:`cluster`): 3 stores, 2 API servers, 2
schedulers, 2 controller managers and 3 node agents, each a process, the node agents on
the ``sim`` runtime (``node_agent/runtime/sim.py``): containers "run" on the agent's clock
and exit as their spec says (``sleep infinity`` never, ``SIM_EXIT_CODE`` with
``SIM_EXIT_AFTER``), and a container without a readiness probe is Ready once running. So
everything the controllers, the scheduler and the node agents do is real; only the
launch of a process is simulated.

The commands this is about (``up``, ``set image``, ``rollout status``, ``rollout undo``,
``describe``, ``down``) go through the ``raftsman`` command. Setting things up, scaling
and waiting for the cluster to converge go through the API client: a ``raftsman``
process costs half a CPU-second of imports, several seconds of wall time on this busy
2-core machine. Every wait polls a condition against a deadline (:func:`eventually`);
the rolling updates are sampled through a watch of the pods, so the availability bounds
are checked at every revision the API server delivers, not every 100 ms.

The tests run in file order and build on each other like a user's session: the ``web``
Deployment rolls A -> B, rolls back, is scaled during a stalled rollout and finished on
D; then its Events are described; a node is lost and comes back; a Job fails twice
before it succeeds; a DaemonSet follows a fourth node that joins and leaves; and a
CronJob created when the cluster came up (:func:`minutely_cronjob`, so that its first
minute passes while the other tests run) has started its Job on the minute.

How a Job's pods "fail twice then succeed" honestly: a sim container cannot know its
attempt, so its exit code comes from a ConfigMap (``SIM_EXIT_CODE`` through
``configMapKeyRef``), read when each pod's container is created -- a dependency that is
broken for the first two pods and that the test repairs after it has seen two failures.
The Job controller's own backoff (10 s, then 20 s) paces the replacements.

The fixture prints how long each step took when the module ends (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from actors.client import ApiClient, EventType, NotFound, open_api_client
from cli.kubectl.config import resolve
from cli.launcher import pids
from cli.launcher import state as launcher_state
from proto import rpc
from proto.k8s import codec
from tests.support import processes

ROOT = Path(__file__).resolve().parents[2]
NS = "default"
DEADLINE = 60.0
CLI_TIMEOUT = 120.0
NODES = ("node-0", "node-1", "node-2")
EXTRA_NODE = "node-3"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
IMAGE_A, IMAGE_B, IMAGE_C, IMAGE_D = (f"example/web:{tag}" for tag in "abcd")
T = TypeVar("T")


# --------------------------------------------------------------------------- the cluster


@dataclass
class SimCluster:
    """One cluster directory: the ``raftsman`` command run against it, and what it took."""

    dir: Path
    home: Path
    addresses: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``raftsman ARGS --dir DIR`` (never raises for a non-zero exit)."""
        environ = {**os.environ, "HOME": str(self.home)}
        for name in ("RAFTSMAN_SERVER", "RAFTSMAN_CLUSTER"):
            environ.pop(name, None)
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args, "--dir", str(self.dir)],
            cwd=ROOT,
            env=environ,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok_sync(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        if result.returncode != 0:
            raise AssertionError(
                f"raftsman {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result.stdout

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        """``raftsman ARGS`` in a thread (watches keep running); its stdout, or AssertionError."""
        return await trio.to_thread.run_sync(lambda: self.ok_sync(*args, stdin=stdin))

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[step] = time.monotonic() - started

    def agent(self, node: str) -> tuple[int, int]:
        """(pid, start ticks) of the node agent process of ``node``, from the state file."""
        state = launcher_state.load(self.dir / "state.json")
        [record] = [p for p in state.processes if p.name == node]
        assert record.pid is not None and record.pid_start is not None, record
        assert pids.alive(record.pid, record.pid_start), f"{node}'s agent is not running"
        return record.pid, record.pid_start

    def recorded(self) -> list[tuple[int, int]]:
        """(pid, start) of the supervisor and of every process the state file names."""
        try:
            state = launcher_state.load(self.dir / "state.json")
        except (OSError, launcher_state.StateFileError):
            return []
        found = [(state.supervisor.pid, state.supervisor.pid_start)]
        found += [(p.pid, p.pid_start) for p in state.processes]
        return [(pid, start) for pid, start in found if pid and start]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    """``raftsman up --runtime sim --nodes 3`` for the module; always ``down --purge``.

    Whatever ``down`` leaves running of what the state file recorded (by pid and start
    time) is SIGKILLed, so a failed module cannot leak a cluster.
    """
    base = tmp_path_factory.mktemp("controllers")
    (base / "home").mkdir()
    cluster = SimCluster(dir=base / "cluster", home=base / "home")
    recorded: list[tuple[int, int]] = []
    try:
        with cluster.timed("up"):
            cluster.ok_sync("up", "--runtime", "sim", "--nodes", "3")
        recorded = cluster.recorded()
        cluster.addresses = resolve(server=None, name=None, dir_=str(cluster.dir)).addresses
        yield cluster
    finally:
        recorded = sorted({*recorded, *cluster.recorded()})  # restarted ones too
        for pid, start in recorded:  # a node agent a test left stopped must be able to stop
            if pids.alive(pid, start):
                os.kill(pid, signal.SIGCONT)
        with cluster.timed("down --purge"):
            down = cluster.run("down", "--purge", timeout=90)
        survivors = [(pid, start) for pid, start in recorded if pids.alive(pid, start)]
        for pid, _ in survivors:
            os.kill(pid, signal.SIGKILL)
        print("\ncontrollers end to end, timings (s):")
        for step, seconds in cluster.timings.items():
            print(f"  {step:<48} {seconds:6.1f}")
        for note in cluster.notes:
            print(f"  {note}")
        if down.returncode != 0 or survivors:
            print(f"down exited {down.returncode}: {down.stderr}; killed survivors {survivors}")


CRONJOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "minutely", "namespace": NS},
    "spec": {
        "schedule": "*/1 * * * *",
        "successfulJobsHistoryLimit": 10,
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {"name": "tick", "image": "example/tick:1", "command": ["sleep", "1"]}
                        ],
                    }
                }
            }
        },
    },
}


@pytest.fixture(scope="module", autouse=True)
def minutely_cronjob(cluster: SimCluster) -> str:
    """A ``*/1 * * * *`` CronJob created as soon as the cluster is up (see the module doc)."""

    async def create_it() -> None:
        async with rpc.open_loop(), api_client(cluster) as api:
            await create(api, CRONJOB)

    trio.run(create_it)
    return str(CRONJOB["metadata"]["name"])


# --------------------------------------------------------------------------- waiting and reading


class NotYet(Exception):
    """The awaited condition does not hold yet; the message says what was seen."""


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """``await check()`` until it returns instead of raising :class:`NotYet`; its result."""
    deadline = trio.current_time() + timeout
    while True:
        try:
            return await check()
        except NotYet as exc:
            seen = str(exc)
        if trio.current_time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; saw: {seen}")
        await trio.sleep(interval)


@asynccontextmanager
async def api_client(cluster: SimCluster) -> AsyncIterator[ApiClient]:
    async with open_api_client(cluster.addresses) as api:
        yield api


async def create(api: ApiClient, manifest: Mapping[str, Any]) -> dict[str, Any]:
    return codec.encode(await api.create(codec.decode(manifest, strict=True).obj))


async def get(api: ApiClient, kind: str, name: str, namespace: str = NS) -> dict[str, Any] | None:
    try:
        return codec.encode(await api.get(kind, name, namespace=namespace))
    except NotFound:
        return None


async def items(
    api: ApiClient, kind: str, *, namespace: str = NS, selector: str = ""
) -> list[dict[str, Any]]:
    listed = await api.list_all(kind, namespace=namespace, label_selector=selector)
    return [codec.encode(o) for o in listed.items]


def condition(obj: Mapping[str, Any], type_: str) -> str | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return None


def terminating(obj: Mapping[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def active(pod: Mapping[str, Any]) -> bool:
    """Counted by its controller: not terminating, not Succeeded or Failed."""
    phase = pod.get("status", {}).get("phase")
    return not terminating(pod) and phase not in ("Succeeded", "Failed")


def ready(pod: Mapping[str, Any]) -> bool:
    return (
        active(pod)
        and pod.get("status", {}).get("phase") == "Running"
        and condition(pod, "Ready") == "True"
    )


def image(obj: Mapping[str, Any]) -> str:
    """The first container's image of a pod, or of a controller's pod template."""
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


def node_of(pod: Mapping[str, Any]) -> str:
    return str(pod["spec"].get("nodeName") or "")


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def summary(pods: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{p['metadata']['name']}({image(p).rsplit(':', 1)[-1]} "
        f"{p.get('status', {}).get('phase')} ready={condition(p, 'Ready')} "
        f"node={node_of(p) or '-'}{' terminating' if terminating(p) else ''})"
        for p in pods
    )


# --------------------------------------------------------------------------- the web Deployment


def web_deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "main", "image": IMAGE_A, "command": ["sleep", "infinity"]}
                    ],
                },
            },
        },
    }


async def web_replicasets(api: ApiClient) -> list[dict[str, Any]]:
    return await items(api, "ReplicaSet", selector="app=web")


async def rolled_out(api: ApiClient, name: str, *, want_image: str, count: int) -> dict[str, Any]:
    """Deployment ``name`` done: ``count`` pods of ``want_image``, all Ready, nothing else.

    Returns the Deployment; raises :class:`NotYet` with what it saw otherwise.
    """
    deploy = await get(api, "Deployment", name)
    if deploy is None:
        raise NotYet(f"no Deployment {name}")
    status = deploy.get("status", {})
    selector = ",".join(f"{k}={v}" for k, v in deploy["spec"]["selector"]["matchLabels"].items())
    pods = [p for p in await items(api, "Pod", selector=selector) if active(p)]
    done = (
        image(deploy) == want_image
        and status.get("observedGeneration") == deploy["metadata"]["generation"]
        and status.get("replicas") == count
        and status.get("updatedReplicas") == count
        and status.get("availableReplicas") == count
        and len(pods) == count
        and all(ready(p) and image(p) == want_image for p in pods)
    )
    if not done:
        raise NotYet(f"status {status}; pods {summary(pods)}")
    return deploy


@dataclass
class Availability:
    """What a watch of one Deployment's pods saw, at every revision it delivered.

    ``ready``: active pods that are Running and Ready; ``total``: active pods (those the
    ReplicaSets count). The bounds of a RollingUpdate are ``ready >= min_ready`` and
    ``total <= max_total``.
    """

    min_ready: int
    max_total: int
    revisions: int = 0
    lowest_ready: int = 1 << 30
    highest_total: int = 0
    mixed: bool = False
    """Some revision had Ready pods of two templates at once (a rolling, not a recreate)."""
    violations: list[str] = field(default_factory=list)

    def note(self, pods: Mapping[str, dict[str, Any]]) -> None:
        self.revisions += 1
        live = [p for p in pods.values() if active(p)]
        ready_pods = [p for p in live if ready(p)]
        self.lowest_ready = min(self.lowest_ready, len(ready_pods))
        self.highest_total = max(self.highest_total, len(live))
        hashes = {p["metadata"].get("labels", {}).get("pod-template-hash") for p in ready_pods}
        self.mixed = self.mixed or len(hashes) > 1
        if len(ready_pods) < self.min_ready or len(live) > self.max_total:
            self.violations.append(f"{len(ready_pods)} ready of {len(live)}: {summary(live)}")

    def describe(self, what: str) -> str:
        return (
            f"{what}: {self.revisions} revisions watched, Ready pods >= {self.lowest_ready} "
            f"(bound {self.min_ready}), pods <= {self.highest_total} (bound {self.max_total})"
        )

    def check(self) -> None:
        assert not self.violations, (
            f"bounds ready >= {self.min_ready}, total <= {self.max_total} broken at "
            f"{len(self.violations)} of {self.revisions} revisions; first: {self.violations[0]}"
        )


async def _watch_pods(
    api: ApiClient,
    selector: str,
    availability: Availability,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    listed = await api.list("Pod", namespace=NS, label_selector=selector)
    pods = {p.metadata.name: codec.encode(p) for p in listed.items}
    availability.note(pods)
    async with api.watch(
        "Pod", namespace=NS, resource_version=listed.resource_version, label_selector=selector
    ) as events:
        task_status.started()
        async for event in events:
            if event.type is EventType.BOOKMARK:
                continue
            if event.type is EventType.DELETED:
                pods.pop(event.object.metadata.name, None)
            else:
                pods[event.object.metadata.name] = codec.encode(event.object)
            availability.note(pods)


@asynccontextmanager
async def sampled(
    api: ApiClient, selector: str, *, replicas: int, max_unavailable: int, max_surge: int
) -> AsyncIterator[Availability]:
    """Watch the pods of ``selector`` while the block runs, noting every revision."""
    availability = Availability(
        min_ready=replicas - max_unavailable, max_total=replicas + max_surge
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(_watch_pods, api, selector, availability)
        yield availability
        nursery.cancel_scope.cancel()


async def test_rolling_update_keeps_availability_within_bounds(cluster: SimCluster) -> None:
    async with api_client(cluster) as api:
        with cluster.timed("deployment: 4 pods of A ready"):
            await create(api, web_deployment(4))
            await eventually(
                lambda: rolled_out(api, "web", want_image=IMAGE_A, count=4),
                timeout=DEADLINE,
                what="web to run 4 Ready pods of A",
            )
        with cluster.timed("deployment: set image A -> B, rolled out"):
            async with sampled(
                api, "app=web", replicas=4, max_unavailable=1, max_surge=1
            ) as availability:
                await cluster.ok("set", "image", "deploy/web", f"main={IMAGE_B}")
                out = await cluster.ok("rollout", "status", "deploy/web", "--timeout", "90")
                deploy = await eventually(
                    lambda: rolled_out(api, "web", want_image=IMAGE_B, count=4),
                    timeout=DEADLINE,
                    what="web to run 4 Ready pods of B",
                )
        sets = await web_replicasets(api)

    cluster.notes.append(availability.describe("rolling update A -> B"))
    assert 'deployment "web" successfully rolled out' in out
    availability.check()
    assert availability.mixed, "never saw pods of A and B Ready together: not a rolling update"
    assert availability.revisions >= 12, availability  # 4 pods created, readied, deleted
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    replicas = {image(rs): rs["spec"]["replicas"] for rs in sets}
    assert replicas == {IMAGE_A: 0, IMAGE_B: 4}, sets


async def test_rollout_undo_returns_to_the_previous_template(cluster: SimCluster) -> None:
    async with api_client(cluster) as api:
        before = {image(rs): rs["metadata"]["name"] for rs in await web_replicasets(api)}
        with cluster.timed("deployment: rollout undo B -> A, rolled out"):
            async with sampled(
                api, "app=web", replicas=4, max_unavailable=1, max_surge=1
            ) as availability:
                await cluster.ok("rollout", "undo", "deploy/web")
                out = await cluster.ok("rollout", "status", "deploy/web", "--timeout", "90")
                deploy = await eventually(
                    lambda: rolled_out(api, "web", want_image=IMAGE_A, count=4),
                    timeout=DEADLINE,
                    what="web to run 4 Ready pods of A again",
                )
        sets = await web_replicasets(api)

    cluster.notes.append(availability.describe("rollout undo B -> A"))
    assert 'deployment "web" successfully rolled out' in out
    availability.check()
    assert availability.mixed, "never saw pods of B and A Ready together: not a rolling update"
    # The ReplicaSet of A is reused (same name), with the next revision number.
    assert {image(rs): rs["metadata"]["name"] for rs in sets} == before
    by_image = {image(rs): rs for rs in sets}
    assert by_image[IMAGE_A]["spec"]["replicas"] == 4
    assert by_image[IMAGE_B]["spec"]["replicas"] == 0
    assert by_image[IMAGE_A]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def _container(image_: str, *, ready_never: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image_, "command": ["sleep", "infinity"]}
    if ready_never:  # sim exec of `false` exits 1: the pods run but are never Ready
        container["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    return container


async def _replicas_by_image(api: ApiClient) -> dict[str, int]:
    return {image(rs): int(rs["spec"].get("replicas", 0)) for rs in await web_replicasets(api)}


async def test_scaling_during_a_rollout_ends_on_the_newest_template(cluster: SimCluster) -> None:
    """A rollout to C stalls (C's pods never become Ready); scaled to 6 then 2 while it
    is stalled, the change is spread over A and C; a fix to D finishes on 2 pods of D."""
    async with api_client(cluster) as api:

        async def stalled() -> dict[str, int]:
            replicas = await _replicas_by_image(api)
            if replicas.get(IMAGE_A) != 3 or replicas.get(IMAGE_C) != 2:
                raise NotYet(f"replicas by image {replicas}")
            return replicas

        async def scaled_up() -> dict[str, int]:
            replicas = await _replicas_by_image(api)
            # Kubernetes' proportions: A 3*7/5 = 4.2 -> 4, C 2*7/5 = 2.8 -> 3.
            if replicas.get(IMAGE_A) != 4 or replicas.get(IMAGE_C) != 3:
                raise NotYet(f"replicas by image {replicas}")
            return replicas

        async def scaled_down() -> dict[str, int]:
            replicas = await _replicas_by_image(api)
            deploy = await get(api, "Deployment", "web")
            assert deploy is not None
            status = deploy.get("status", {})
            if (
                status.get("observedGeneration") != deploy["metadata"]["generation"]
                or sum(replicas.values()) > 3
                or replicas.get(IMAGE_A, 0) < 1
                or replicas.get(IMAGE_C, 0) < 1
            ):
                raise NotYet(f"replicas by image {replicas}, status {status}")
            return replicas

        with cluster.timed("deployment: stalled rollout to C"):
            await api.patch_merge(
                "Deployment",
                "web",
                {
                    "spec": {
                        "template": {
                            "spec": {"containers": [_container(IMAGE_C, ready_never=True)]}
                        }
                    }
                },
                namespace=NS,
            )
            await eventually(
                stalled, timeout=DEADLINE, what="the rollout to C to stall at A 3, C 2"
            )
        with cluster.timed("deployment: scale to 6 mid-rollout"):
            await api.patch_merge("Deployment", "web", {"spec": {"replicas": 6}}, namespace=NS)
            up = await eventually(scaled_up, timeout=DEADLINE, what="A 4 and C 3")
        with cluster.timed("deployment: scale to 2 mid-rollout"):
            await api.patch_merge("Deployment", "web", {"spec": {"replicas": 2}}, namespace=NS)
            down = await eventually(scaled_down, timeout=DEADLINE, what="at most 3 replicas")
        with cluster.timed("deployment: fix to D, rolled out"):
            await api.patch_merge(
                "Deployment",
                "web",
                {
                    "spec": {
                        "template": {
                            "spec": {"containers": [_container(IMAGE_D, ready_never=False)]}
                        }
                    }
                },
                namespace=NS,
            )
            await eventually(
                lambda: rolled_out(api, "web", want_image=IMAGE_D, count=2),
                timeout=DEADLINE,
                what="web to run 2 Ready pods of D",
            )
            final = await _replicas_by_image(api)

    assert sum(up.values()) == 7  # 6 + maxSurge
    assert sum(down.values()) <= 3, down  # 2 + maxSurge
    assert final == {IMAGE_A: 0, IMAGE_B: 0, IMAGE_C: 0, IMAGE_D: 2}


async def test_controllers_record_events_shown_by_describe(cluster: SimCluster) -> None:
    async with api_client(cluster) as api:
        sets = {image(rs): rs["metadata"]["name"] for rs in await web_replicasets(api)}
    with cluster.timed("describe deploy and rs"):
        texts: dict[str, str] = {}

        async def describe(kind: str, name: str) -> None:
            texts[kind] = await cluster.ok("describe", kind, name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(describe, "deploy", "web")
            nursery.start_soon(describe, "rs", sets[IMAGE_A])
        deploy_text, rs_text = texts["deploy"], texts["rs"]

    events = deploy_text.split("\nEvents:", 1)[-1]
    assert "ScalingReplicaSet" in events, deploy_text
    assert f"Scaled up replica set {sets[IMAGE_D]}" in events, deploy_text
    assert f"Scaled down replica set {sets[IMAGE_A]}" in events, deploy_text
    events = rs_text.split("\nEvents:", 1)[-1]
    assert "SuccessfulCreate" in events and "Created pod: web-" in events, rs_text
    assert "SuccessfulDelete" in events and "Deleted pod: web-" in events, rs_text


# --------------------------------------------------------------------------- a node lost


def _keeper(replicas: int) -> dict[str, Any]:
    deploy = web_deployment(replicas)
    deploy["metadata"]["name"] = "keeper"
    deploy["spec"]["selector"]["matchLabels"] = {"app": "keeper"}
    deploy["spec"]["template"]["metadata"]["labels"] = {"app": "keeper"}
    return deploy


def _taints(node: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


async def _keeper_ready(api: ApiClient, count: int, *, avoid: str) -> list[dict[str, Any]]:
    pods = [p for p in await items(api, "Pod", selector="app=keeper") if active(p)]
    if len(pods) != count or not all(ready(p) and node_of(p) != avoid for p in pods):
        raise NotYet(summary(pods))
    return pods


async def test_pods_of_a_lost_node_are_recreated_elsewhere(cluster: SimCluster) -> None:
    """SIGSTOP one node agent (its Lease stops; the supervisor sees nothing to restart):
    the node turns Unknown with the unreachable taints, its pods are evicted and
    replaced on the other nodes; SIGCONT brings it back Ready and untainted."""
    async with api_client(cluster) as api:
        await create(api, _keeper(4))
        pods = await eventually(
            lambda: _keeper_ready(api, 4, avoid=""),
            timeout=DEADLINE,
            what="4 keeper pods Ready",
        )
        hosts = [node_of(p) for p in pods]
        lost = max(set(hosts), key=hosts.count)
        lost_pods = {p["metadata"]["name"] for p in pods if node_of(p) == lost}
        pid, start = cluster.agent(lost)

        async def unreachable() -> dict[str, Any]:
            node = await get(api, "Node", lost, namespace="")
            assert node is not None
            want = {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
            if condition(node, "Ready") != "Unknown" or not want <= _taints(node):
                raise NotYet(f"Ready={condition(node, 'Ready')} taints={_taints(node)}")
            return node

        async def lost_pods_gone() -> None:
            left = {p["metadata"]["name"] for p in await items(api, "Pod", selector="app=keeper")}
            if left & lost_pods:
                raise NotYet(f"still there: {sorted(left & lost_pods)}")

        async def back() -> dict[str, Any]:
            node = await get(api, "Node", lost, namespace="")
            assert node is not None
            taints = {key for key, _ in _taints(node)}
            if condition(node, "Ready") != "True" or taints & {UNREACHABLE, NOT_READY}:
                raise NotYet(f"Ready={condition(node, 'Ready')} taints={_taints(node)}")
            return node

        stopped = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            await eventually(unreachable, timeout=DEADLINE, what=f"{lost} to be unreachable")
            cluster.timings[f"node lost: {lost} Unknown + tainted"] = time.monotonic() - stopped
            moved = await eventually(
                lambda: _keeper_ready(api, 4, avoid=lost),
                timeout=DEADLINE,
                what=f"4 keeper pods Ready off {lost}",
            )
            cluster.timings["node lost: its pods Ready elsewhere"] = time.monotonic() - stopped
            await eventually(lost_pods_gone, timeout=DEADLINE, what="the lost pods to be deleted")
            cluster.timings["node lost: its pods deleted"] = time.monotonic() - stopped
        finally:
            if pids.alive(pid, start):
                os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        await eventually(back, timeout=DEADLINE, what=f"{lost} to be Ready and untainted")
        cluster.timings["node back: Ready, untainted"] = time.monotonic() - resumed
        await api.delete("Deployment", "keeper", namespace=NS)

    assert {node_of(p) for p in moved} <= set(NODES) - {lost}
    assert not {p["metadata"]["name"] for p in moved} & lost_pods


# --------------------------------------------------------------------------- a Job


def flaky_job() -> list[dict[str, Any]]:
    outcome = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flaky-outcome", "namespace": NS},
        "data": {"exit-code": "1"},
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "flaky", "namespace": NS},
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 3,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": "example/flaky:1",
                            "command": ["sh", "-c", "sleep 0.5"],
                            "env": [
                                {"name": "SIM_EXIT_AFTER", "value": "0.5"},
                                {
                                    "name": "SIM_EXIT_CODE",
                                    "valueFrom": {
                                        "configMapKeyRef": {
                                            "name": "flaky-outcome",
                                            "key": "exit-code",
                                        }
                                    },
                                },
                            ],
                        }
                    ],
                }
            },
        },
    }
    return [outcome, job]


def _finished_at(pod: Mapping[str, Any]) -> float:
    [status] = pod["status"]["containerStatuses"]
    return timestamp(status["state"]["terminated"]["finishedAt"])


async def test_job_pods_fail_twice_then_succeed(cluster: SimCluster) -> None:
    async with api_client(cluster) as api:

        async def failed(count: int) -> dict[str, Any]:
            job = await get(api, "Job", "flaky")
            assert job is not None
            if job.get("status", {}).get("failed", 0) < count:
                raise NotYet(str(job.get("status")))
            return job

        async def complete() -> dict[str, Any]:
            job = await get(api, "Job", "flaky")
            assert job is not None
            if condition(job, "Complete") != "True":
                raise NotYet(str(job.get("status")))
            return job

        with cluster.timed("job: two failures, then Complete"):
            for manifest in flaky_job():
                await create(api, manifest)
            await eventually(lambda: failed(2), timeout=DEADLINE, what="two failed pods")
            # The dependency recovers: the next pod's container exits 0.
            await api.patch_merge(
                "ConfigMap", "flaky-outcome", {"data": {"exit-code": "0"}}, namespace=NS
            )
            job = await eventually(complete, timeout=DEADLINE, what="the Job to complete")
        pods = sorted(
            await items(api, "Pod", selector="job-name=flaky"),
            key=lambda p: timestamp(p["metadata"]["creationTimestamp"]),
        )

    status = job["status"]
    assert (status.get("succeeded"), status.get("failed")) == (1, 2), status
    assert status.get("active", 0) == 0 and status.get("completionTime"), status
    assert condition(job, "Failed") in (None, "False")
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed", "Succeeded"], summary(pods)
    # Replacements wait 10 s after the first failure, 20 s after the second (Kubernetes'
    # pod failure backoff), counted from when the failed pod finished.
    waits = [
        timestamp(later["metadata"]["creationTimestamp"]) - _finished_at(earlier)
        for earlier, later in zip(pods, pods[1:], strict=False)
    ]
    cluster.timings["job: replacement waits (10 s, 20 s expected)"] = sum(waits)
    assert 9.0 <= waits[0] < 19.0 and 19.0 <= waits[1] < 39.0, waits


# --------------------------------------------------------------------------- a DaemonSet


DAEMONSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "node-daemon", "namespace": NS},
    "spec": {
        "selector": {"matchLabels": {"app": "node-daemon"}},
        "template": {
            "metadata": {"labels": {"app": "node-daemon"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "main", "image": "example/daemon:1", "command": ["sleep", "infinity"]}
                ],
            },
        },
    },
}


async def _daemons_on(api: ApiClient, nodes: set[str]) -> dict[str, Any]:
    """The DaemonSet with exactly one Ready pod on each of ``nodes`` and none elsewhere."""
    ds = await get(api, "DaemonSet", "node-daemon")
    assert ds is not None
    pods = await items(api, "Pod", selector="app=node-daemon")
    status = ds.get("status", {})
    hosts = sorted(node_of(p) for p in pods)
    if (
        hosts != sorted(nodes)
        or not all(ready(p) for p in pods)
        or status.get("desiredNumberScheduled") != len(nodes)
        or status.get("numberReady") != len(nodes)
    ):
        raise NotYet(f"status {status}; pods {summary(pods)}")
    return ds


async def test_daemonset_follows_nodes_joining_and_leaving(
    cluster: SimCluster, tmp_path: Path
) -> None:
    argv = [
        sys.executable,
        "-m",
        "cli.main",
        "node-agent",
        f"--name={EXTRA_NODE}",
        "--runtime=sim",
        f"--server={','.join(cluster.addresses)}",
        f"--data-dir={tmp_path / EXTRA_NODE}",
        "--lease-period=1",
        "--max-backoff=10",
    ]
    async with api_client(cluster) as api:
        with cluster.timed("daemonset: one pod per node (3)"):
            await create(api, DAEMONSET)
            await eventually(
                lambda: _daemons_on(api, set(NODES)), timeout=DEADLINE, what="3 daemon pods"
            )
        with processes.running(
            argv, log_path=tmp_path / f"{EXTRA_NODE}.log", cwd=ROOT, grace=10
        ) as agent:
            with cluster.timed("daemonset: a 4th node joins, 4 pods"):
                try:
                    await eventually(
                        lambda: _daemons_on(api, {*NODES, EXTRA_NODE}),
                        timeout=DEADLINE,
                        what=f"a daemon pod on {EXTRA_NODE} too",
                    )
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{EXTRA_NODE} log:\n{agent.log_text()}") from None
        with cluster.timed("daemonset: the 4th node leaves, 3 pods"):
            await api.delete("Node", EXTRA_NODE)
            await eventually(
                lambda: _daemons_on(api, set(NODES)),
                timeout=DEADLINE,
                what=f"the daemon pod on {EXTRA_NODE} to go",
            )


# --------------------------------------------------------------------------- a CronJob


async def test_cronjob_every_minute_starts_a_job_on_the_minute(
    cluster: SimCluster, minutely_cronjob: str
) -> None:
    async with api_client(cluster) as api:
        cronjob = await get(api, "CronJob", minutely_cronjob)
        assert cronjob is not None
        created = timestamp(cronjob["metadata"]["creationTimestamp"])
        first = (int(created // 60) + 1) * 60  # the first minute strictly after creation

        async def first_job_done() -> list[dict[str, Any]]:
            jobs = [
                j
                for j in await items(api, "Job")
                if any(
                    o.get("name") == minutely_cronjob
                    for o in j["metadata"].get("ownerReferences") or []
                )
            ]
            if not any(condition(j, "Complete") == "True" for j in jobs):
                raise NotYet(f"jobs {[(j['metadata']['name'], j.get('status')) for j in jobs]}")
            return jobs

        with cluster.timed("cronjob: first Job complete (after module start)"):
            wait = max(0.0, first - time.time()) + DEADLINE
            jobs = await eventually(first_job_done, timeout=wait, what="the first scheduled Job")
        cronjob = await get(api, "CronJob", minutely_cronjob)
        assert cronjob is not None
        await api.patch_merge(
            "CronJob", minutely_cronjob, {"spec": {"suspend": True}}, namespace=NS
        )

    names = sorted(j["metadata"]["name"] for j in jobs)
    # Jobs are named after their scheduled minute (minutes since the epoch).
    assert names[0] == f"{minutely_cronjob}-{first // 60}", (names, created)
    minutes = [int(n.rsplit("-", 1)[1]) for n in names]
    assert minutes == list(range(minutes[0], minutes[0] + len(minutes))), names
    for job in jobs:
        scheduled = int(job["metadata"]["name"].rsplit("-", 1)[1]) * 60
        started = timestamp(job["metadata"]["creationTimestamp"])
        assert scheduled <= started < scheduled + 15, (job["metadata"]["name"], started)
    last = timestamp(cronjob["status"]["lastScheduleTime"])
    assert last % 60 == 0 and minutes[-1] * 60 <= last <= time.time(), (last, names)
