"""The jobs API as a client sees it: shapes, headers, lifecycle endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

SEED_JOB = {"type": "test.echo", "payload": {"user_id": "123", "range": "last_week"}}
SEED_FIELDS = {"id", "type", "status", "attempts", "result", "last_error"}
EXTRA_FIELDS = {
    "queue",
    "priority",
    "payload",
    "max_attempts",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
}


def test_create_answers_the_seed_shape_with_location(client):
    response = client.post("/jobs", json=SEED_JOB)
    assert response.status_code == 201
    assert response.json == {"id": 1, "status": "PENDING"}
    assert response.headers["Location"].endswith("/jobs/1")


def test_get_answers_seed_fields_and_details(client):
    client.post("/jobs", json=SEED_JOB)
    job = client.get("/jobs/1").json
    assert SEED_FIELDS | EXTRA_FIELDS <= set(job)
    assert job["type"] == "test.echo"
    assert job["status"] == "PENDING"
    assert job["attempts"] == 0
    assert job["result"] is None and job["last_error"] is None
    assert job["payload"] == SEED_JOB["payload"]
    assert job["queue"] == "default" and job["priority"] == 0
    assert job["max_attempts"] == 3
    created = datetime.fromisoformat(job["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created) < timedelta(seconds=30)


def test_options_are_stored(client):
    run_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    body = {
        **SEED_JOB,
        "queue": "reports",
        "priority": 7,
        "max_attempts": 5,
        "timeout_seconds": 2.5,
        "run_at": run_at.isoformat(),
    }
    job_id = client.post("/jobs", json=body).json["id"]
    job = client.get(f"/jobs/{job_id}").json
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("reports", 7, 5)
    assert job["timeout_seconds"] == 2.5
    assert datetime.fromisoformat(job["run_at"]) == run_at


def test_run_at_with_other_offset_is_stored_as_the_same_instant(client):
    body = {**SEED_JOB, "run_at": "2030-01-01T12:00:00+02:00"}
    job_id = client.post("/jobs", json=body).json["id"]
    run_at = datetime.fromisoformat(client.get(f"/jobs/{job_id}").json["run_at"])
    assert run_at == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)


def test_payload_comes_back_unchanged(client):
    payload = {
        "text": "naïve café ☕ 𝄞",
        "n": 12345678901234567890,
        "f": 0.1,
        "nested": [1, {"a": None}],
        "nul": "a\u0000b",
        "empty": {},
    }
    job_id = client.post("/jobs", json={"type": "test.echo", "payload": payload}).json["id"]
    assert client.get(f"/jobs/{job_id}").json["payload"] == payload


def test_batch_enqueues_all_in_order(client):
    body = {"jobs": [{"type": "test.echo", "payload": {"i": i}} for i in range(5)]}
    response = client.post("/jobs/batch", json=body)
    assert response.status_code == 201
    ids = [job["id"] for job in response.json["jobs"]]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [client.get(f"/jobs/{i}").json["payload"]["i"] for i in ids] == list(range(5))


def test_batch_with_one_bad_job_stores_none(client):
    body = {"jobs": [{"type": "test.echo"}, {"type": "test.echo", "priority": "high"}]}
    response = client.post("/jobs/batch", json=body)
    assert response.status_code == 422
    assert "priority" in response.json["errors"]["jobs"]["1"]
    assert client.get("/jobs").json["jobs"] == []


def test_list_filters_and_pages_newest_first(client):
    for i in range(5):
        client.post("/jobs", json={"type": "test.echo", "queue": "a" if i % 2 else "b"})
    page = client.get("/jobs?limit=2").json
    assert [job["id"] for job in page["jobs"]] == [5, 4]
    second = client.get(page["next"]).json
    assert [job["id"] for job in second["jobs"]] == [3, 2]
    only_a = client.get("/jobs?queue=a").json["jobs"]
    assert {job["id"] for job in only_a} == {2, 4}
    pending = client.get("/jobs?status=PENDING").json["jobs"]
    assert len(pending) == 5


def test_cancel_pending_then_retry(client):
    job_id = client.post("/jobs", json=SEED_JOB).json["id"]
    cancelled = client.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "CANCELLED"
    assert cancelled.json["finished_at"] is not None
    again = client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json["job_status"] == "CANCELLED"
    retried = client.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 200
    assert retried.json["status"] == "PENDING" and retried.json["attempts"] == 0


def test_retry_of_a_pending_job_is_a_conflict(client):
    job_id = client.post("/jobs", json=SEED_JOB).json["id"]
    response = client.post(f"/jobs/{job_id}/retry")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_health_answers_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_health_answers_503_when_the_database_is_gone(tmp_path):
    from jobsvc import create_app
    from jobsvc.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
            "JOBSVC_AUTO_MIGRATE": False,
        }
    )
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert "database" in response.json["detail"]
    assert response.headers["Retry-After"]
    with app.app_context():
        db.engine.dispose()


def test_metrics_count_jobs_by_queue_and_status(client):
    client.post("/jobs", json={**SEED_JOB, "queue": "mail"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'jobsvc_jobs{queue="mail",status="PENDING"} 1.0' in text
    assert 'jobsvc_jobs{queue="mail",status="DONE"} 0.0' in text


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_wrong_method_is_405_with_allow(client, method):
    response = getattr(client, method)("/jobs")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.mimetype == "application/problem+json"
