"""What a handler is told about the attempt it runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobContext:
    """The attempt a handler runs: ``job_id``, ``attempt`` (1-based) and its surroundings."""

    job_id: int
    attempt: int
    max_attempts: int
    queue: str
    type: str
    worker_id: str
    lease_token: str = ""  # names this attempt; a write after the lease is lost is fenced out
    stop_requested: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts
