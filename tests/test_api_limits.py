"""Limits: a token bucket per API token (429) and an optional cap on waiting jobs (503)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobsvc import create_app
from jobsvc.api.limits import COUNT_CACHE_SECONDS, ReadyCap
from jobsvc.api.ratelimit import RateLimiter
from jobsvc.extensions import db
from tests.support.settings import FAST_SETTINGS
from tests.support.tokens import bearer as _bearer
from tests.support.tokens import make_token as _make_token

JOB = {"type": "test.echo", "payload": {}}


def _replace_state(app, **changes) -> None:
    app.extensions["jobsvc"] = replace(app.extensions["jobsvc"], **changes)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "burst", "steps", "expected"),
    [
        (1.0, 2, [0, 0, 0], [0, 0, 1]),
        (2.0, 1, [0, 0, 0.5, 0], [0, 1, 0, 1]),
        (0.1, 1, [0, 0], [0, 10]),
        (10.0, 3, [0, 0, 0, 0, 10], [0, 0, 0, 1, 0]),
        (0.0, 1, [0, 0, 0], [0, 0, 0]),  # 0 turns the limit off
    ],
)
def test_token_bucket_allows_the_burst_then_the_rate(rate, burst, steps, expected):
    clock = FakeClock()
    limiter = RateLimiter(rate, burst, clock=clock)
    waits = []
    for step in steps:
        clock.now += step
        waits.append(limiter.acquire("token"))
    assert waits == expected


def test_each_token_has_its_own_bucket():
    limiter = RateLimiter(1.0, 1, clock=FakeClock())
    assert limiter.acquire(1) == 0
    assert limiter.acquire(1) == 1
    assert limiter.acquire(2) == 0


def test_api_answers_429_with_retry_after_past_the_rate(client, app):
    clock = FakeClock()
    _replace_state(app, rate_limiter=RateLimiter(1.0, 2, clock=clock))
    busy, other = _make_token(app, "busy"), _make_token(app, "other")
    assert [client.get("/jobs", headers=_bearer(busy)).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/jobs", json=JOB, headers=_bearer(busy))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.mimetype == "application/problem+json"
    assert client.get("/jobs", headers=_bearer(other)).status_code == 200
    assert client.get("/jobs", headers=_bearer(other)).json["jobs"] == []  # 429 stored nothing
    clock.now += 1.0
    assert client.get("/jobs", headers=_bearer(busy)).status_code == 200


def test_rate_limit_comes_from_the_settings(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            **FAST_SETTINGS,
            "JOBSVC_RATE_LIMIT_PER_SECOND": 0.001,
            "JOBSVC_RATE_LIMIT_BURST": 3,
        }
    )
    try:
        token = _make_token(app)
        client = app.test_client()
        statuses = [client.get("/jobs", headers=_bearer(token)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert client.get("/health").status_code == 200  # never limited
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def capped(app):
    """Cap every queue at 2 waiting jobs, with a clock the test moves."""
    clock = FakeClock()
    _replace_state(app, ready_cap=ReadyCap(app.extensions["jobsvc"].services.jobs, 2, clock=clock))
    return clock


def test_a_full_queue_answers_503_with_retry_after_and_stores_nothing(client, capped):
    assert [client.post("/jobs", json=JOB).status_code for _ in range(2)] == [201, 201]
    full = client.post("/jobs", json=JOB)
    assert full.status_code == 503
    assert int(full.headers["Retry-After"]) >= 1
    assert full.json["queue"] == "default"
    assert len(client.get("/jobs").json["jobs"]) == 2
    assert client.post("/jobs", json={**JOB, "queue": "other"}).status_code == 201


def test_a_batch_into_a_full_queue_stores_none_of_its_jobs(client, capped):
    assert client.post("/jobs", json={**JOB, "queue": "mail"}).status_code == 201
    assert client.post("/jobs", json={**JOB, "queue": "mail"}).status_code == 201
    batch = {"jobs": [{**JOB, "queue": "sms"}, {**JOB, "queue": "mail"}]}
    assert client.post("/jobs/batch", json=batch).status_code == 503
    assert client.get("/jobs?queue=sms").json["jobs"] == []


def test_the_cap_counts_again_once_jobs_leave_pending(client, capped):
    ids = [client.post("/jobs", json=JOB).json["id"] for _ in range(2)]
    assert client.post("/jobs", json=JOB).status_code == 503
    client.post(f"/jobs/{ids[0]}/cancel")
    assert client.post("/jobs", json=JOB).status_code == 503  # the count is cached briefly
    capped.now += COUNT_CACHE_SECONDS
    assert client.post("/jobs", json=JOB).status_code == 201


def test_count_waiting_counts_pending_only_and_stops_at_the_bound(client, job_store):
    ids = [client.post("/jobs", json=JOB).json["id"] for _ in range(5)]
    client.post(f"/jobs/{ids[0]}/cancel")
    assert job_store.count_waiting("default", 100) == 4
    assert job_store.count_waiting("default", 3) == 3
    assert job_store.count_waiting("elsewhere", 3) == 0


def test_no_cap_by_default(client):
    assert all(client.post("/jobs", json=JOB).status_code == 201 for _ in range(5))
