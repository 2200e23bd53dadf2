"""The worker's structured events: one log record for each thing that happens to a job.

Each record carries its fields as attributes (``record.event``, ``job_id``, ``type``, ``queue``,
``attempt``, ``worker``, and ``duration``, ``error_type``, ``error`` where known; see
``EventRecord``) and a human message rendered from the same fields, so the plain-text format
reads as it always did and the JSON format (``worker.logs.JsonFormatter``) writes the fields as
they are. Payloads and results are never part of an event: they can hold secrets.
"""

from __future__ import annotations

import logging
from typing import Any

from jobsvc.store import ClaimedJob, Failed, Outcome, Rescued, Succeeded

logger = logging.getLogger(__name__)
UNKNOWN_FILE = "(unknown file)"  # what logging records when it does not look for the caller

# The message of each event, rendered from its fields (``msg % fields``).
_JOB = "job_id=%(job_id)s type=%(type)s attempt=%(attempt)s"
CLAIMED = "claimed " + _JOB
SUCCEEDED = "done " + _JOB
RETRY_SCHEDULED = "retry scheduled " + _JOB + ": %(error)s"
FAILED = "failed " + _JOB + ": %(error)s"
LEASE_LOST = "lease lost " + _JOB + ": stopping the handler (cancelled or rescued)"
OUTCOME_DROPPED = "lease lost " + _JOB + ": outcome dropped"
RELEASED = "releasing " + _JOB + ": grace period over"
TIMED_OUT = "timed out " + _JOB
CANCELLING = "cancelled " + _JOB + ": the handler is asked to stop"
SELF_FENCED = "lease not renewed " + _JOB + ": stopping the handler before the lease expires"
RESCUED = "rescued job_id=%(job_id)s attempt=%(attempt)s from an expired lease: now %(status)s"
STARTED = "worker %(worker)s started: queues=%(queues)s concurrency=%(concurrency)s"
STOPPED = "worker %(worker)s stopped"
SCHEDULED = "scheduled job_id=%(job_id)s type=%(type)s for the tick at %(tick_at)s"
AGED = "priority aging raised the priority of %(count)s waiting jobs"
PRUNED = "retention deleted %(count)s %(status)s jobs finished before %(older_than)ss ago"


class Events:
    """Writes the events of one worker (its id goes into every one)."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id

    def started(self, queues: tuple[str, ...] | None, concurrency: int, pid: int) -> None:
        """The worker is about to claim jobs."""
        self._emit(
            logging.INFO,
            "started",
            STARTED,
            {
                "worker": self.worker_id,
                "queues": ",".join(queues) if queues else "*",
                "concurrency": concurrency,
                "pid": pid,
            },
        )

    def stopped(self) -> None:
        """The worker has written every outcome and is exiting."""
        self._emit(logging.INFO, "stopped", STOPPED, {"worker": self.worker_id})

    def claimed(self, job: ClaimedJob) -> None:
        """The worker leased ``job`` and hands it to a slot."""
        if logger.isEnabledFor(logging.INFO):  # the hot path: build nothing for no one
            _write(
                logging.INFO,
                CLAIMED,
                {
                    "event": "claimed",
                    "job_id": job.id,
                    "type": job.type,
                    "queue": job.queue,
                    "attempt": job.attempt,
                    "worker": self.worker_id,
                },
            )

    def recorded(
        self, job: ClaimedJob, outcome: Outcome, duration: float | None, *, lost: bool
    ) -> None:
        """The store took ``outcome`` of ``job``'s attempt, or fenced it out (``lost``)."""
        if lost:
            self._job(logging.WARNING, "outcome_dropped", OUTCOME_DROPPED, job, duration)
        elif isinstance(outcome, Succeeded):
            if logger.isEnabledFor(logging.INFO):  # the hot path, as ``claimed``
                _write(
                    logging.INFO,
                    SUCCEEDED,
                    {
                        "event": "succeeded",
                        "job_id": job.id,
                        "type": job.type,
                        "queue": job.queue,
                        "attempt": job.attempt,
                        "worker": self.worker_id,
                        "duration": duration,
                    },
                )
        elif isinstance(outcome, Failed):
            self._failure(job, outcome, duration)
        # A stored Released needs no event: ``released`` was written when the worker let go.

    def _failure(self, job: ClaimedJob, failure: Failed, duration: float | None) -> None:
        final = failure.is_final
        self._job(
            logging.WARNING if final else logging.INFO,
            "failed" if final else "retry_scheduled",
            FAILED if final else RETRY_SCHEDULED,
            job,
            duration,
            error_type=failure.error_type,
            error=failure.message,
        )

    def lease_lost(self, job: ClaimedJob) -> None:
        """A heartbeat found ``job``'s lease gone (cancelled or rescued): its handler stops."""
        self._job(logging.WARNING, "lease_lost", LEASE_LOST, job)

    def cancelling(self, job: ClaimedJob) -> None:
        """``job`` was cancelled while it ran: its handler is told, then stopped after the grace."""
        self._job(logging.WARNING, "cancelling", CANCELLING, job)

    def self_fenced(self, job: ClaimedJob) -> None:
        """``job``'s lease could not be renewed: its handler stops before the lease expires."""
        self._job(logging.WARNING, "self_fenced", SELF_FENCED, job)

    def timed_out(self, job: ClaimedJob) -> None:
        """``job``'s attempt ran past its timeout: its handler stops and the attempt fails."""
        self._job(logging.WARNING, "timed_out", TIMED_OUT, job)

    def released(self, job: ClaimedJob) -> None:
        """The grace period ended with ``job`` still running: it goes back unfinished."""
        self._job(logging.INFO, "released", RELEASED, job)

    def rescued(self, rescued: Rescued) -> None:
        """This worker sent another attempt's expired lease through the retry rule."""
        self._emit(
            logging.WARNING,
            "rescued",
            RESCUED,
            {
                "job_id": rescued.job_id,
                "attempt": rescued.attempt,
                "status": rescued.status.value,
                "worker": self.worker_id,
            },
        )

    def scheduled(self, job_type: str, job_id: int, tick_at: str) -> None:
        """This worker created the job of a schedule's tick (no other worker did)."""
        fields = {"job_id": job_id, "type": job_type, "tick_at": tick_at, "worker": self.worker_id}
        self._emit(logging.INFO, "scheduled", SCHEDULED, fields)

    def aged(self, count: int) -> None:
        """Priority aging raised the stored priority of ``count`` waiting jobs."""
        self._emit(logging.DEBUG, "aged", AGED, {"count": count, "worker": self.worker_id})

    def pruned(self, status: str, count: int, older_than: float) -> None:
        """Retention deleted ``count`` finished jobs of ``status``."""
        fields = {
            "status": status,
            "count": count,
            "older_than": f"{older_than:g}",
            "worker": self.worker_id,
        }
        self._emit(logging.INFO, "pruned", PRUNED, fields)

    def _job(
        self,
        level: int,
        event: str,
        message: str,
        job: ClaimedJob,
        duration: float | None = None,
        **more: Any,
    ) -> None:
        fields = {
            "job_id": job.id,
            "type": job.type,
            "queue": job.queue,
            "attempt": job.attempt,
            "worker": self.worker_id,
            **more,
        }
        if duration is not None:
            fields["duration"] = duration
        self._emit(level, event, message, fields)

    @staticmethod
    def _emit(level: int, event: str, message: str, fields: dict[str, Any]) -> None:
        if logger.isEnabledFor(level):
            fields["event"] = event
            _write(level, message, fields)


class EventRecord(logging.LogRecord):
    """A log record whose event fields read as attributes (``record.job_id``).

    They live in ``args``, the mapping the message is rendered from, rather than in the
    record's ``__dict__``: copying them there (what ``extra=`` does) cost about 1.5 µs of a
    no-op job's 17 (in-process, x64). So a format string cannot name them (``%(job_id)s``),
    and a handler that clears ``args`` (``QueueHandler``) drops them; ``JsonFormatter`` reads
    them from ``args``.
    """

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("args")
        if type(fields) is dict and name in fields:
            return fields[name]
        raise AttributeError(name)


def _write(level: int, message: str, fields: dict[str, Any]) -> None:
    """Hand one event to the handlers, as ``logger.log`` would, message rendered from ``fields``."""
    record = EventRecord(logger.name, level, UNKNOWN_FILE, 0, message, None, None)
    record.args = fields  # set after __init__, which would test it for a Mapping
    logger.handle(record)
