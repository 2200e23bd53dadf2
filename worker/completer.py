"""Writing outcomes to the database in batches, off the handlers' threads."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from jobsvc.errors import DatabaseUnavailable
from jobsvc.store import Failed, LeaseStore, Outcome, Released, Succeeded

logger = logging.getLogger(__name__)

BATCH_MAX = 500  # outcomes per transaction
RETRY_PAUSE_SECONDS = 0.5  # wait between attempts to write while the database is away
RETRY_PAUSE_MAX_SECONDS = 5.0
NOT_STORED = "OutcomeNotStored"


@dataclass(frozen=True)
class Report:
    """An outcome with what the log line needs."""

    outcome: Outcome
    job_type: str
    attempt: int


class Completer:
    """A thread that drains reports and writes each batch in one transaction."""

    def __init__(self, store: LeaseStore) -> None:
        self._store = store
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
                logger.exception("recording %d outcomes failed; recording them one by one",
                                 len(batch))
                for report in batch:
                    self._write_alone(report)
                return
        for report in batch:
            _log(report, lost=report.outcome.lease.job_id in lost)

    def _write_alone(self, report: Report) -> None:
        try:
            lost = self._store.finish([report.outcome])
        except DatabaseUnavailable:
            return  # the lease expires and the rescuer retries the job
        except Exception as exc:
            if isinstance(report.outcome, Failed) and report.outcome.error_type == NOT_STORED:
                logger.exception("cannot record job_id=%s at all", report.outcome.lease.job_id)
                return
            # The database refused this outcome (a result it cannot store): fail the job
            # rather than leave it to be rescued and run again for nothing.
            replacement = Failed(lease=report.outcome.lease, attempt=report.attempt,
                                 max_attempts=report.attempt, error_type=NOT_STORED,
                                 message=f"the database refused the attempt's outcome: {exc}",
                                 permanent=True)
            self._write_alone(Report(replacement, report.job_type, report.attempt))
            return
        _log(report, lost=bool(lost))


def _log(report: Report, *, lost: bool) -> None:
    job_id, outcome = report.outcome.lease.job_id, report.outcome
    fields = (job_id, report.job_type, report.attempt)
    if lost:
        logger.warning("lease lost job_id=%s type=%s attempt=%s: outcome dropped", *fields)
    elif isinstance(outcome, Succeeded):
        logger.info("done job_id=%s type=%s attempt=%s", *fields)
    elif isinstance(outcome, Released):
        logger.info("released job_id=%s type=%s attempt=%s", *fields)
    elif isinstance(outcome, Failed) and (outcome.permanent
                                          or outcome.attempt >= outcome.max_attempts):
        logger.warning("failed job_id=%s type=%s attempt=%s: %s", *fields, outcome.message)
    else:
        logger.info("retry scheduled job_id=%s type=%s attempt=%s: %s", *fields,
                    getattr(outcome, "message", ""))
