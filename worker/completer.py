"""Writing outcomes to the database in batches, off the handlers' threads."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from jobsvc.errors import DatabaseUnavailable
from jobsvc.store import ClaimedJob, LeaseStore, Outcome, outcomes

from .events import Events

logger = logging.getLogger(__name__)

BATCH_MAX = 500  # outcomes per transaction
RETRY_PAUSE_SECONDS = 0.5  # wait between attempts to write while the database is away
RETRY_PAUSE_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class Report:
    """An attempt's outcome, with what its event needs."""

    outcome: Outcome
    job: ClaimedJob
    duration: float | None = None  # seconds the attempt ran, where known


class Completer:
    """A thread that drains reports and writes each batch in one transaction."""

    def __init__(self, store: LeaseStore, events: Events) -> None:
        self._store = store
        self._events = events
        self._reports: queue.SimpleQueue[Report | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="completer", daemon=True)
        self._thread.start()

    def put(self, report: Report) -> None:
        """Queue ``report`` for the next batch."""
        self._reports.put(report)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then stop the thread."""
        self._reports.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        closing = False
        while not closing:
            batch: list[Report] = []
            item = self._reports.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= BATCH_MAX:
                    break
                try:
                    item = self._reports.get_nowait()
                except queue.Empty:
                    break
            closing = item is None
            if batch:
                self._write(batch)

    def _write(self, batch: list[Report]) -> None:
        pause = RETRY_PAUSE_SECONDS
        while True:
            try:
                lost = set(self._store.finish([report.outcome for report in batch]))
                break
            except DatabaseUnavailable:
                # Keep the outcomes: the leases stay valid for a while, and a write that comes
                # after a lease expired is fenced out, never applied twice.
                logger.warning("cannot record %d outcomes yet; database unavailable", len(batch))
                time.sleep(pause)
                pause = min(pause * 2, RETRY_PAUSE_MAX_SECONDS)
            except Exception:
                logger.exception(
                    "recording %d outcomes failed; recording them one by one", len(batch)
                )
                for report in batch:
                    self._write_alone(report)
                return
        recorded = self._events.recorded
        for report in batch:
            recorded(
                report.job,
                report.outcome,
                report.duration,
                lost=report.outcome.lease.job_id in lost,
            )

    def _write_alone(self, report: Report) -> None:
        try:
            lost = self._store.finish([report.outcome])
        except DatabaseUnavailable:
            return  # the lease expires and the rescuer retries the job
        except Exception as exc:
            if outcomes.is_not_stored(report.outcome):
                logger.exception("cannot record job_id=%s at all", report.outcome.lease.job_id)
                return
            # The database refused this outcome (a result it cannot store): fail the job
            # rather than leave it to be rescued and run again for nothing.
            replacement = outcomes.not_stored(report.outcome, report.job.attempt, exc)
            self._write_alone(Report(replacement, report.job, report.duration))
            return
        self._events.recorded(report.job, report.outcome, report.duration, lost=bool(lost))
