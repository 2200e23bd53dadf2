"""The worker's own Prometheus metrics, served by ``--metrics-port`` (``start_http_server``).

Why from the worker and not through the database: outcomes, durations and waits happen in the
worker, which counts them for free in memory; writing counters to the database would add a write
to every completion (the hottest path) and a table that only grows. Each worker is one scrape
target, on whatever host it runs, and Prometheus sums the targets (``sum by (queue)``). A
restarted worker starts its counters from zero, which ``rate()`` and ``increase()`` expect.
What only the database knows (backlog, oldest ready job, counts by status) the API reads at
scrape time (``jobsvc.api.metrics``), so it is right however many workers and API processes run.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from jobsvc.store import ClaimedJob, Failed, Outcome, Released, Succeeded, ready_since

from .events import Events

# Seconds: from a no-op job's milliseconds to handlers that run for an hour.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)


class WorkerMetrics:
    """The collectors of one worker process, on a registry of its own."""

    def __init__(self, worker_id: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["queue", "type"]
        self.finished = Counter(
            "jobsvc_jobs_finished",
            "Attempts this worker finished, by outcome: done, failed (for good), retry "
            "(scheduled again), released (at shutdown) or lost (lease gone: outcome dropped).",
            [*labels, "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "jobsvc_job_duration_seconds",
            "How long an attempt's handler ran.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.waited = Histogram(
            "jobsvc_job_queue_wait_seconds",
            "How long a job was ready (run_at reached) before this worker claimed it.",
            labels,
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.heartbeat = Gauge(
            "jobsvc_worker_last_heartbeat_timestamp_seconds",
            "When this worker last renewed its leases (Unix time); it beats even when idle.",
            ["worker"],
            registry=self.registry,
        ).labels(worker_id)
        self.started = Gauge(
            "jobsvc_worker_start_timestamp_seconds",
            "When this worker started (Unix time).",
            ["worker"],
            registry=self.registry,
        ).labels(worker_id)

    def serve(self, port: int, host: str) -> Any:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; return the server."""
        self.started.set(time.time())
        self.heartbeat.set(time.time())
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


def _outcome(outcome: Outcome, lost: bool) -> str:
    if lost:
        return "lost"
    if isinstance(outcome, Succeeded):
        return "done"
    if isinstance(outcome, Failed):
        return "failed" if outcome.is_final else "retry"
    if isinstance(outcome, Released):
        return "released"
    return type(outcome).__name__.lower()


class MeteredEvents(Events):
    """The worker's events, each also counted in its metrics (used only with --metrics-port)."""

    def __init__(self, worker_id: str, metrics: WorkerMetrics) -> None:
        super().__init__(worker_id)
        self.metrics = metrics

    def claimed(self, job: ClaimedJob) -> None:
        since = ready_since(job)
        if since is not None:
            self.metrics.waited.labels(job.queue, job.type).observe(max(0.0, time.time() - since))
        super().claimed(job)

    def recorded(
        self, job: ClaimedJob, outcome: Outcome, duration: float | None, *, lost: bool
    ) -> None:
        self.metrics.finished.labels(job.queue, job.type, _outcome(outcome, lost)).inc()
        if duration is not None:
            self.metrics.duration.labels(job.queue, job.type).observe(duration)
        super().recorded(job, outcome, duration, lost=lost)

    def heartbeat(self) -> None:
        self.metrics.heartbeat.set(time.time())
