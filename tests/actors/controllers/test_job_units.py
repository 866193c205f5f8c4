"""Job controller pieces without a server: failure backoff, finish times, indexes,
OnFailure restart counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.controllers.job import (
    PodFailureBackoff,
    finish_time,
    format_indexes,
    parse_indexes,
    past_backoff_limit_on_failure,
)
from actors.controllers.job.indexes import completion_index, first_pending
from proto.k8s import kinds

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def pod(phase: str, *, finished: float | None = None, created: float = -1000.0) -> Any:
    """A pod of ``phase``; ``finished`` seconds after T0 its container terminated."""
    out = kinds.by_kind("Pod").new()
    out.metadata.name = f"p{id(out)}"
    out.metadata.creation_timestamp.FromDatetime(T0 + timedelta(seconds=created))
    out.status.phase = phase
    if finished is not None:
        status = out.status.container_statuses.add(name="main")
        status.state.terminated.finished_at.FromDatetime(T0 + timedelta(seconds=finished))
    return out


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0), (1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (7, 360), (50, 360)],
)
def test_delay_doubles_from_ten_seconds_up_to_six_minutes(failures: int, delay: float) -> None:
    assert PodFailureBackoff().delay(failures) == delay


def test_remaining_counts_from_the_last_failure() -> None:
    backoff = PodFailureBackoff()
    failed = [pod("Failed", finished=0), pod("Failed", finished=5)]
    # Two failures: 20 s from the later one (T0+5).
    assert backoff.remaining([], failed, T0 + timedelta(seconds=5)) == 20
    assert backoff.remaining([], failed, T0 + timedelta(seconds=15)) == 10
    assert backoff.remaining([], failed, T0 + timedelta(seconds=60)) == 0


def test_a_success_resets_the_failure_count() -> None:
    backoff = PodFailureBackoff()
    failed = [pod("Failed", finished=0), pod("Failed", finished=10), pod("Failed", finished=30)]
    succeeded = [pod("Succeeded", finished=20)]
    # Only the failure after the success counts: 10 s from T0+30.
    assert backoff.remaining(succeeded, failed, T0 + timedelta(seconds=31)) == 9


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="initial=-1"):
        PodFailureBackoff(initial=-1)


def test_finish_time_estimates() -> None:
    assert finish_time(pod("Failed", finished=7)) == T0 + timedelta(seconds=7)
    not_ready = pod("Failed")
    condition = not_ready.status.conditions.add(type="Ready", status="False")
    condition.last_transition_time.FromDatetime(T0 + timedelta(seconds=3))
    assert finish_time(not_ready) == T0 + timedelta(seconds=3)
    deleted = pod("Running")
    deleted.metadata.deletion_timestamp.FromDatetime(T0 + timedelta(seconds=30))
    deleted.metadata.deletion_grace_period_seconds = 30
    assert finish_time(deleted) == T0
    assert finish_time(pod("Failed", created=-5)) == T0 - timedelta(seconds=5)
    # A container still running: the pod's container times say nothing.
    mixed = pod("Failed", finished=7)
    mixed.status.container_statuses.add(name="sidecar").state.running.SetInParent()
    assert finish_time(mixed) == T0 - timedelta(seconds=1000)


@pytest.mark.parametrize(
    ("indexes", "text"),
    [(set(), ""), ({0}, "0"), ({0, 1, 2}, "0-2"), ({1, 3, 4, 5, 7}, "1,3-5,7"), ({9, 2}, "2,9")],
)
def test_completed_indexes_round_trip(indexes: set[int], text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text) == indexes


def test_parse_indexes_drops_junk_and_out_of_range() -> None:
    assert parse_indexes("0,x,2-4,7-", completions=4) == {0, 2, 3}


def test_completion_index_of_a_pod() -> None:
    p = pod("Running")
    assert completion_index(p) is None
    p.metadata.annotations["batch.kubernetes.io/job-completion-index"] = "3"
    assert completion_index(p) == 3
    assert completion_index(p, completions=3) is None
    p.metadata.annotations["batch.kubernetes.io/job-completion-index"] = "-1"
    assert completion_index(p) is None


def test_first_pending_skips_done_and_running_indexes() -> None:
    assert first_pending(6, succeeded={0, 2}, active={1}, count=2) == [3, 4]
    assert first_pending(3, succeeded={0, 1, 2}, active=set(), count=5) == []


def job_with(restart_policy: str, backoff_limit: int) -> Any:
    out = kinds.by_kind("Job").new()
    out.spec.template.spec.restart_policy = restart_policy
    out.spec.backoff_limit = backoff_limit
    return out


def restarted(phase: str, *counts: int) -> Any:
    out = pod(phase)
    for i, count in enumerate(counts):
        out.status.container_statuses.add(name=f"c{i}", restart_count=count)
    return out


def test_on_failure_restarts_of_live_pods_reach_the_limit() -> None:
    job = job_with("OnFailure", 3)
    assert not past_backoff_limit_on_failure(job, [restarted("Running", 1, 1)])
    assert past_backoff_limit_on_failure(job, [restarted("Running", 1), restarted("Pending", 2)])
    # Finished pods do not count; nor does restartPolicy Never.
    assert not past_backoff_limit_on_failure(job, [restarted("Failed", 5)])
    assert not past_backoff_limit_on_failure(job_with("Never", 3), [restarted("Running", 5)])
    # backoffLimit 0: any restart is too many.
    assert past_backoff_limit_on_failure(job_with("OnFailure", 0), [restarted("Running", 1)])
