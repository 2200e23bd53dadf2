"""Attempt history: GET /jobs/{id}/attempts, written by the statements that record outcomes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from jobsvc.models import Job, JobAttempt
from jobsvc.store import outcomes
from tests.support.draining import drain


def _attempts(client, job_id: int) -> list[dict]:
    response = client.get(f"/jobs/{job_id}/attempts")
    assert response.status_code == 200, response.json
    return response.json["attempts"]


def test_each_attempt_shows_its_worker_times_outcome_and_error(client, engine, job_store):
    job_id = client.post(
        "/jobs", json={"type": "test.flaky", "payload": {"succeed_on": 3}, "max_attempts": 3}
    ).json["id"]
    drain(engine, job_store, [job_id])
    attempts = _attempts(client, job_id)
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["outcome"] for a in attempts] == ["failed", "failed", "succeeded"]
    assert attempts[0]["error_type"] == "RuntimeError"
    assert "attempt 1 fails on purpose" in attempts[0]["error_message"]
    assert attempts[2]["error_type"] is None and attempts[2]["error_message"] is None
    for attempt in attempts:
        assert attempt["worker"]
        started = datetime.fromisoformat(attempt["started_at"])
        assert started <= datetime.fromisoformat(attempt["finished_at"])


def test_a_timed_out_attempt_says_so(client, engine, job_store):
    job_id = client.post(
        "/jobs",
        json={
            "type": "test.sleep",
            "payload": {"seconds": 5},
            "timeout_seconds": 0.2,
            "max_attempts": 1,
        },
    ).json["id"]
    drain(engine, job_store, [job_id])
    (attempt,) = _attempts(client, job_id)
    assert attempt["outcome"] == "timed_out"
    assert attempt["error_type"] == "JobTimeout"


def test_rescued_released_and_cancelled_attempts_are_recorded(client, engine, lease_store):
    ids = [client.post("/jobs", json={"type": "test.echo"}).json["id"] for _ in range(3)]
    store = lease_store
    claimed = {job.id: job for job in store.claim(None, 3, "w-1", lease_seconds=30)}
    store.finish([outcomes.released(claimed[ids[0]])])
    assert client.post(f"/jobs/{ids[1]}/cancel").status_code == 200
    # Expire the remaining lease in the database rather than racing a short one against the clock.
    with engine.begin() as connection:
        connection.execute(
            update(Job).where(Job.id == ids[2]).values(lease_expires_at=Job.created_at)
        )
    rescued = store.rescue_expired()
    assert {r.job_id for r in rescued} == {ids[2]}
    assert [a["outcome"] for a in _attempts(client, ids[0])] == ["released"]
    assert [a["outcome"] for a in _attempts(client, ids[1])] == ["cancelled"]
    (lost,) = _attempts(client, ids[2])
    assert lost["outcome"] == "lease_lost" and lost["worker"] == "w-1"
    assert lost["error_type"] == "LeaseExpired"


def test_an_outcome_dropped_for_a_lost_lease_records_no_attempt(client, lease_store):
    job_id = client.post("/jobs", json={"type": "test.echo"}).json["id"]
    (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
    assert lease_store.finish([outcomes.succeeded(job, 1)]) == []
    assert lease_store.finish([outcomes.succeeded(job, 2)]) == [job.id]  # no longer RUNNING
    assert [a["outcome"] for a in _attempts(client, job_id)] == ["succeeded"]


def test_a_retried_job_keeps_its_earlier_attempts_in_the_order_they_ended(client, lease_store):
    job_id = client.post("/jobs", json={"type": "test.echo", "max_attempts": 1}).json["id"]
    (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
    failure = outcomes.failed(job, RuntimeError("first"), permanent=True, traceback_limit=100)
    lease_store.finish([failure])
    assert client.post(f"/jobs/{job_id}/retry").status_code == 200
    (job,) = lease_store.claim(None, 1, "w-2", lease_seconds=30)
    lease_store.finish([outcomes.succeeded(job, None)])
    attempts = _attempts(client, job_id)
    assert [(a["attempt"], a["outcome"], a["worker"]) for a in attempts] == [
        (1, "failed", "w-1"),
        (1, "succeeded", "w-2"),
    ]


def test_a_job_without_attempts_has_an_empty_list_and_an_unknown_job_is_404(client):
    job_id = client.post("/jobs", json={"type": "test.echo"}).json["id"]
    assert _attempts(client, job_id) == []
    response = client.get("/jobs/999999/attempts")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_attempts_are_pruned_with_their_job(client, engine, job_store):
    job_id = client.post("/jobs", json={"type": "test.echo"}).json["id"]
    drain(engine, job_store, [job_id])
    with engine.begin() as connection:
        connection.execute(delete(Job).where(Job.id == job_id))
        left = connection.execute(
            select(func.count()).select_from(JobAttempt).where(JobAttempt.job_id == job_id)
        ).scalar_one()
    assert left == 0
