"""Queues through the API: what GET shows, what PUT sets, pause and resume, who may do it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.tokens import bearer, make_token

STATUSES = ("PENDING", "RUNNING", "DONE", "FAILED", "CANCELLED")
WORKER = "test-worker"


def _post(client, queue: str, **options) -> int:
    response = client.post(
        "/jobs", json={"type": "test.echo", "payload": {}, "queue": queue, **options}
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_queue_seen_only_through_its_jobs_is_listed_with_no_limits(client):
    _post(client, "emails")
    _post(client, "emails", run_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    listed = client.get("/queues").json["queues"]
    assert [queue["name"] for queue in listed] == ["emails"]
    (emails,) = listed
    assert emails["paused"] is False
    assert emails["concurrency"] is None and emails["rate_limit"] is None
    assert emails["counts"] == {"PENDING": 2, "RUNNING": 0, "DONE": 0, "FAILED": 0, "CANCELLED": 0}
    assert emails["ready"] == 1  # the other waits for its run_at
    assert 0 <= emails["oldest_ready_age_seconds"] < 60
    shown = client.get("/queues/emails").json
    assert shown.pop("oldest_ready_age_seconds") >= emails.pop("oldest_ready_age_seconds")
    assert shown == emails


def test_counts_follow_the_jobs_through_their_lifecycle(client, lease_store):
    first, second, third = (_post(client, "reports") for _ in range(3))
    (claimed,) = lease_store.claim(["reports"], 1, WORKER, 30)
    assert client.post(f"/jobs/{second}/cancel").status_code == 200
    shown = client.get("/queues/reports").json
    assert shown["running"] == 1 and shown["counts"]["RUNNING"] == 1
    assert shown["counts"]["PENDING"] == 1 and shown["counts"]["CANCELLED"] == 1
    assert claimed.id == first and third


def test_an_unknown_queue_is_404_problem(client):
    for name in ("nothing-here", "bad name!"):
        response = client.get(f"/queues/{name}")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_put_sets_limits_null_removes_one_and_a_left_out_one_stays(client):
    both = {"concurrency": 2, "rate_limit": {"jobs": 10, "per_seconds": 1}}
    shown = client.put("/queues/emails", json=both).json
    assert shown["concurrency"] == 2
    assert shown["rate_limit"] == {"jobs": 10, "per_seconds": 1.0}
    shown = client.put("/queues/emails", json={"concurrency": None}).json
    assert shown["concurrency"] is None and shown["rate_limit"] == {"jobs": 10, "per_seconds": 1.0}
    shown = client.put("/queues/emails", json={"rate_limit": None}).json
    assert shown["rate_limit"] is None
    # A queue with settings and no jobs exists too.
    assert [queue["name"] for queue in client.get("/queues").json["queues"]] == ["emails"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 100_001}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": "2"}, "concurrency"),
        ({"rate_limit": {"jobs": 0, "per_seconds": 1}}, "rate_limit"),
        ({"rate_limit": {"jobs": 10}}, "rate_limit"),
        ({"rate_limit": {"jobs": 10, "per_seconds": 0}}, "rate_limit"),
        ({"rate_limit": {"jobs": 10, "per_seconds": 86_401}}, "rate_limit"),
        ({"rate_limit": {"jobs": 10, "per_seconds": 1, "burst": 5}}, "rate_limit"),
        ({"rate_limit": 10}, "rate_limit"),
        ({"paused": True}, "paused"),
        ([], "_schema"),
    ],
)
def test_put_refuses_bad_settings_naming_the_field(client, body, field):
    response = client.put("/queues/emails", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.json["errors"]
    assert client.get("/queues/emails").status_code == 404  # nothing was stored


def test_a_bad_queue_name_to_set_is_422_naming_it(client):
    response = client.post("/queues/bad name!/pause")
    assert response.status_code == 422 and "name" in response.json["errors"]


def test_pause_and_resume_show_on_the_queue_and_enqueue_still_works(client):
    assert client.post("/queues/emails/pause").json["paused"] is True
    _post(client, "emails")
    shown = client.get("/queues/emails").json
    assert shown["paused"] is True and shown["counts"]["PENDING"] == 1
    assert client.post("/queues/emails/resume").json["paused"] is False


def test_changing_a_queue_needs_the_admin_scope_reading_it_read(client, app):
    reader = bearer(make_token(app, "reader", "read"))
    admin = bearer(make_token(app, "admin", "admin"))
    assert client.post("/queues/emails/pause", headers=reader).status_code == 403
    assert client.put("/queues/emails", json={"concurrency": 1}, headers=reader).status_code == 403
    assert client.post("/queues/emails/pause", headers=admin).status_code == 200
    assert client.get("/queues", headers=reader).status_code == 200
    assert client.get("/queues/emails", headers=reader).json["paused"] is True
