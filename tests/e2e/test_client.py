"""The Python client against the real API under waitress and a real worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import pytest

from jobsvc.client import (
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
    job_body,
)
from tests.support.processes import REPO
from tests.support.settings import slow_e2e_backends


class RecordingTransport(httpx.HTTPTransport):
    """The real HTTP transport, remembering each request's headers and each answer's status."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[httpx.Headers, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.exchanges.append((request.headers, response.status_code))
        return response


def _create_token(service, scopes: str) -> str:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "jobsvc",
            "jobs",
            "token",
            "create",
            "--name",
            f"client-{scopes.replace(',', '-')}",
            "--scopes",
            scopes,
        ],
        cwd=REPO,
        env=service.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def test_enqueue_then_wait_returns_the_finished_job_with_its_result(service):
    base = service.start_api()
    service.start_worker()
    with Client(base) as client:
        created = client.enqueue("test.echo", {"n": 7}, queue="default", priority=3)
        assert created["status"] == "PENDING"
        job = client.wait(created["id"], timeout=30)
    assert job["status"] == "DONE"
    assert job["result"]["echo"] == {"n": 7}
    assert job["priority"] == 3


def test_wait_long_polls_until_the_end_or_its_timeout(service):
    base = service.start_api()
    service.start_worker()
    transport = RecordingTransport()
    with Client(base, transport=transport) as client:
        slow = client.enqueue("test.sleep", {"seconds": 1.0})
        job = client.wait(slow["id"], timeout=30)
        assert job["status"] == "DONE"
        # One long-poll answered at the job's end, not a poll every few milliseconds.
        assert len(transport.exchanges) <= 3
        later = client.enqueue("test.echo", run_at="2999-01-01T00:00:00+00:00")
        started = time.monotonic()
        assert client.wait(later["id"], timeout=0.5)["status"] == "PENDING"
        assert time.monotonic() - started >= 0.5


def test_errors_become_typed_exceptions_carrying_the_problem(service):
    base = service.start_api()
    with Client(base) as client:
        with pytest.raises(ValidationFailed) as invalid:
            client.enqueue("test.echo", priority=10**9)
        assert "priority" in invalid.value.errors
        with pytest.raises(NotFound):
            client.get(987654)
        pending = client.enqueue("test.echo")
        with pytest.raises(Conflict) as conflict:
            client.retry(pending["id"])
        assert conflict.value.problem["job_status"] == "PENDING"
        assert client.cancel(pending["id"])["status"] == "CANCELLED"
        assert client.retry(pending["id"])["status"] == "PENDING"


def test_a_client_without_the_token_is_refused_and_one_with_it_served(service):
    token = _create_token(service, "enqueue,read")
    base = service.start_api()
    with Client(base) as anonymous, pytest.raises(Unauthorized) as refused:
        next(anonymous.list())
    assert "token" in refused.value.detail.lower()
    with Client(base, token=token) as client:
        created = client.enqueue("test.echo")
        assert client.get(created["id"])["status"] == "PENDING"


def test_list_iterates_over_every_page_newest_first(service):
    base = service.start_api()
    with Client(base) as client:
        ids = [
            job["id"]
            for job in client.enqueue_many(
                [job_body("test.echo", {"i": i}, queue="listed") for i in range(7)]
            )
        ]
        listed = [job["id"] for job in client.list(queue="listed", page_size=3)]
    assert listed == sorted(ids, reverse=True)


@slow_e2e_backends("sqlite")  # one backend in `make test`, both at full size
def test_a_rate_limited_enqueue_is_retried_after_retry_after_with_the_same_key(service):
    service.env["JOBSVC_RATE_LIMIT_PER_SECOND"] = "1"
    service.env["JOBSVC_RATE_LIMIT_BURST"] = "1"
    base = service.start_api()
    token = _create_token(service, "enqueue,read")
    transport = RecordingTransport()
    with Client(base, token=token, transport=transport, max_retries=5) as client:
        first = client.enqueue("test.echo", {"n": 1})
        second = client.enqueue("test.echo", {"n": 2})  # the bucket is empty: 429, then 201
    statuses = [status for _, status in transport.exchanges]
    assert statuses[0] == 201 and statuses[-1] == 201 and 429 in statuses
    retried_keys = {headers["Idempotency-Key"] for headers, _ in transport.exchanges[1:]}
    assert len(retried_keys) == 1  # every retry of the second enqueue carried one key
    assert transport.exchanges[0][0]["Idempotency-Key"] not in retried_keys
    assert second["id"] == first["id"] + 1


@slow_e2e_backends("sqlite")  # one backend in `make test`, both at full size
def test_a_client_out_of_retries_raises_rate_limited(service):
    service.env["JOBSVC_RATE_LIMIT_PER_SECOND"] = "0.01"
    service.env["JOBSVC_RATE_LIMIT_BURST"] = "1"
    base = service.start_api()
    token = _create_token(service, "read")
    with Client(base, token=token, max_retries=0) as client:
        with pytest.raises(RateLimited) as limited:
            for _ in range(3):
                list(client.list())
    assert limited.value.status == 429


def test_the_async_client_has_the_same_methods(service):
    base = service.start_api()
    service.start_worker()

    async def scenario() -> tuple[dict, list[int], dict]:
        async with AsyncClient(base) as client:
            created = await client.enqueue("test.echo", {"n": 5})
            done = await client.wait(created["id"], timeout=30)
            batch = await client.enqueue_many(
                [job_body("test.sleep", {"seconds": 30}, queue="slow")]
            )
            cancelled = await client.cancel(batch[0]["id"])
            listed = [job["id"] async for job in client.list(page_size=1)]
            return done, listed, cancelled

    done, listed, cancelled = asyncio.run(scenario())
    assert done["status"] == "DONE" and done["result"]["echo"] == {"n": 5}
    assert cancelled["status"] == "CANCELLED"
    assert listed == sorted(listed, reverse=True) and len(listed) == 2
