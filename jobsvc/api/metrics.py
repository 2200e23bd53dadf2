"""Prometheus metrics: how many jobs each queue holds in each status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from ..models import JobStatus
from ..store import JobStore
from ..tokens import SCOPE_READ
from .endpoints import endpoint
from .state import state

bp = Blueprint("metrics", __name__)


OTHER_QUEUES = "(other)"  # not a valid queue name, so it never collides with a real one


class JobCountCollector:
    """Reads job counts from the store at scrape time, so every API host reports the truth.

    The ``max_queues`` largest queues get series of their own; the rest are summed under
    ``queue="(other)"``, so a client naming thousands of queues cannot bloat every scrape.
    """

    def __init__(self, store: JobStore, max_queues: int) -> None:
        self.store = store
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
    summary="Job counts in the Prometheus text format.",
    operation_id="metrics",
    responses={
        "200": {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics() -> Response:
    """Expose job counts in the Prometheus text format."""
    registry = CollectorRegistry()
    api = state()
    registry.register(
        JobCountCollector(api.services.jobs, api.services.config["JOBSVC_METRICS_MAX_QUEUES"])
    )
    # content_type, not mimetype: given a mimetype, werkzeug appends a second "charset=utf-8"
    # to CONTENT_TYPE_LATEST, which already has one, and Prometheus 3 refuses the scrape.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
