"""The worker loop: claim up to the free slots, run, heartbeat, rescue, stop gracefully."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from types import FrameType

from jobsvc.errors import DatabaseUnavailable
from jobsvc.registry import HandlerRegistry
from jobsvc.store import ClaimedJob, LeaseStore, Outcome, Released, Waker

from .completer import Completer, Report
from .context import JobContext
from .errors import Interrupted, JobTimeout
from .execution import Execution, SlotPool, failure
from .logs import flush_logs

logger = logging.getLogger(__name__)

DB_RETRY_PAUSE_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs; built from the app config and the command line."""

    queues: tuple[str, ...] | None  # None: every queue
    concurrency: int
    burst: bool
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    shutdown_grace_seconds: float
    traceback_bytes: int


def new_worker_id() -> str:
    """Return a name for this worker process that is unique across hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner:
    """Runs jobs until told to stop (or, in burst mode, until nothing is ready)."""

    def __init__(self, store: LeaseStore, waker: Waker, registry: HandlerRegistry,
                 settings: WorkerSettings, worker_id: str | None = None) -> None:
        self.store = store
        self.waker = waker
        self.registry = registry
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.completer = Completer(store)
        self._wake = threading.Event()
        self._stopping = False
        self._running: dict[int, Execution] = {}  # claimed and not yet reported
        self._lock = threading.Lock()
        self.slots = SlotPool(settings.concurrency, registry, settings.traceback_bytes,
                              self._on_outcome)
        self._next_heartbeat = 0.0
        self._next_rescue = 0.0
        self._db_pause = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: drain and exit 0. A second one: exit at once."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            logger.warning("second signal: exiting now; leases of running jobs will expire")
            flush_logs()
            os._exit(1)
        logger.info("signal %s: no new claims; draining %d running jobs",
                    signal.Signals(signum).name, len(self._running))
        self.request_stop()

    def request_stop(self) -> None:
        """Stop claiming; running jobs get the grace period, then are released."""
        self._stopping = True
        self._wake.set()

    def run(self) -> int:
        """Serve jobs until stopped; return the process exit code."""
        logger.info("worker %s started: queues=%s concurrency=%d", self.worker_id,
                    ",".join(self.settings.queues) if self.settings.queues else "*",
                    self.settings.concurrency)
        waker_thread = threading.Thread(target=self._listen, name="waker", daemon=True)
        waker_thread.start()
        try:
            while not self._stopping:
                claimed = self._tick()
                if self.settings.burst and not claimed and not self._running:
                    logger.info("burst mode: nothing ready; exiting")
                    break
                if not claimed:
                    self._wait()
            self._drain()
        finally:
            self._stopping = True
            waker_thread.join(self.settings.poll_seconds + 5)
            self.slots.close()
            self.completer.close()
            self.waker.close()
        logger.info("worker %s stopped", self.worker_id)
        flush_logs()
        return 0

    # -- the loop ------------------------------------------------------------------------

    def _tick(self) -> int:
        try:
            self._maintain()
            claimed = self._claim()
        except DatabaseUnavailable:
            self._db_pause = min(max(self._db_pause * 2, 0.1), DB_RETRY_PAUSE_MAX_SECONDS)
            logger.warning("database unavailable; retrying in %.1fs", self._db_pause)
            time.sleep(self._db_pause)
            return 0
        self._db_pause = 0.0
        return claimed

    def _wait(self) -> None:
        if not self._running:
            flush_logs()  # idle: write the lines held for a batch now, not when work resumes
        timeout = self.settings.poll_seconds
        now = time.monotonic()
        for deadline in (self._next_heartbeat, self._next_rescue, self._nearest_deadline()):
            if deadline:
                timeout = min(timeout, max(0.0, deadline - now))
        self._wake.wait(timeout)
        self._wake.clear()

    def _listen(self) -> None:
        while not self._stopping:
            if self.waker.wait(self.settings.poll_seconds):
                self._wake.set()

    def _claim(self) -> int:
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            return 0
        jobs = self.store.claim(self.settings.queues, free, self.worker_id,
                                self.settings.lease_seconds)
        for job in jobs:
            self._start(job)
        return len(jobs)

    def _start(self, job: ClaimedJob) -> None:
        logger.info("claimed job_id=%s type=%s attempt=%s", job.id, job.type, job.attempt)
        context = JobContext(job_id=job.id, attempt=job.attempt, max_attempts=job.max_attempts,
                             queue=job.queue, type=job.type, worker_id=self.worker_id,
                             lease_token=job.lease_token)
        execution = Execution(job=job, context=context)
        with self._lock:
            self._running[job.id] = execution
        self.slots.submit(execution)

    def _on_outcome(self, execution: Execution, outcome: Outcome) -> None:
        # Called on the slot's thread when its handler returned.
        self.completer.put(Report(outcome, execution.job.type, execution.job.attempt))
        with self._lock:
            self._running.pop(execution.job.id, None)
        if not self._wake.is_set():
            self._wake.set()

    # -- maintenance: heartbeat, rescue, timeouts ----------------------------------------

    def _maintain(self) -> None:
        now = time.monotonic()
        self._enforce_timeouts(now)
        if now >= self._next_heartbeat:
            self._heartbeat()
            self._next_heartbeat = now + self.settings.heartbeat_seconds
        if now >= self._next_rescue:
            for rescued in self.store.rescue_expired():
                logger.warning("rescued job_id=%s attempt=%s from an expired lease: now %s",
                               rescued.job_id, rescued.attempt, rescued.status.value)
            self._next_rescue = now + max(self.settings.lease_seconds / 2, 0.05)

    def _heartbeat(self) -> None:
        with self._lock:
            executions = [execution for execution in self._running.values()
                          if not execution.resolved]
        lost = self.store.heartbeat([e.job.lease for e in executions],
                                    self.settings.lease_seconds)
        for execution in executions:
            if execution.job.id in lost and execution.resolve():
                logger.warning("lease lost job_id=%s type=%s attempt=%s: stopping the handler "
                               "(cancelled or rescued)", execution.job.id, execution.job.type,
                               execution.job.attempt)
                self._abandon(execution, Interrupted)

    def _nearest_deadline(self) -> float:
        with self._lock:
            deadlines = [e.deadline for e in self._running.values() if e.deadline]
        return min(deadlines, default=0.0)

    def _enforce_timeouts(self, now: float) -> None:
        with self._lock:
            overdue = [e for e in self._running.values()
                       if e.deadline is not None and now >= e.deadline]
        for execution in overdue:
            if not execution.resolve():
                continue
            job = execution.job
            timeout = JobTimeout(f"the job ran past its timeout of {job.timeout_seconds}s")
            self.completer.put(Report(
                failure(job, timeout, permanent=False,
                        traceback_limit=self.settings.traceback_bytes, with_traceback=False),
                job.type, job.attempt))
            logger.warning("timed out job_id=%s type=%s attempt=%s", job.id, job.type,
                           job.attempt)
            self._abandon(execution, JobTimeout)

    def _abandon(self, execution: Execution, exception: type[Interrupted]) -> None:
        """Stop a resolved attempt's handler and give its slot to a fresh thread.

        The old thread ends once the handler returns; a handler stuck in C code may take a
        while, and the worker does not wait for it.
        """
        execution.interrupt(exception)
        self.slots.replace(execution)
        with self._lock:
            self._running.pop(execution.job.id, None)
        self._wake.set()

    # -- shutdown ------------------------------------------------------------------------

    def _drain(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while self._running and time.monotonic() < deadline:
            try:
                self._maintain()
            except DatabaseUnavailable:
                pass
            self._wake.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self._wake.clear()
        with self._lock:
            leftovers = list(self._running.values())
        for execution in leftovers:
            if execution.resolve():
                job = execution.job
                logger.info("releasing job_id=%s type=%s attempt=%s: grace period over",
                            job.id, job.type, job.attempt)
                self.completer.put(Report(Released(job.lease), job.type, job.attempt))
                execution.interrupt(Interrupted)
