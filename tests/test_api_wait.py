"""GET /jobs/{id}?wait=N: answers as soon as the job ends, or after N seconds."""

from __future__ import annotations

import threading
import time

from jobsvc.store import outcomes
from tests.support.waiting import wait_until


def _enqueue(client) -> int:
    return client.post("/jobs", json={"type": "test.echo"}).json["id"]


def _wait_in_thread(client, path: str) -> tuple[threading.Thread, dict]:
    answer: dict = {}

    def run() -> None:
        started = time.monotonic()
        response = client.get(path)
        answer.update(
            status=response.status_code, job=response.json, took=time.monotonic() - started
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answer


def _ended_jobs(app):
    return app.extensions["jobsvc"].ended_jobs


def test_a_waiter_is_answered_as_soon_as_its_job_is_done(app, client, lease_store):
    job_id = _enqueue(client)
    thread, answer = _wait_in_thread(app.test_client(), f"/jobs/{job_id}?wait=60")
    wait_until(
        lambda: _ended_jobs(app).waiting == 1, timeout=30, message="the request never waited"
    )
    (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
    assert lease_store.finish([outcomes.succeeded(job, {"ok": True})]) == []
    thread.join(timeout=50)
    assert answer["status"] == 200
    assert answer["job"]["status"] == "DONE" and answer["job"]["result"] == {"ok": True}
    assert answer["took"] < 45  # woken by the end, not by the 60 s timeout


def test_a_waiter_is_answered_when_its_pending_job_is_cancelled(app, client):
    job_id = _enqueue(client)
    thread, answer = _wait_in_thread(app.test_client(), f"/jobs/{job_id}?wait=60")
    wait_until(
        lambda: _ended_jobs(app).waiting == 1, timeout=30, message="the request never waited"
    )
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
    thread.join(timeout=50)
    assert answer["job"]["status"] == "CANCELLED" and answer["took"] < 45


def test_a_retried_failure_does_not_end_the_wait(app, client, lease_store):
    job_id = client.post("/jobs", json={"type": "test.echo", "max_attempts": 2}).json["id"]
    thread, answer = _wait_in_thread(app.test_client(), f"/jobs/{job_id}?wait=2")
    wait_until(
        lambda: _ended_jobs(app).waiting == 1, timeout=30, message="the request never waited"
    )
    (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
    failure = outcomes.failed(job, RuntimeError("once"), permanent=False, traceback_limit=100)
    lease_store.finish([failure])
    thread.join(timeout=50)
    assert answer["job"]["status"] == "PENDING" and answer["job"]["attempts"] == 1
    assert answer["took"] >= 1.9  # it waited out its two seconds


def test_a_job_that_does_not_end_is_answered_after_the_wait(client):
    job_id = _enqueue(client)
    started = time.monotonic()
    response = client.get(f"/jobs/{job_id}?wait=0.3")
    assert response.status_code == 200 and response.json["status"] == "PENDING"
    assert time.monotonic() - started >= 0.3


def test_a_finished_job_is_answered_at_once(client, lease_store):
    job_id = _enqueue(client)
    (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
    lease_store.finish([outcomes.succeeded(job, 1)])
    started = time.monotonic()
    assert client.get(f"/jobs/{job_id}?wait=60").json["status"] == "DONE"
    assert time.monotonic() - started < 10


def test_a_bad_wait_is_422_naming_it(client):
    job_id = _enqueue(client)
    for wait in ["-1", "abc", "nan", "inf", "61", "1e9", "", "1&wait=2"]:
        response = client.get(f"/jobs/{job_id}?wait={wait}")
        assert response.status_code == 422, (wait, response.json)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "wait" in response.json["errors"], wait


def test_waiting_on_an_unknown_job_is_404(client):
    assert client.get("/jobs/424242?wait=5").status_code == 404


def test_a_waiter_on_a_grandchild_is_answered_when_its_grandparent_fails(app, client, lease_store):
    root = client.post("/jobs", json={"type": "test.echo", "max_attempts": 1}).json["id"]
    child = client.post("/jobs", json={"type": "test.echo", "depends_on": [root]}).json["id"]
    grandchild = client.post("/jobs", json={"type": "test.echo", "depends_on": [child]}).json["id"]
    thread, answer = _wait_in_thread(app.test_client(), f"/jobs/{grandchild}?wait=60")
    wait_until(
        lambda: _ended_jobs(app).waiting == 1, timeout=30, message="the request never waited"
    )
    (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
    assert job.id == root
    failure = outcomes.failed(job, RuntimeError("root"), permanent=True, traceback_limit=100)
    assert lease_store.finish([failure]) == []
    thread.join(timeout=50)
    assert answer["job"]["status"] == "CANCELLED"
    assert f"job {root}" in answer["job"]["last_error"]
    assert answer["took"] < 45  # woken by the cancel it inherited, not by the 60 s timeout
