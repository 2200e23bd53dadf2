"""The fetch loop: claim up to the free slots, then wait for a wake-up, a due task or the poll."""

from __future__ import annotations

import logging
import threading
import time

from jobsvc.errors import DatabaseUnavailable
from jobsvc.store import LeaseStore, Waker

from .executor import Executor
from .logs import flush_logs
from .maintenance import Maintenance
from .shutdown import StopFlag

logger = logging.getLogger(__name__)

DB_RETRY_PAUSE_MAX_SECONDS = 5.0
DB_RETRY_PAUSE_FIRST_SECONDS = 0.1
LISTENER_JOIN_EXTRA_SECONDS = 5.0  # beyond one poll, for the listener's last wait to return


class FetchLoop:
    """Claims jobs for the executor until ``stop`` is set (or, in burst mode, none is ready)."""

    def __init__(
        self,
        store: LeaseStore,
        waker: Waker,
        executor: Executor,
        maintenance: Maintenance,
        *,
        queues: tuple[str, ...] | None,
        worker_id: str,
        lease_seconds: float,
        poll_seconds: float,
        burst: bool,
        wake: threading.Event,
        stop: StopFlag,
    ) -> None:
        self._store = store
        self._waker = waker
        self._executor = executor
        self._maintenance = maintenance
        self._queues = queues
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._burst = burst
        self._wake = wake
        self._stop = stop
        self._db_pause = 0.0
        self._held_back: float | None = None  # seconds until a limited queue may have room
        self._listener = threading.Thread(target=self._listen, name="waker", daemon=True)

    def run(self) -> None:
        """Claim and start jobs until stopped; the database's wake-ups cut idle waits short."""
        self._listener.start()
        while not self._stop.is_set():
            claimed = self._tick()
            if self._burst and not claimed and not self._executor.busy():
                logger.info("burst mode: nothing ready; exiting")
                return
            if not claimed:
                self._wait()

    def close(self) -> None:
        """Wait for the listener thread to end (``stop`` must be set)."""
        if self._listener.is_alive():
            self._listener.join(self._poll_seconds + LISTENER_JOIN_EXTRA_SECONDS)

    def _tick(self) -> int:
        try:
            self._maintenance.run_due()
            claimed = self._claim()
        except DatabaseUnavailable:
            self._db_pause = min(
                max(self._db_pause * 2, DB_RETRY_PAUSE_FIRST_SECONDS), DB_RETRY_PAUSE_MAX_SECONDS
            )
            logger.warning("database unavailable; retrying in %.1fs", self._db_pause)
            time.sleep(self._db_pause)
            return 0
        self._db_pause = 0.0
        return claimed

    def _claim(self) -> int:
        free = self._executor.free()
        if free <= 0:
            return 0
        sent = time.monotonic()  # the leases run from no earlier than this
        jobs = self._store.claim(self._queues, free, self._worker_id, self._lease_seconds)
        self._held_back = jobs.retry_after_seconds
        start = self._executor.start
        for job in jobs:
            start(job)
        if jobs:
            self._maintenance.leased([job.id for job in jobs], sent)
        return len(jobs)

    def _wait(self) -> None:
        if not self._executor.busy():
            flush_logs()  # idle: write the lines held for a batch now, not when work resumes
        timeout = self._poll_seconds
        if self._held_back is not None:
            # Nothing wakes a worker when a limited queue gets room again: look then.
            timeout = min(timeout, self._held_back)
        due = self._maintenance.next_due()
        if due:
            timeout = min(timeout, max(0.0, due - time.monotonic()))
        self._wake.wait(timeout)
        self._wake.clear()

    def _listen(self) -> None:
        while not self._stop.is_set():
            if self._waker.wait(self._poll_seconds):
                if self._waker.cancel_noticed():
                    self._maintenance.notice_cancel()
                if self._waker.queues_changed():
                    self._store.forget_queue_limits()
                self._wake.set()
