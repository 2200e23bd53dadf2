"""What a handler is told about the attempt it runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass


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

    @property
    def stop_requested(self) -> threading.Event:
        """Set when the attempt must stop (timeout, cancel, lost lease); a handler may poll it.

        Made on first use: an Event (a Condition and its lock) per attempt was a tenth of a
        no-op job's cost, and most handlers never look. ``dict.setdefault`` is atomic, so the
        handler and the runner always share one Event.
        """
        event = self.__dict__.get("_stop_requested")
        if event is None:
            event = self.__dict__.setdefault("_stop_requested", threading.Event())
        return event

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts
