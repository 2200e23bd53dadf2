"""Unique jobs: while a job holding a unique_key is active, enqueueing it again answers that job."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from jobsvc.store import outcomes

JOB = {"type": "test.echo", "unique_key": "report:2026-12"}
RACERS = 32
WORKER = "unique-test"


def test_a_pending_job_answers_an_enqueue_with_its_key_as_a_duplicate(client):
    first = client.post("/jobs", json=JOB)
    again = client.post("/jobs", json={**JOB, "payload": {"other": True}})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json == {"id": first.json["id"], "status": "PENDING", "duplicate": True}
    assert client.get(f"/jobs/{first.json['id']}").json["unique_key"] == JOB["unique_key"]
    assert len(client.get("/jobs").json["jobs"]) == 1


def test_a_running_job_holds_its_key_and_a_finished_one_frees_it(client, lease_store):
    first = client.post("/jobs", json=JOB).json["id"]
    (claimed,) = lease_store.claim(None, 1, WORKER, 30)
    running = client.post("/jobs", json=JOB)
    assert running.status_code == 200
    assert running.json == {"id": first, "status": "RUNNING", "duplicate": True}
    lease_store.finish([outcomes.succeeded(claimed, {"ok": True})])
    after = client.post("/jobs", json=JOB)
    assert after.status_code == 201 and after.json["id"] != first


def test_a_cancelled_job_frees_its_key(client):
    first = client.post("/jobs", json=JOB).json["id"]
    client.post(f"/jobs/{first}/cancel")
    assert client.post("/jobs", json=JOB).status_code == 201


def test_jobs_without_a_key_or_with_other_keys_are_all_created(client):
    ids = {client.post("/jobs", json={"type": "test.echo"}).json["id"] for _ in range(3)}
    ids |= {client.post("/jobs", json={**JOB, "unique_key": f"k{n}"}).json["id"] for n in range(3)}
    assert len(ids) == 6


def test_a_batch_stores_one_job_per_active_key(client):
    existing = client.post("/jobs", json=JOB).json["id"]
    response = client.post(
        "/jobs/batch",
        json={
            "jobs": [
                {"type": "test.echo"},
                JOB,
                {**JOB, "unique_key": "new"},
                {**JOB, "unique_key": "new"},
                {"type": "test.echo"},
            ]
        },
    )
    assert response.status_code == 201
    plain, dup_existing, new, dup_new, plain2 = response.json["jobs"]
    assert dup_existing == {"id": existing, "status": "PENDING", "duplicate": True}
    assert dup_new == {"id": new["id"], "status": "PENDING", "duplicate": True}
    assert "duplicate" not in new and "duplicate" not in plain
    assert plain["id"] < new["id"] < plain2["id"]
    assert len(client.get("/jobs").json["jobs"]) == 4


def test_racing_enqueues_with_one_key_store_one_job(app):
    start = threading.Barrier(RACERS)

    def post(_: int):
        client = app.test_client()
        start.wait()
        response = client.post("/jobs", json=JOB)
        return response.status_code, response.json["id"]

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(post, range(RACERS)))
    assert sorted(status for status, _ in answers) == [200] * (RACERS - 1) + [201]
    assert len({job_id for _, job_id in answers}) == 1
    assert len(app.test_client().get("/jobs").json["jobs"]) == 1


def test_racing_batches_with_overlapping_keys_store_one_job_per_key(app):
    start = threading.Barrier(8)
    keys = [f"key-{n}" for n in range(50)]

    def post(offset: int):
        client = app.test_client()
        mine = keys[offset:] + keys[:offset]  # the same keys, each racer in its own order
        start.wait()
        response = client.post(
            "/jobs/batch", json={"jobs": [{**JOB, "unique_key": key} for key in mine]}
        )
        assert response.status_code in (200, 201), response.json
        return dict(zip(mine, (job["id"] for job in response.json["jobs"]), strict=True))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert all(answer == answers[0] for answer in answers)
    assert len(app.test_client().get("/jobs").json["jobs"]) == len(keys)


def test_a_unique_job_may_wait_on_parents_and_its_duplicate_adds_no_edges(client, lease_store):
    parent, other = (client.post("/jobs", json={"type": "test.echo"}).json["id"] for _ in "ab")
    first = client.post("/jobs", json={**JOB, "depends_on": [parent]})
    assert first.status_code == 201
    child = first.json["id"]
    # Another parent on the duplicate does not touch the job that holds the key.
    again = client.post("/jobs", json={**JOB, "depends_on": [other]})
    assert again.status_code == 200
    assert again.json == {"id": child, "status": "PENDING", "duplicate": True}
    assert client.get(f"/jobs/{child}").json["waiting_on"] == [parent]
    claimed = {job.id: job for job in lease_store.claim(None, 10, WORKER, 30)}
    assert set(claimed) == {parent, other}  # the child waits
    lease_store.finish([outcomes.succeeded(claimed[parent], None)])
    assert client.get(f"/jobs/{child}").json["waiting_on"] == []
    assert [job.id for job in lease_store.claim(None, 10, WORKER, 30)] == [child]


def test_a_batch_mixes_unique_jobs_and_dependencies(client):
    parent = client.post("/jobs", json={"type": "test.echo"}).json["id"]
    items = [
        {"type": "test.echo", "depends_on": [parent]},
        {**JOB, "depends_on": [parent]},
        {**JOB, "depends_on": [parent]},
        {"type": "test.echo", "unique_key": "plain"},
    ]
    response = client.post("/jobs/batch", json={"jobs": items})
    assert response.status_code == 201, response.json
    waiting, keyed, dup, plain = response.json["jobs"]
    assert dup == {"id": keyed["id"], "status": "PENDING", "duplicate": True}
    shown = {j: client.get(f"/jobs/{j}").json for j in (waiting["id"], keyed["id"], plain["id"])}
    assert shown[waiting["id"]]["waiting_on"] == [parent]
    assert shown[keyed["id"]]["waiting_on"] == [parent]
    assert shown[plain["id"]]["waiting_on"] == []


def test_a_unique_job_with_a_failed_parent_is_refused_and_holds_no_key(client, lease_store):
    parent = client.post("/jobs", json={"type": "test.echo", "max_attempts": 1}).json["id"]
    (claimed,) = lease_store.claim(None, 1, WORKER, 30)
    lease_store.finish([outcomes.Failed(claimed.lease, 1, 1, "ValueError: x", "ValueError")])
    refused = client.post("/jobs", json={**JOB, "depends_on": [parent]})
    assert refused.status_code == 422 and "depends_on" in refused.json["errors"]
    assert client.post("/jobs", json=JOB).status_code == 201  # the key was never taken
