"""The backoff rule: exponential growth, a cap, full jitter."""

from __future__ import annotations

import random

import pytest

from jobsvc.retry import RetryPolicy, max_delay, next_delay


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "expected"),
    [
        (1, 2.0, 600.0, 2.0),
        (2, 2.0, 600.0, 4.0),
        (3, 2.0, 600.0, 8.0),
        (8, 2.0, 600.0, 256.0),
        (9, 2.0, 600.0, 512.0),
        (10, 2.0, 600.0, 600.0),
        (10_000, 2.0, 600.0, 600.0),
        (1, 0.05, 1.0, 0.05),
        (5, 0.05, 1.0, 0.8),
        (6, 0.05, 1.0, 1.0),
    ],
)
def test_max_delay_doubles_up_to_the_cap(attempt, base, cap, expected):
    assert max_delay(attempt, base=base, cap=cap) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", [1, 2, 5, 12, 500])
def test_next_delay_stays_within_zero_and_the_bound(attempt):
    rng = random.Random(attempt)
    bound = max_delay(attempt, base=1.0, cap=60.0)
    delays = [next_delay(attempt, base=1.0, cap=60.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= delay <= bound for delay in delays)


def test_full_jitter_spreads_jobs_that_fail_together():
    rng = random.Random(1)
    delays = sorted(next_delay(6, base=1.0, cap=600.0, rng=rng) for _ in range(1000))
    # Uniform over [0, 32]: the quartiles sit near 8, 16 and 24, not in one lump.
    assert 6 < delays[250] < 10 and 14 < delays[500] < 18 and 22 < delays[750] < 26


def test_policy_draws_its_jitter_from_the_injected_rng():
    attempts = range(1, 8)
    policy = RetryPolicy(2.0, 600.0, random.Random(42))
    seeded = [policy.delay(n) for n in attempts]
    rng = random.Random(42)  # the same draws, made by hand: uniform over [0, the bound]
    assert seeded == [rng.uniform(0.0, max_delay(n, base=2.0, cap=600.0)) for n in attempts]
    other = RetryPolicy(2.0, 600.0, random.Random(43))
    assert [other.delay(n) for n in attempts] != seeded


def test_attempt_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        max_delay(0, base=1.0, cap=10.0)
