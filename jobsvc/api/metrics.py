"""Prometheus metrics of the API: what the database holds, read at scrape time, and enqueues.

Gauges come from the database when Prometheus scrapes (counts by queue and status, the ready
backlog and its oldest job's age, the workers holding leases), so every API process tells the
same truth. ``jobsvc_jobs_enqueued_total`` counts in this process: scrape each API process as a
target of its own (waitress serves one process with threads, so one counter per process is
exact; Prometheus sums the targets). Workers serve their own counters (``worker.metrics``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PrometheusCounter
from prometheus_client.core import GaugeMetricFamily, Metric

from ..models import JobStatus
from ..store import JobStore, NewJob, OverviewStore
from ..tokens import SCOPE_READ
from .endpoints import endpoint
from .state import state

bp = Blueprint("metrics", __name__)


OTHER_QUEUES = "(other)"  # not a valid queue name, so it never collides with a real one


class JobCountCollector:
    """Reads job counts and the ready backlog from the store at scrape time.

    The ``max_queues`` largest queues get series of their own; the rest are summed under
    ``queue="(other)"``, so a client naming thousands of queues cannot bloat every scrape.
    """

    def __init__(self, store: JobStore, overview: OverviewStore, max_queues: int) -> None:
        self.store = store
        self.overview = overview
        self.max_queues = max_queues

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "jobsvc_jobs", "Jobs by queue and status.", labels=["queue", "status"]
        )
        counts = _folded(self.store.counts(), self.max_queues)
        queues = sorted({queue for queue, _ in counts}) or ["default"]
        for queue in queues:
            for status in JobStatus:
                gauge.add_metric([queue, status.value], counts.get((queue, status), 0))
        yield gauge
        yield from self._ready(set(queues))
        busy = self.overview.busy_workers()
        workers = GaugeMetricFamily(
            "jobsvc_busy_workers", "Workers holding at least one live lease (running a job)."
        )
        workers.add_metric([], len(busy))
        yield workers

    def _ready(self, shown: set[str]) -> Iterator[Metric]:
        ready = GaugeMetricFamily(
            "jobsvc_ready_jobs",
            "PENDING jobs whose run_at has come: what workers could claim now.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "jobsvc_oldest_ready_age_seconds",
            "How long the oldest ready job of a queue has waited since its run_at (0: none).",
            labels=["queue"],
        )
        by_queue: dict[str, tuple[int, float]] = {}
        for entry in self.overview.ready_queues():
            queue = entry.queue if entry.queue in shown else OTHER_QUEUES
            count, age = by_queue.get(queue, (0, 0.0))
            by_queue[queue] = (count + entry.ready, max(age, entry.oldest_age_seconds))
        for queue in sorted(shown | set(by_queue)):
            count, age = by_queue.get(queue, (0, 0.0))
            ready.add_metric([queue], count)
            oldest.add_metric([queue], age)
        yield ready
        yield oldest


class EnqueueCounter:
    """``jobsvc_jobs_enqueued_total`` by queue and type, in this API process.

    At most ``max_series`` (queue, type) pairs get series of their own; later new ones count
    under ``"(other)"``: job types and queues come from clients, and a label per value would
    let them grow every scrape without bound.
    """

    def __init__(self, max_series: int) -> None:
        self.counter = PrometheusCounter(
            "jobsvc_jobs_enqueued",
            "Jobs this API process stored, by queue and type.",
            ["queue", "type"],
            registry=None,
        )
        self._max_series = max_series
        self._children: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def count(self, new_jobs: Iterable[NewJob]) -> None:
        """Count ``new_jobs`` as stored."""
        pairs = Counter((job.queue, job.type) for job in new_jobs)
        for pair, number in pairs.items():
            child = self._children.get(pair)
            if child is None:
                child = self._child(pair)
            child.inc(number)  # type: ignore[attr-defined]

    def _child(self, pair: tuple[str, str]) -> object:
        with self._lock:
            if pair not in self._children and len(self._children) >= self._max_series:
                pair = (OTHER_QUEUES, OTHER_QUEUES)
            child = self._children.get(pair)
            if child is None:
                child = self.counter.labels(*pair)
                self._children[pair] = child
            return child


def _folded(
    counts: dict[tuple[str, JobStatus], int], max_queues: int
) -> dict[tuple[str, JobStatus], int]:
    totals: Counter[str] = Counter()
    for (queue, _), count in counts.items():
        totals[queue] += count
    if len(totals) <= max_queues:
        return counts
    # Largest first; ties by name, so a scrape's series stay put from one scrape to the next.
    kept = {
        queue
        for queue, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:max_queues]
    }
    folded: Counter[tuple[str, JobStatus]] = Counter()
    for (queue, status), count in counts.items():
        folded[(queue if queue in kept else OTHER_QUEUES, status)] += count
    return dict(folded)


@endpoint(
    bp,
    "GET",
    "/metrics",
    scope=SCOPE_READ,
    summary="Job counts, ready backlog, oldest ready age and enqueues (Prometheus text).",
    operation_id="metrics",
    responses={
        "200": {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics() -> Response:
    """Expose the metrics in the Prometheus text format."""
    registry = CollectorRegistry()
    api = state()
    services = api.services
    registry.register(
        JobCountCollector(
            services.jobs, services.overview, services.config["JOBSVC_METRICS_MAX_QUEUES"]
        )
    )
    registry.register(api.enqueued.counter)
    # content_type, not mimetype: given a mimetype, werkzeug appends a second "charset=utf-8"
    # to CONTENT_TYPE_LATEST, which already has one, and Prometheus 3 refuses the scrape.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
