"""A token bucket per API token, in this process's memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allows ``rate_per_second`` requests per key on average, ``burst`` at once.

    Per process: N API processes behind a balancer let a token through up to N times the rate.
    Keys are token ids, so memory is bounded by the number of tokens, not by clients.
    """

    def __init__(
        self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_second = rate_per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> int:
        """Take one request from ``key``'s bucket; return 0, or whole seconds to wait."""
        if self.rate_per_second <= 0:
            return 0
        with self._lock:
            now = self.clock()
            tokens, updated = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - updated) * self.rate_per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate_per_second))
