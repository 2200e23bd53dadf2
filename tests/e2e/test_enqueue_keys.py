"""Idempotency keys and unique jobs against real API processes (waitress) and a real worker."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import requests

from jobsvc.client import Client
from tests.support.settings import slow_e2e_backends

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

RACERS = 32
JOB = {"type": "test.echo", "payload": {"n": 1}}


class LostFirstAnswer(httpx.HTTPTransport):
    """Delivers each request to the real server, but loses its first answer: the client sees a
    503 instead (as after a proxy's timeout), though the server did the work."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        self.statuses.append(response.status_code)
        if len(self.statuses) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"}, request=request)
        return response


def _all_jobs(base: str) -> list[dict]:
    return requests.get(f"{base}/jobs", params={"limit": 500}, timeout=10).json()["jobs"]


def test_racing_requests_through_two_api_processes_create_one_job(service):
    bases = [service.start_api(), service.start_api()]
    start = threading.Barrier(RACERS)

    def post(index: int) -> tuple[int, int]:
        start.wait()
        response = requests.post(
            f"{bases[index % 2]}/jobs", json=JOB, headers={"Idempotency-Key": "raced"}, timeout=120
        )
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(post, range(RACERS)))
    assert sorted(status for status, _ in answers) == [200] * (RACERS - 1) + [201]
    assert len({job_id for _, job_id in answers}) == 1
    assert len(_all_jobs(bases[0])) == 1


def test_the_clients_retry_after_a_lost_answer_replays_the_job(service):
    base = service.start_api()
    transport = LostFirstAnswer()
    with Client(base, transport=transport, max_retries=3) as client:
        created = client.enqueue("test.echo", {"n": 5})
    assert transport.statuses == [201, 200]  # the retry was answered by the replay
    assert [job["id"] for job in _all_jobs(base)] == [created["id"]]


def test_a_unique_job_is_enqueued_again_once_the_worker_finished_it(service):
    base = service.start_api()
    body = {"type": "test.echo", "unique_key": "nightly"}
    first = requests.post(f"{base}/jobs", json=body, timeout=10)
    again = requests.post(f"{base}/jobs", json=body, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["id"] == first.json()["id"]
    service.start_worker()
    (done,) = service.wait_terminal([first.json()["id"]])
    assert done["status"] == "DONE"
    after = requests.post(f"{base}/jobs", json=body, timeout=10)
    assert after.status_code == 201 and after.json()["id"] != first.json()["id"]


def test_the_client_retries_and_cancels_in_bulk_through_the_real_api(service):
    base = service.start_api()
    with Client(base) as client:
        ids = [job["id"] for job in client.enqueue_many([JOB, JOB, {**JOB, "queue": "other"}])]
        assert client.cancel_many(queue="default") == 2
        assert client.retry_many(ids=ids) == 2
        assert client.cancel_many(job_type="test.echo", status="PENDING") == 3
        assert {client.get(job_id)["status"] for job_id in ids} == {"CANCELLED"}
        unique = client.enqueue("test.echo", unique_key="one")
        assert client.enqueue("test.echo", unique_key="one")["duplicate"] is True
        assert unique["status"] == "PENDING"
