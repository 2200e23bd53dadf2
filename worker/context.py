"""What a handler is told about the attempt it runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import Cancelled


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
    def cancelled(self) -> bool:
        """True once the job was cancelled: a cooperative handler stops soon after.

        The worker stops a handler that does not within ``JOBSVC_CANCEL_GRACE_SECONDS``.
        """
        return "_cancelled" in self.__dict__

    def raise_if_cancelled(self) -> None:
        """Raise ``Cancelled`` if the job was cancelled."""
        if "_cancelled" in self.__dict__:
            raise Cancelled(f"job {self.job_id} was cancelled")

    def mark_cancelled(self) -> None:
        """Tell the handler its job was cancelled (the worker calls this)."""
        self.__dict__["_cancelled"] = True
        self.stop_requested.set()

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts
