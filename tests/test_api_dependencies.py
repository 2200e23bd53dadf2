"""depends_on through the API: waiting children, what frees them, what cancels them, the 422s."""

from __future__ import annotations

from jobsvc.store import Failed, Succeeded
from tests.support.waiting import wait_until

ECHO = {"type": "test.echo"}
LEASE_SECONDS = 30.0


def _post(client, **fields) -> int:
    response = client.post("/jobs", json={**ECHO, **fields})
    assert response.status_code == 201, response.json
    return response.json["id"]


def _job(client, job_id: int) -> dict:
    return client.get(f"/jobs/{job_id}").json


def _claim_all(lease_store, lease: float = LEASE_SECONDS):
    return lease_store.claim(None, 100, "test-worker", lease)


def _fail_for_good(lease_store, claimed) -> None:
    lost = lease_store.finish(
        [
            Failed(job.lease, job.attempt, job.attempt, "ValueError: boom", "ValueError")
            for job in claimed
        ]
    )
    assert lost == []


def test_a_child_waits_pending_until_its_parents_are_done(client, lease_store):
    first, second = _post(client), _post(client)
    child = _post(client, depends_on=[second, first, second])  # repeats collapse
    shown = _job(client, child)
    assert shown["status"] == "PENDING"
    assert shown["waiting_on"] == [first, second]
    assert _job(client, first)["waiting_on"] == []

    claimed = _claim_all(lease_store)
    assert sorted(job.id for job in claimed) == [first, second]  # never the child
    assert lease_store.finish([Succeeded(claimed[0].lease, None)]) == []
    assert _job(client, child)["waiting_on"] == [claimed[1].id]
    assert _claim_all(lease_store) == []
    assert lease_store.finish([Succeeded(claimed[1].lease, None)]) == []
    assert _job(client, child)["waiting_on"] == []
    assert [job.id for job in _claim_all(lease_store)] == [child]


def test_a_parent_done_before_the_enqueue_does_not_block(client, lease_store):
    parent = _post(client)
    (claimed,) = _claim_all(lease_store)
    assert lease_store.finish([Succeeded(claimed.lease, None)]) == []
    child = _post(client, depends_on=[parent])
    assert _job(client, child)["waiting_on"] == []
    assert [job.id for job in _claim_all(lease_store)] == [child]


def test_a_failed_parent_cancels_its_dependents_transitively_naming_it(client, lease_store):
    parent = _post(client, max_attempts=1)
    child = _post(client, depends_on=[parent])
    grandchild = _post(client, depends_on=[child])
    bystander = _post(client)
    _fail_for_good(lease_store, [job for job in _claim_all(lease_store) if job.id == parent])
    for job_id in (child, grandchild):
        shown = _job(client, job_id)
        assert shown["status"] == "CANCELLED", shown
        assert shown["error_type"] == "DependencyFailed"
        assert shown["last_error"] == f"cancelled: job {parent}, which it depends on, ended FAILED"
        assert shown["waiting_on"] == []
    assert _job(client, bystander)["status"] == "RUNNING"  # claimed beside the parent, untouched


def test_a_retried_failure_does_not_cancel_dependents(client, lease_store):
    parent = _post(client, max_attempts=2)
    child = _post(client, depends_on=[parent])
    (claimed,) = [job for job in _claim_all(lease_store) if job.id == parent]
    lease_store.finish([Failed(claimed.lease, 1, 2, "ValueError: once", "ValueError")])
    assert _job(client, child)["status"] == "PENDING"
    assert _job(client, child)["waiting_on"] == [parent]


def test_cancelling_a_pending_parent_cancels_its_dependents(client):
    parent = _post(client)
    child = _post(client, depends_on=[parent])
    assert client.post(f"/jobs/{parent}/cancel").status_code == 200
    shown = _job(client, child)
    assert shown["status"] == "CANCELLED"
    assert shown["last_error"] == f"cancelled: job {parent}, which it depends on, ended CANCELLED"


def test_an_exhausted_expired_lease_cancels_dependents(client, lease_store):
    parent = _post(client, max_attempts=1)
    child = _post(client, depends_on=[parent])
    claimed = _claim_all(lease_store, lease=0.01)
    assert [job.id for job in claimed] == [parent]

    wait_until(lease_store.rescue_expired, timeout=10, message="the lease did not expire")
    assert _job(client, parent)["status"] == "FAILED"
    shown = _job(client, child)
    assert shown["status"] == "CANCELLED"
    assert f"job {parent}" in shown["last_error"]


def test_retrying_a_child_waits_again_once_its_parent_is_retried(client, lease_store):
    parent = _post(client, max_attempts=1)
    child = _post(client, depends_on=[parent])
    _fail_for_good(lease_store, _claim_all(lease_store))
    refused = client.post(f"/jobs/{child}/retry")
    assert refused.status_code == 409
    assert f"job {parent}" in refused.json["detail"]
    assert client.post(f"/jobs/{parent}/retry").status_code == 200
    retried = client.post(f"/jobs/{child}/retry")
    assert retried.status_code == 200
    assert retried.json["waiting_on"] == [parent]
    assert [job.id for job in _claim_all(lease_store)] == [parent]


def test_unknown_parents_are_422_naming_the_field_and_the_ids(client):
    parent = _post(client)
    response = client.post("/jobs", json={**ECHO, "depends_on": [parent, 777, 778]})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"] == {"depends_on": ["No job has id 777, 778."]}


def test_a_parent_already_failed_is_422(client, lease_store):
    parent = _post(client, max_attempts=1)
    _fail_for_good(lease_store, _claim_all(lease_store))
    response = client.post("/jobs", json={**ECHO, "depends_on": [parent]})
    assert response.status_code == 422
    (message,) = response.json["errors"]["depends_on"]
    assert f"Job {parent} ended FAILED" in message


BAD_DEPENDS_ON = [list(range(1, 102)), [1] * 101, [0], [-1], ["1"], [1.0], [True], 5, "1", [2**63]]


def test_bad_depends_on_is_422_naming_it(client):
    # One app for the table: each value is checked before the store is asked anything.
    for depends_on in BAD_DEPENDS_ON:
        response = client.post("/jobs", json={**ECHO, "depends_on": depends_on})
        assert response.status_code == 422, (depends_on, response.json)
        assert "depends_on" in response.json["errors"], depends_on
    too_many = client.post("/jobs", json={**ECHO, "depends_on": list(range(1, 102))})
    assert too_many.json["errors"] == {"depends_on": ["Holds 101 ids; the limit is 100."]}


def test_a_hundred_parents_are_accepted(client):
    parents = client.post("/jobs/batch", json={"jobs": [ECHO] * 100}).json["jobs"]
    child = _post(client, depends_on=[job["id"] for job in parents])
    assert len(_job(client, child)["waiting_on"]) == 100


def test_batch_items_are_refused_by_index_and_nothing_is_stored(client):
    parent = _post(client)
    body = {"jobs": [{**ECHO, "depends_on": [parent]}, {**ECHO, "depends_on": [999]}]}
    response = client.post("/jobs/batch", json=body)
    assert response.status_code == 422
    assert response.json["errors"] == {"jobs": {"1": {"depends_on": ["No job has id 999."]}}}
    assert [job["id"] for job in client.get("/jobs").json["jobs"]] == [parent]


def test_batch_items_may_depend_on_stored_jobs(client, lease_store):
    parent = _post(client)
    body = {"jobs": [{**ECHO, "depends_on": [parent]}, ECHO]}
    child, free = (job["id"] for job in client.post("/jobs/batch", json=body).json["jobs"])
    assert _job(client, child)["waiting_on"] == [parent]
    assert sorted(job.id for job in _claim_all(lease_store)) == [parent, free]


def test_listing_shows_what_each_job_waits_on(client):
    parent = _post(client)
    child = _post(client, depends_on=[parent])
    listed = {job["id"]: job["waiting_on"] for job in client.get("/jobs").json["jobs"]}
    assert listed == {parent: [], child: [parent]}
