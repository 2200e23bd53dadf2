"""Prometheus metrics: how many jobs each queue holds in each status."""

from __future__ import annotations

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


class JobCountCollector:
    """Reads job counts from the store at scrape time, so every API host reports the truth."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "jobsvc_jobs", "Jobs by queue and status.", labels=["queue", "status"]
        )
        counts = self.store.counts()
        queues = sorted({queue for queue, _ in counts}) or ["default"]
        for queue in queues:
            for status in JobStatus:
                gauge.add_metric([queue, status.value], counts.get((queue, status), 0))
        yield gauge


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
    registry.register(JobCountCollector(state().services.jobs))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
