"""delay_seconds: a job runs that many seconds after it was enqueued, by the database's clock."""

from __future__ import annotations

from datetime import datetime

import pytest

JOB = {"type": "test.echo", "payload": {}}


def _delay_of(client, job_id: int) -> float:
    job = client.get(f"/jobs/{job_id}").json
    run_at = datetime.fromisoformat(job["run_at"])
    return (run_at - datetime.fromisoformat(job["created_at"])).total_seconds()


@pytest.mark.parametrize("delay", [0, 1.5, 3600, 365 * 86400])
def test_delay_sets_run_at_that_far_after_creation(client, delay):
    job_id = client.post("/jobs", json={**JOB, "delay_seconds": delay}).json["id"]
    assert _delay_of(client, job_id) == pytest.approx(delay, abs=0.01)


def test_batch_takes_a_delay_per_job(client):
    items = [{**JOB, "delay_seconds": 60}, JOB, {**JOB, "run_at": None, "delay_seconds": 5}]
    response = client.post("/jobs/batch", json={"jobs": items})
    assert response.status_code == 201, response.json
    delays = [_delay_of(client, job["id"]) for job in response.json["jobs"]]
    assert delays == [pytest.approx(60, abs=0.01), pytest.approx(0, abs=0.01), pytest.approx(5)]


def test_delay_and_run_at_together_are_422_naming_both(client):
    body = {**JOB, "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}
    response = client.post("/jobs", json=body)
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"delay_seconds", "run_at"}
    batch = client.post("/jobs/batch", json={"jobs": [JOB, body]})
    assert batch.status_code == 422
    assert set(batch.json["errors"]["jobs"]["1"]) == {"delay_seconds", "run_at"}
