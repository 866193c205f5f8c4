"""Backoff schedules: pure functions of the policy, the attempt and a seeded rng."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.runtime import DEFAULT_BACKOFF, Backoff, BackoffPolicy


def take(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next_delay() for _ in range(n)]


def test_default_schedule_doubles_from_a_tenth_of_a_second_up_to_ten() -> None:
    assert DEFAULT_BACKOFF == BackoffPolicy()
    assert take(Backoff(DEFAULT_BACKOFF), 9) == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        6.4,
        10.0,
        10.0,
    ]


def test_delays_are_capped_at_max_delay() -> None:
    policy = BackoffPolicy(initial=1.0, factor=3.0, max_delay=10.0)
    assert take(Backoff(policy), 5) == [1.0, 3.0, 9.0, 10.0, 10.0]


def test_reset_starts_again_from_initial() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, factor=2.0, max_delay=100.0))
    assert take(backoff, 3) == [1.0, 2.0, 4.0]
    assert backoff.attempt == 3
    backoff.reset()
    assert backoff.attempt == 0
    assert take(backoff, 2) == [1.0, 2.0]


def test_factor_one_is_a_constant_delay() -> None:
    assert take(Backoff(BackoffPolicy(initial=0.5, factor=1.0)), 3) == [0.5, 0.5, 0.5]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert BackoffPolicy().base_delay(10**6) == 10.0
    assert BackoffPolicy(initial=0.0, max_delay=0.0).base_delay(10**6) == 0.0


def test_jitter_is_reproducible_under_a_seed_and_only_shortens() -> None:
    policy = BackoffPolicy(initial=1.0, factor=2.0, max_delay=8.0, jitter=0.5)
    first = take(Backoff(policy, rng=random.Random(42)), 6)
    again = take(Backoff(policy, rng=random.Random(42)), 6)
    other = take(Backoff(policy, rng=random.Random(43)), 6)
    assert first == again
    assert first != other
    for attempt, delay in enumerate(first):
        base = policy.base_delay(attempt)
        assert base * 0.5 <= delay <= base


def test_jitter_needs_an_rng() -> None:
    with pytest.raises(ValueError, match=r"^a jittered policy needs an rng"):
        Backoff(BackoffPolicy(jitter=0.1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"initial": -1.0}, ValueError, "initial must be >= 0, not -1.0"),
        ({"factor": 0.5}, ValueError, "factor must be >= 1, not 0.5"),
        (
            {"initial": 2.0, "max_delay": 1.0},
            ValueError,
            "max_delay must be >= initial (2.0), not 1.0",
        ),
        ({"jitter": 1.5}, ValueError, "jitter must be between 0 and 1, not 1.5"),
        ({"reset_after": -1}, ValueError, "reset_after must be >= 0, not -1"),
        ({"max_delay": float("inf")}, ValueError, "max_delay must be finite, not inf"),
        ({"initial": "1"}, TypeError, "initial must be a number, not str"),
        ({"factor": True}, TypeError, "factor must be a number, not bool"),
    ],
)
def test_policy_validation_messages(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_base_delay_rejects_negative_attempts() -> None:
    with pytest.raises(ValueError, match=r"^attempt must be >= 0, not -1$"):
        BackoffPolicy().base_delay(-1)


policies = st.builds(
    lambda initial, factor, extra, jitter: BackoffPolicy(
        initial=initial, factor=factor, max_delay=initial + extra, jitter=jitter
    ),
    initial=st.floats(min_value=0, max_value=100),
    factor=st.floats(min_value=1, max_value=10),
    extra=st.floats(min_value=0, max_value=1000),
    jitter=st.floats(min_value=0, max_value=1),
)


@given(policy=policies, seed=st.integers(), n=st.integers(min_value=1, max_value=60))
def test_schedule_properties(policy: BackoffPolicy, seed: int, n: int) -> None:
    bases = [policy.base_delay(attempt) for attempt in range(n)]
    assert bases[0] == policy.initial
    assert all(0 <= base <= policy.max_delay for base in bases)
    assert bases == sorted(bases)  # never shrinks between resets
    delays = take(Backoff(policy, rng=random.Random(seed)), n)
    for base, delay in zip(bases, delays, strict=True):
        assert base * (1 - policy.jitter) <= delay <= base
