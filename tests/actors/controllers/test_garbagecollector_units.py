"""Garbage collector decisions: owner states and what they make of a dependent."""

from __future__ import annotations

from typing import Any

from actors.controllers.garbagecollector.decisions import (
    Delete,
    Keep,
    OwnerState,
    RemoveReferences,
    blocking_dependents,
    decide_dependent,
    owner_state,
)
from proto.k8s import apps_pb2, core_pb2

S, D, W = OwnerState.SOLID, OwnerState.DANGLING, OwnerState.WAITING


def obj(*owners: str, finalizers: tuple[str, ...] = (), deleting: bool = False) -> Any:
    p = core_pb2.Pod()
    p.metadata.name = "p"
    p.metadata.uid = "pod-uid"
    for uid in owners:
        p.metadata.owner_references.add(kind="ReplicaSet", name=f"rs-{uid}", uid=uid)
    p.metadata.finalizers.extend(finalizers)
    if deleting:
        p.metadata.deletion_timestamp.GetCurrentTime()
    return p


def owner(uid: str, *finalizers: str, deleting: bool = False) -> Any:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name = "rs"
    rs.metadata.uid = uid
    rs.metadata.finalizers.extend(finalizers)
    if deleting:
        rs.metadata.deletion_timestamp.GetCurrentTime()
    return rs


def test_owner_state_compares_uids_and_sees_foreground_waits():
    assert owner_state(None, "a") is D
    assert owner_state(owner("b"), "a") is D  # same name, another incarnation
    assert owner_state(owner("a"), "a") is S
    assert owner_state(owner("a", "orphan", deleting=True), "a") is S
    assert owner_state(owner("a", "foregroundDeletion", deleting=True), "a") is W
    # The finalizer alone (deletion not started) is not a wait.
    assert owner_state(owner("a", "foregroundDeletion"), "a") is S


def test_all_owners_gone_deletes_in_the_background():
    assert decide_dependent(obj("a"), {"a": D}, has_dependents=False) == Delete("Background")
    assert decide_dependent(obj("a", "b"), {"a": D, "b": D}, has_dependents=True) == Delete(
        "Background"
    )


def test_the_dependents_own_finalizers_choose_the_policy():
    orphaning = obj("a", finalizers=("orphan",))
    assert decide_dependent(orphaning, {"a": D}, has_dependents=True) == Delete("Orphan")
    fg = obj("a", finalizers=("foregroundDeletion",))
    assert decide_dependent(fg, {"a": D}, has_dependents=False) == Delete("Foreground")


def test_a_solid_owner_keeps_the_object_and_sheds_the_other_references():
    assert decide_dependent(obj("a"), {"a": S}, has_dependents=False) == Keep()
    both = obj("a", "b", "c")
    assert decide_dependent(both, {"a": S, "b": D, "c": W}, has_dependents=False) == (
        RemoveReferences(("b", "c"))
    )


def test_a_waiting_owner_deletes_its_dependents_in_the_foreground_when_they_have_dependents():
    assert decide_dependent(obj("a"), {"a": W}, has_dependents=True) == Delete("Foreground")
    assert decide_dependent(obj("a"), {"a": W}, has_dependents=False) == Delete("Background")
    assert decide_dependent(obj("a", "b"), {"a": W, "b": D}, has_dependents=False) == Delete(
        "Background"
    )


def test_objects_being_deleted_or_without_owners_are_left_alone():
    assert decide_dependent(obj("a", deleting=True), {"a": D}, has_dependents=False) == Keep()
    assert decide_dependent(obj(), {}, has_dependents=True) == Keep()


def test_only_dependents_that_block_owner_deletion_block():
    blocking, loose, other = obj("a"), obj("a"), obj("b")
    blocking.metadata.owner_references[0].block_owner_deletion = True
    loose.metadata.owner_references[0].block_owner_deletion = False
    other.metadata.owner_references[0].block_owner_deletion = True
    assert blocking_dependents("a", [blocking, loose, other]) == [blocking]
