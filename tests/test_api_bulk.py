"""Bulk cancel and retry by ids or a filter, in bounded batches; listing by time and fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import bindparam, create_engine, update

from jobsvc.config import normalize_database_url
from jobsvc.models import Job
from jobsvc.store import BULK_BATCH_MAX, JobSelection, outcomes
from jobsvc.timestamps import db_now_plus

WORKER = "bulk-test"


def _enqueue(client, count: int, **fields) -> list[int]:
    jobs = [{"type": "test.echo", "payload": {"n": n}, **fields} for n in range(count)]
    return [job["id"] for job in client.post("/jobs/batch", json={"jobs": jobs}).json["jobs"]]


def _status(client, job_id: int) -> str:
    return client.get(f"/jobs/{job_id}").json["status"]


def test_cancel_by_filter_cancels_only_matching_active_jobs(client, lease_store):
    mail = _enqueue(client, 3, queue="mail")
    other = _enqueue(client, 2, queue="other")
    (running,) = lease_store.claim(["mail"], 1, WORKER, 30)
    response = client.post("/jobs/cancel", json={"queue": "mail"})
    assert response.status_code == 200
    assert response.json == {"count": 3, "more": False}
    assert {_status(client, job_id) for job_id in mail} == {"CANCELLED"}
    assert {_status(client, job_id) for job_id in other} == {"PENDING"}
    # As a single cancel: the running attempt keeps its lease and its worker learns of it.
    assert lease_store.cancelled([running.lease]) == {running.id}
    assert client.get(f"/jobs/{running.id}").json["lease_expires_at"] is not None
    again = client.post("/jobs/cancel", json={"queue": "mail"})
    assert again.json == {"count": 0, "more": False}


def test_retry_by_ids_sends_failed_and_cancelled_jobs_back_and_leaves_the_rest(client, lease_store):
    done, failed, cancelled, pending = _enqueue(client, 4)
    claimed = {job.id: job for job in lease_store.claim(None, 2, WORKER, 30)}
    lease_store.finish([outcomes.succeeded(claimed[done], {})])
    lease_store.finish(
        [
            outcomes.failed(
                claimed[failed], RuntimeError("boom"), permanent=True, traceback_limit=100
            )
        ]
    )
    client.post(f"/jobs/{cancelled}/cancel")
    response = client.post("/jobs/retry", json={"ids": [done, failed, cancelled, pending]})
    assert response.json == {"count": 2, "more": False}
    assert [_status(client, job_id) for job_id in (done, failed, cancelled, pending)] == [
        "DONE",
        "PENDING",
        "PENDING",
        "PENDING",
    ]
    assert client.get(f"/jobs/{failed}").json["attempts"] == 0


def test_bulk_actions_work_in_bounded_batches_and_say_when_more_remain(client, job_store):
    ids = _enqueue(client, 5)
    first = job_store.cancel_many(JobSelection(status=None, queue="default"), limit=3)
    assert (first.count, first.more) == (3, True)
    assert [_status(client, job_id) for job_id in ids[:3]] == ["CANCELLED"] * 3  # oldest first
    second = job_store.cancel_many(JobSelection(queue="default"), limit=3)
    assert (second.count, second.more) == (2, False)
    retried = job_store.retry_many(JobSelection(ids=tuple(ids)), limit=4)
    assert (retried.count, retried.more) == (4, True)


def test_a_bulk_call_must_select_something_and_at_most_the_batch_bound(client):
    _enqueue(client, 2)
    empty = client.post("/jobs/cancel", json={})
    assert empty.status_code == 422 and "filter" in empty.json["errors"]["_schema"][0]
    too_many = client.post("/jobs/retry", json={"ids": list(range(1, BULK_BATCH_MAX + 2))})
    assert too_many.status_code == 422 and "ids" in too_many.json["errors"]
    unknown = client.post("/jobs/cancel", json={"state": "PENDING"})
    assert unknown.status_code == 422 and "state" in unknown.json["errors"]
    assert {_status(client, job_id) for job_id in (1, 2)} == {"PENDING"}


def _created_at(app, job_ids: list[int], seconds_ago: float) -> None:
    engine = create_engine(normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"]))
    try:
        with engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id.in_(job_ids))
                .values(created_at=db_now_plus(bindparam("ago", -seconds_ago)))
            )
    finally:
        engine.dispose()


def test_created_after_and_before_select_by_creation_time(client, app):
    old = _enqueue(client, 2)
    new = _enqueue(client, 2)
    _created_at(app, old, seconds_ago=3 * 86_400)
    cut = quote((datetime.now(UTC) - timedelta(days=1)).isoformat())
    listed = client.get(f"/jobs?created_before={cut}").json["jobs"]
    assert sorted(job["id"] for job in listed) == old
    listed = client.get(f"/jobs?created_after={cut}").json["jobs"]
    assert sorted(job["id"] for job in listed) == new
    cancelled = client.post(
        "/jobs/cancel", json={"created_before": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    )
    assert cancelled.json["count"] == 2
    assert [_status(client, job_id) for job_id in old + new] == [
        "CANCELLED",
        "CANCELLED",
        "PENDING",
        "PENDING",
    ]


def test_fields_leaves_out_payloads_and_the_last_page_has_no_next(client):
    _enqueue(client, 4)
    page = client.get("/jobs?fields=id,status&limit=2").json
    assert page["jobs"] == [{"id": 4, "status": "PENDING"}, {"id": 3, "status": "PENDING"}]
    last = client.get(page["next"]).json
    assert [job["id"] for job in last["jobs"]] == [2, 1]
    assert last["next"] is None
    unknown = client.get("/jobs?fields=id,secret")
    assert unknown.status_code == 422
    assert "job field names" in unknown.json["errors"]["fields"][0]  # and lists them
