"""Prometheus metrics: how many jobs each queue holds in each status."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from ..models import JobStatus
from ..store import JobStore

bp = Blueprint("metrics", __name__)


class JobCountCollector:
    """Reads job counts from the store at scrape time, so every API host reports the truth."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("jobsvc_jobs", "Jobs by queue and status.",
                                  labels=["queue", "status"])
        counts = self.store.counts()
        queues = sorted({queue for queue, _ in counts}) or ["default"]
        for queue in queues:
            for status in JobStatus:
                gauge.add_metric([queue, status.value], counts.get((queue, status), 0))
        yield gauge


@bp.get("/metrics")
def metrics() -> Response:
    """Expose job counts in the Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(JobCountCollector(current_app.extensions["jobsvc.store"]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
