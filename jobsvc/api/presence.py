"""Whether any live API token exists, asked of the store at most once a second."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ..store import TokenStore

# How long "does any token exist?" is trusted. Only requests without a token ask it, and a stale
# answer can only let a loopback client in for this long after the first token is created.
# Tokens themselves are never cached, so revocation holds at once.
TOKENS_EXIST_CACHE_SECONDS = 1.0


class TokenPresence:
    """Caches ``TokenStore.any_live`` for ``TOKENS_EXIST_CACHE_SECONDS`` of ``clock``."""

    def __init__(self, tokens: TokenStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.tokens = tokens
        self.clock = clock
        self._checked: tuple[float, bool] = (-math.inf, False)  # (read at, any live)
        self._lock = threading.Lock()

    def any_live(self) -> bool:
        """Return whether a live token exists, as read at most a cache period ago."""
        now = self.clock()
        with self._lock:
            checked_at, exist = self._checked
        if now - checked_at >= TOKENS_EXIST_CACHE_SECONDS:
            exist = self.tokens.any_live()
            with self._lock:
                self._checked = (now, exist)
        return exist
