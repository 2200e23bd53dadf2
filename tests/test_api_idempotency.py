"""Idempotent enqueue: an Idempotency-Key (or a batch item's idempotency_key) creates one job."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import bindparam, create_engine, func, insert, select, text, update

from jobsvc.config import normalize_database_url
from jobsvc.models import IdempotencyKey, Job
from jobsvc.store.idempotency import EXPIRE_BATCH_KEYS
from jobsvc.timestamps import db_now_plus
from tests.support.tokens import bearer, make_token

JOB = {"type": "test.echo", "payload": {"order": 42}}
RACERS = 32


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def _count(app, table) -> int:
    engine = create_engine(normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"]))
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def _run_sql(app, statement) -> None:
    engine = create_engine(normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"]))
    try:
        with engine.begin() as connection:
            connection.execute(statement)
    finally:
        engine.dispose()


def test_the_same_key_and_request_answer_the_first_job_with_200_replayed(client, app):
    first = client.post("/jobs", json=JOB, headers=_key("order-42"))
    again = client.post("/jobs", json={"payload": {"order": 42}, **JOB}, headers=_key("order-42"))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == {"id": first.json["id"], "status": "PENDING", "replayed": True}
    assert again.headers["Location"].endswith(f"/jobs/{first.json['id']}")
    assert _count(app, Job.__table__) == 1


def test_the_same_key_with_another_request_is_409_naming_the_key(client, app):
    first = client.post("/jobs", json=JOB, headers=_key("order-42"))
    other = client.post("/jobs", json={**JOB, "priority": 5}, headers=_key("order-42"))
    assert other.status_code == 409
    assert other.mimetype == "application/problem+json"
    assert other.json["idempotency_key"] == "order-42"
    assert other.json["job_id"] == first.json["id"]
    assert "different request" in other.json["detail"]
    assert _count(app, Job.__table__) == 1


def test_a_new_key_creates_a_new_job(client):
    first = client.post("/jobs", json=JOB, headers=_key("a"))
    second = client.post("/jobs", json=JOB, headers=_key("b"))
    assert second.status_code == 201 and second.json["id"] != first.json["id"]


def test_keys_are_scoped_per_token(client, app):
    alice, bob = make_token(app, "alice"), make_token(app, "bob")
    by_alice = client.post("/jobs", json=JOB, headers={**_key("k"), **bearer(alice)})
    by_bob = client.post("/jobs", json=JOB, headers={**_key("k"), **bearer(bob)})
    again = client.post("/jobs", json=JOB, headers={**_key("k"), **bearer(alice)})
    assert by_alice.status_code == by_bob.status_code == 201
    assert by_alice.json["id"] != by_bob.json["id"]
    assert again.status_code == 200 and again.json["id"] == by_alice.json["id"]


def test_a_key_outlives_its_pruned_job(client, app):
    first = client.post("/jobs", json=JOB, headers=_key("kept"))
    _run_sql(app, text("DELETE FROM jobs"))
    again = client.post("/jobs", json=JOB, headers=_key("kept"))
    assert again.status_code == 200
    assert again.json == {"id": first.json["id"], "status": None, "replayed": True}
    assert _count(app, Job.__table__) == 0


def test_an_expired_key_creates_a_new_job(client, app):
    first = client.post("/jobs", json=JOB, headers=_key("old"))
    _age_keys(app, seconds=2 * 86_400)
    again = client.post("/jobs", json={**JOB, "priority": 1}, headers=_key("old"))
    assert again.status_code == 201 and again.json["id"] != first.json["id"]
    assert _count(app, IdempotencyKey.__table__) == 1


def _age_keys(app, seconds: float) -> None:
    # Moving created_at back in time stands for waiting JOBSVC_IDEMPOTENCY_SECONDS.
    _run_sql(app, update(IdempotencyKey).values(created_at=db_now_plus(bindparam("ago", -seconds))))


def test_each_keyed_enqueue_deletes_a_bounded_batch_of_expired_keys(client, app):
    rows = [
        {"scope": "open", "key": f"k{n}", "fingerprint": "0" * 64, "job_id": n}
        for n in range(EXPIRE_BATCH_KEYS + 20)
    ]
    _run_sql(app, insert(IdempotencyKey).values(rows))
    _age_keys(app, seconds=2 * 86_400)
    client.post("/jobs", json=JOB, headers=_key("fresh"))
    assert _count(app, IdempotencyKey.__table__) == 20 + 1
    client.post("/jobs", json=JOB, headers=_key("fresher"))
    assert _count(app, IdempotencyKey.__table__) == 2


def test_an_invalid_key_is_422_naming_the_header(client):
    response = client.post("/jobs", json=JOB, headers=_key("x" * 256))
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["errors"]


def test_racing_requests_with_one_key_create_exactly_one_job(app):
    start = threading.Barrier(RACERS)

    def post(_: int):
        client = app.test_client()
        start.wait()
        response = client.post("/jobs", json=JOB, headers=_key("raced"))
        return response.status_code, response.json["id"]

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(post, range(RACERS)))
    assert sorted(status for status, _ in answers) == [200] * (RACERS - 1) + [201]
    assert len({job_id for _, job_id in answers}) == 1
    assert _count(app, Job.__table__) == 1


def test_batch_items_carry_their_own_keys_and_replay_one_by_one(client, app):
    first = client.post(
        "/jobs/batch",
        json={"jobs": [{**JOB, "idempotency_key": "a"}, {**JOB, "idempotency_key": "b"}, JOB]},
    )
    assert first.status_code == 201
    ids = [job["id"] for job in first.json["jobs"]]
    again = client.post(
        "/jobs/batch",
        json={"jobs": [{**JOB, "idempotency_key": "b"}, {**JOB, "idempotency_key": "c"}]},
    )
    assert again.status_code == 201
    replayed, created = again.json["jobs"]
    assert replayed == {"id": ids[1], "status": "PENDING", "replayed": True}
    assert created["id"] not in ids and "replayed" not in created
    # A key and its job sent alone to POST /jobs are the same request.
    alone = client.post("/jobs", json=JOB, headers=_key("a"))
    assert alone.status_code == 200 and alone.json["id"] == ids[0]
    assert _count(app, Job.__table__) == 4


def test_a_batch_with_a_reused_key_stores_nothing(client, app):
    client.post("/jobs", json=JOB, headers=_key("taken"))
    response = client.post(
        "/jobs/batch",
        json={
            "jobs": [
                {**JOB, "idempotency_key": "new"},
                {**JOB, "priority": 9, "idempotency_key": "taken"},
            ]
        },
    )
    assert response.status_code == 409 and response.json["idempotency_key"] == "taken"
    assert _count(app, Job.__table__) == 1
    assert client.post("/jobs", json=JOB, headers=_key("new")).status_code == 201


def test_a_key_twice_in_one_batch_is_422_naming_the_item(client, app):
    response = client.post(
        "/jobs/batch",
        json={"jobs": [{**JOB, "idempotency_key": "k"}, {**JOB, "idempotency_key": "k"}]},
    )
    assert response.status_code == 422
    assert "Item 0" in response.json["errors"]["jobs"]["1"]["idempotency_key"][0]
    assert _count(app, Job.__table__) == 0
