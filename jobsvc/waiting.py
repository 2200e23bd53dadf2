"""Waiting for jobs to end: one listener thread per process wakes every request waiting.

A waiting request holds no database connection and polls nothing: it registers its job id and
sleeps on an event. One thread per process listens (PostgreSQL: LISTEN on ``jobsvc_ended``,
whose payload names the jobs; SQLite: the data-version watch, woken by any commit), reads which
of the waited-for jobs ended in one query, and wakes their requests. The thread starts with
the first waiter and stops after a few idle seconds, so a process that never waits keeps no
listening connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import DatabaseUnavailable
from .models import TERMINAL_STATUSES
from .store import JobStore
from .store.dialects.base import EndWatch

logger = logging.getLogger(__name__)

LISTEN_SLICE_SECONDS = 0.25  # how often the listener looks up from its watch (close, idle)
IDLE_STOP_SECONDS = 5.0  # the listener stops after this long without a waiter
ENDED_READ_BATCH = 500  # ids per query of which waited-for jobs ended

Record = TypeVar("Record")


class EndedJobs:
    """Lets request threads wait for jobs to end, woken by one listener of this process."""

    def __init__(
        self, store: JobStore, open_watch: Callable[[], EndWatch], max_waiters: int
    ) -> None:
        self._store = store
        self._open_watch = open_watch
        self._max_waiters = max_waiters
        self._lock = threading.Lock()
        self._waiting: dict[int, set[threading.Event]] = {}
        self._count = 0
        self._listener: threading.Thread | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        """Return how many requests wait now."""
        return self._count

    def wait_for(
        self,
        job_id: int,
        timeout: float,
        read: Callable[[], Record],
        ended: Callable[[Record], bool],
    ) -> Record:
        """Return ``read()`` once ``ended`` holds for it, or after ``timeout`` seconds.

        Past ``max_waiters`` requests waiting at once, it answers ``read()`` at once: a waiter
        holds a request thread, and the threads for other requests must stay free.
        """
        event = threading.Event()
        if not self._register(job_id, event):
            return read()
        try:
            # Registered before the read: an end committed after it wakes this event.
            record = read()
            deadline = time.monotonic() + timeout
            while not ended(record):
                left = deadline - time.monotonic()
                if left <= 0 or not event.wait(left):
                    return read()
                event.clear()
                record = read()
            return record
        finally:
            self._unregister(job_id, event)

    def close(self) -> None:
        """Stop the listener (waiting requests are answered at their timeout)."""
        with self._lock:
            self._closed = True
            listener = self._listener
        if listener is not None:
            listener.join()

    def _register(self, job_id: int, event: threading.Event) -> bool:
        with self._lock:
            if self._closed or self._count >= self._max_waiters:
                return False
            self._waiting.setdefault(job_id, set()).add(event)
            self._count += 1
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="jobsvc-ended-listener", daemon=True
                )
                self._listener.start()
        return True

    def _unregister(self, job_id: int, event: threading.Event) -> None:
        with self._lock:
            events = self._waiting.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[job_id]
            self._count -= 1

    def _listen(self) -> None:
        watch = self._open_watch()
        idle_since: float | None = None
        try:
            while True:
                ids = watch.wait(LISTEN_SLICE_SECONDS)
                with self._lock:
                    if self._closed:
                        self._listener = None
                        return
                    if not self._waiting:
                        now = time.monotonic()
                        idle_since = idle_since or now
                        if now - idle_since >= IDLE_STOP_SECONDS:
                            self._listener = None
                            return
                        continue
                    idle_since = None
                    candidates = (
                        list(self._waiting)
                        if ids is None
                        else [i for i in ids if i in self._waiting]
                    )
                if candidates:
                    self._wake(self._ended(candidates))
        except Exception:  # the listener must never die silently: the next waiter restarts it
            logger.exception("the ended-jobs listener stopped")
            with self._lock:
                self._listener = None
        finally:
            watch.close()

    def _ended(self, candidates: list[int]) -> set[int]:
        ended: set[int] = set()
        try:
            for start in range(0, len(candidates), ENDED_READ_BATCH):
                chunk = candidates[start : start + ENDED_READ_BATCH]
                ended.update(self._store.ended(chunk))
        except DatabaseUnavailable as exc:
            logger.warning("could not read which jobs ended: %s", exc)
        return ended

    def _wake(self, ended: set[int]) -> None:
        with self._lock:
            for job_id in ended:
                for event in self._waiting.get(job_id, ()):
                    event.set()


def is_ended(record: object) -> bool:
    """Return True if ``record`` (a ``JobRecord``) is DONE, FAILED or CANCELLED."""
    return getattr(record, "status", None) in TERMINAL_STATUSES
