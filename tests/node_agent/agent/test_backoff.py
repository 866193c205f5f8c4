"""CrashLoopBackOff timing: Kubernetes' schedule, its reset, and the local cap."""

from __future__ import annotations

import pytest

from node_agent.agent.backoff import BackoffConfig, RestartBackoff


def restart_times(backoff: RestartBackoff, crashes: int, run_for: float = 0.0) -> list[float]:
    """Restart times of a container that runs ``run_for`` seconds and crashes, repeatedly."""
    now = 0.0
    times = []
    finished = now
    for _ in range(crashes):
        wait = backoff.remaining(finished, now)
        now += wait
        backoff.restarted(finished, now)
        times.append(now)
        finished = now + run_for
        now = finished
    return times


def test_first_restart_is_immediate_then_doubling_to_five_minutes() -> None:
    times = restart_times(RestartBackoff(), 9)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] == 0
    assert gaps == [10, 20, 40, 80, 160, 300, 300, 300]


def test_a_container_that_ran_ten_minutes_starts_over() -> None:
    backoff = RestartBackoff()
    backoff.restarted(0, 0)
    backoff.restarted(5, 15)
    assert backoff.delay == 20
    # It ran from 15 to 15 + 601 s: more than 2 x max since the last restart.
    assert backoff.remaining(616, 616) == 0
    backoff.restarted(616, 616)
    assert backoff.delay == 10
    # But one that ran 9 minutes keeps its window.
    assert backoff.remaining(616 + 540, 616 + 540) == 10


def test_capped_schedule_keeps_the_shape_below_the_cap() -> None:
    config = BackoffConfig.capped(1.0)
    assert (config.initial, config.max, config.reset_period) == (1.0, 1.0, 2.0)
    times = restart_times(RestartBackoff(config), 4)
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [1, 1, 1]
    assert BackoffConfig.capped(None) == BackoffConfig()
    assert BackoffConfig.capped(60).initial == 10


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan")])
def test_bad_cap_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="maximum backoff"):
        BackoffConfig.capped(bad)


def test_max_below_initial_is_refused() -> None:
    with pytest.raises(ValueError, match="max .* must be >= initial"):
        BackoffConfig(initial=10, max=5)
