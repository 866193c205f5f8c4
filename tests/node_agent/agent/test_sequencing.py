"""The container sequencing policy on records alone: init order, sidecars, restart
policies and spec changes (no runtime, no clock)."""

from __future__ import annotations

import pytest

from node_agent.agent.containers import ContainerRecord, container_hash
from node_agent.agent.sequencing import (
    Action,
    InitStep,
    Verb,
    app_action,
    apps_finished,
    init_step,
    initialized,
    restart_policy,
    sidecar_action,
)
from node_agent.runtime.base import ContainerId, ContainerState, ContainerStatus
from proto.k8s import core_pb2

IMAGE = "busybox"


def spec(name: str, *, sidecar: bool = False, image: str = IMAGE) -> core_pb2.Container:
    return core_pb2.Container(name=name, image=image, restart_policy="Always" if sidecar else "")


def record(
    container: core_pb2.Container,
    *,
    init: bool = False,
    state: str = "new",
    exit_code: int = 0,
    started: bool = True,
    image: str = IMAGE,
) -> ContainerRecord:
    """A record in ``state``: new (never started), running, or exited with ``exit_code``;
    a started one was created from ``image``."""
    rec = ContainerRecord(
        name=container.name,
        image=container.image,
        init=init,
        sidecar=init and container.restart_policy == "Always",
    )
    if state == "new":
        return rec
    rec.attempt = 0
    rec.container_id = ContainerId(f"id-{container.name}")
    rec.spec_hash = container_hash(core_pb2.Container(image=image))
    rec.started = started
    if state == "running":
        rec.status = ContainerStatus(
            id=rec.container_id, state=ContainerState.RUNNING, started_at=None
        )
    else:
        rec.status = ContainerStatus(
            id=rec.container_id, state=ContainerState.EXITED, started_at=None, exit_code=exit_code
        )
    return rec


def by_name(*records: ContainerRecord) -> dict[str, ContainerRecord]:
    return {r.name: r for r in records}


def test_init_containers_run_one_at_a_time_in_order() -> None:
    a, b = spec("a"), spec("b")
    inits = [a, b]
    assert init_step(inits, by_name(record(a, init=True), record(b, init=True)), "Always") == (
        InitStep(0, Action(Verb.START, "a"))
    )
    running = by_name(record(a, init=True, state="running"), record(b, init=True))
    assert init_step(inits, running, "Always") == InitStep(0)
    first_done = by_name(record(a, init=True, state="exited"), record(b, init=True))
    assert init_step(inits, first_done, "Always") == InitStep(1, Action(Verb.START, "b"))
    both_done = by_name(record(a, init=True, state="exited"), record(b, init=True, state="exited"))
    assert init_step(inits, both_done, "Always") == InitStep(2)
    assert initialized(both_done) and not initialized(first_done)


@pytest.mark.parametrize(
    ("policy", "verb"),
    [("Never", Verb.SETTLE), ("OnFailure", Verb.RESTART), ("Always", Verb.RESTART)],
)
def test_a_failed_init_container_is_restarted_unless_the_policy_is_never(
    policy: str, verb: Verb
) -> None:
    a = spec("a")
    failed = by_name(record(a, init=True, state="exited", exit_code=1))
    assert init_step([a], failed, policy) == InitStep(0, Action(verb, "a"))


def test_a_sidecar_only_has_to_be_started_before_the_next_init_container() -> None:
    side, b = spec("side", sidecar=True), spec("b")
    inits = [side, b]
    starting = by_name(
        record(side, init=True, state="running", started=False), record(b, init=True)
    )
    assert init_step(inits, starting, "Never") == InitStep(0)
    started = by_name(record(side, init=True, state="running"), record(b, init=True))
    assert init_step(inits, started, "Never") == InitStep(1, Action(Verb.START, "b"))
    crashed = by_name(record(side, init=True, state="exited", exit_code=2), record(b, init=True))
    assert init_step(inits, crashed, "Never") == InitStep(0, Action(Verb.RESTART, "side"))


def test_initialization_is_not_run_again_once_an_app_container_started() -> None:
    a, app = spec("a"), spec("app")
    records = by_name(record(a, init=True), record(app, state="exited", exit_code=1))
    assert init_step([a], records, "Always") == InitStep(1)
    assert initialized(records)


@pytest.mark.parametrize(
    ("policy", "exit_code", "verb"),
    [
        ("Always", 0, Verb.RESTART),
        ("OnFailure", 0, Verb.SETTLE),
        ("OnFailure", 3, Verb.RESTART),
        ("Never", 3, Verb.SETTLE),
    ],
)
def test_an_exited_app_container_follows_the_restart_policy(
    policy: str, exit_code: int, verb: Verb
) -> None:
    app = spec("app")
    exited = record(app, state="exited", exit_code=exit_code)
    assert app_action(exited, app, policy) == Action(verb, "app")


def test_app_containers_are_started_once_and_left_running() -> None:
    app = spec("app")
    assert app_action(record(app), app, "Never") == Action(Verb.START, "app")
    assert app_action(record(app, state="running"), app, "Never") is None


def test_a_changed_image_recreates_a_running_container_and_resets_a_crashing_ones_backoff() -> None:
    app = spec("app", image="busybox:2")
    running = record(app, state="running")
    assert app_action(running, app, "Never") == Action(
        Verb.RECREATE, "app", message="Container app definition changed, will be restarted"
    )
    crashed = record(app, state="exited", exit_code=1)
    assert app_action(crashed, app, "Always") == Action(Verb.RESTART, "app", fresh_backoff=True)
    # A container its policy leaves exited stays exited, new image or not.
    assert app_action(crashed, app, "Never") == Action(Verb.SETTLE, "app")


def test_sidecars_are_kept_running_and_recreated_on_a_new_image() -> None:
    side, init = spec("side", sidecar=True), spec("init")
    assert sidecar_action(record(side, init=True, state="running"), side) is None
    crashed = record(side, init=True, state="exited", exit_code=0)
    assert sidecar_action(crashed, side) == Action(Verb.RESTART, "side")
    new_image = spec("side", sidecar=True, image="busybox:2")
    assert sidecar_action(record(side, init=True, state="running"), new_image) == Action(
        Verb.RECREATE, "side", message="Init container side definition changed"
    )
    assert sidecar_action(record(init, init=True, state="exited", exit_code=0), init) is None


def test_apps_are_finished_when_none_will_run_again() -> None:
    side, a, b = spec("side", sidecar=True), spec("a"), spec("b")
    side_rec = record(side, init=True, state="running")
    done = by_name(side_rec, record(a, state="exited"), record(b, state="exited", exit_code=1))
    assert apps_finished(done, "Never")
    assert not apps_finished(done, "OnFailure")  # b will be restarted
    assert not apps_finished(done, "Always")
    one_running = by_name(side_rec, record(a, state="exited"), record(b, state="running"))
    assert not apps_finished(one_running, "Never")
    assert not apps_finished(by_name(side_rec), "Never")  # no app containers


def test_the_default_restart_policy_is_always() -> None:
    assert restart_policy(core_pb2.Pod()) == "Always"
    pod = core_pb2.Pod(spec=core_pb2.PodSpec(restart_policy="Never"))
    assert restart_policy(pod) == "Never"
