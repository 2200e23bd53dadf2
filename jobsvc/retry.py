"""The backoff rule: exponential growth, a cap, and full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


def max_delay(attempt: int, *, base: float, cap: float) -> float:
    """Return the longest wait after failed attempt number ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    # min() before the power keeps huge attempt numbers from overflowing a float.
    exponent = min(attempt - 1, 64)
    return min(cap, base * (2.0**exponent))


def next_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Return seconds to wait before retrying after failed attempt ``attempt`` (full jitter).

    Full jitter draws uniformly from [0, min(cap, base * 2**(attempt-1))], so jobs that fail
    together spread out instead of retrying in lock step.
    """
    return rng.uniform(0.0, max_delay(attempt, base=base, cap=cap))


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings, with the random source injected so tests can fix it."""

    base_seconds: float
    cap_seconds: float
    rng: random.Random

    def delay(self, attempt: int) -> float:
        """Return the wait before the attempt after ``attempt``."""
        return next_delay(attempt, base=self.base_seconds, cap=self.cap_seconds, rng=self.rng)
