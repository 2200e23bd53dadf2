"""The API's /metrics: scrape-time gauges from the database, and the enqueue counter."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from jobsvc.api.metrics import EnqueueCounter
from jobsvc.store import NewJob

JOB = {"type": "test.echo", "payload": {}}


def _samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].count("charset") == 1
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_enqueues_are_counted_by_queue_and_type(client):
    client.post("/jobs", json={**JOB, "queue": "mail"})
    client.post("/jobs/batch", json={"jobs": [{**JOB, "queue": "mail"}, {**JOB, "queue": "sms"}]})
    samples = _samples(client)
    assert samples[("jobsvc_jobs_enqueued_total", (("queue", "mail"), ("type", "test.echo")))] == 2
    assert samples[("jobsvc_jobs_enqueued_total", (("queue", "sms"), ("type", "test.echo")))] == 1


def test_ready_jobs_and_the_oldest_ones_age_per_queue(client):
    client.post("/jobs", json={**JOB, "queue": "mail"})
    client.post("/jobs", json={**JOB, "queue": "later", "run_at": "2999-01-01T00:00:00Z"})
    samples = _samples(client)
    assert samples[("jobsvc_ready_jobs", (("queue", "mail"),))] == 1
    assert samples[("jobsvc_ready_jobs", (("queue", "later"),))] == 0  # scheduled, not ready
    assert samples[("jobsvc_oldest_ready_age_seconds", (("queue", "mail"),))] >= 0
    assert samples[("jobsvc_oldest_ready_age_seconds", (("queue", "later"),))] == 0
    assert samples[("jobsvc_busy_workers", ())] == 0


def test_client_chosen_labels_stop_growing_at_the_bound():
    counter = EnqueueCounter(max_series=2)
    jobs = [
        NewJob(type=f"t{n}", queue="q", payload={}, priority=0, max_attempts=1) for n in range(5)
    ]
    counter.count(jobs)
    counted = {
        tuple(sorted(sample.labels.items())): sample.value
        for metric in counter.counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    assert len(counted) == 3
    assert counted[(("queue", "(other)"), ("type", "(other)"))] == 3
