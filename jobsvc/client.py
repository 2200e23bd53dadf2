"""A Python client for the jobsvc HTTP API, synchronous (``Client``) and asyncio (``AsyncClient``).

Error answers become typed exceptions carrying the problem+json body; 429 and 503 are retried
after their ``Retry-After``; ``enqueue`` sends an ``Idempotency-Key`` of its own and keeps it
across its retries, so a retried enqueue never creates a second job on a server that honours it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RETRIES = 3  # extra tries after a 429 or 503
RETRY_AFTER_MAX_SECONDS = 30.0  # a Retry-After longer than this is waited this long only
RETRY_AFTER_DEFAULT_SECONDS = 1.0  # when a 429 or 503 carries no usable Retry-After
WAIT_POLL_FIRST_SECONDS = 0.05
WAIT_POLL_MAX_SECONDS = 1.0
# One long-poll asks the server to hold its answer at most this long (the server's own limit,
# JOBSVC_MAX_WAIT_SECONDS, is 60 s by default); a longer wait is several of them.
WAIT_HOLD_MAX_SECONDS = 30.0
WAIT_HOLD_SLACK_SECONDS = 10.0  # the HTTP timeout of a long-poll: its hold plus this
RETRYABLE_STATUSES = frozenset({429, 503})
TERMINAL_STATUSES = frozenset({"DONE", "FAILED", "CANCELLED"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


class APIError(Exception):
    """The API answered with an error; ``problem`` is its problem+json body."""

    status: int = 0

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        super().__init__(f"{status}: {self.problem.get('detail') or self.problem.get('title')}")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail", ""))


class BadRequest(APIError):
    """The request was malformed (400), too large (413) or not JSON (415)."""


class Unauthorized(APIError):
    """No token, or an unknown or revoked one (401)."""


class Forbidden(APIError):
    """The token lacks the scope this call needs (403)."""


class NotFound(APIError):
    """No such job (404)."""


class Conflict(APIError):
    """The job's state does not allow this, or an idempotency key was reused (409)."""


class ValidationFailed(APIError):
    """A field is missing, of the wrong type or out of range (422); ``errors`` says which."""

    @property
    def errors(self) -> dict[str, Any]:
        return dict(self.problem.get("errors") or {})


class RateLimited(APIError):
    """The token sent too many requests (429), still after the client's retries."""


class Unavailable(APIError):
    """The database does not answer or the queue is full (503), still after the retries."""


_ERRORS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: BadRequest,
    415: BadRequest,
    422: ValidationFailed,
    429: RateLimited,
    503: Unavailable,
}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)[:500]}
    raise _ERRORS.get(response.status_code, APIError)(response.status_code, problem)


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        seconds = RETRY_AFTER_DEFAULT_SECONDS
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


@dataclass(frozen=True)
class Request:
    """One API call, built once and sent again unchanged on a retry."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None  # None: the client's own


@dataclass(frozen=True)
class Pause:
    """Wait this long before the next step."""

    seconds: float


# An operation is a generator that yields what to do (send a Request, or Pause) and is sent the
# response of each Request; it returns its result. Client and AsyncClient only do the I/O, so
# the protocol (retries, idempotency, waiting, paging) is written once for both.
Step = Request | Pause
Operation = Generator[Step, httpx.Response | None, Any]


def call(request: Request, max_retries: int) -> Operation:
    """Send ``request``, again after Retry-After on 429 or 503; return its JSON body."""
    for attempt in range(max_retries + 1):
        response = yield request
        if response is None:
            raise RuntimeError("a Request step must be answered with its response")
        if response.status_code in RETRYABLE_STATUSES and attempt < max_retries:
            yield Pause(_retry_after(response))
            continue
        _raise_for(response)
        return response.json()
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def job_body(
    job_type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    queue: str | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    run_at: datetime | str | None = None,
    unique_key: str | None = None,
    depends_on: Iterable[int] | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Return the JSON body that enqueues one job; options left None take the server's default.

    ``depends_on``: ids of jobs that must end DONE first (the job waits, PENDING, until then).
    """
    body: dict[str, Any] = {"type": job_type, "payload": dict(payload or {})}
    options = {
        "queue": queue,
        "priority": priority,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "run_at": run_at.isoformat() if isinstance(run_at, datetime) else run_at,
        "unique_key": unique_key,
        "depends_on": None if depends_on is None else list(depends_on),
        "callback_url": callback_url,
    }
    body.update((name, value) for name, value in options.items() if value is not None)
    return body


def enqueue(body: dict[str, Any], idempotency_key: str | None, max_retries: int) -> Operation:
    """Enqueue one job under an idempotency key kept across retries."""
    key = idempotency_key or uuid.uuid4().hex
    return (
        yield from call(
            Request("POST", "/jobs", json=body, headers={IDEMPOTENCY_HEADER: key}), max_retries
        )
    )


def wait(job_id: int, timeout: float, max_retries: int) -> Operation:
    """Read the job until it is terminal or ``timeout`` seconds passed; return its last state.

    Each read is a long-poll (``?wait=``): the server answers as soon as the job ends, or after
    what is left of the timeout (at most ``WAIT_HOLD_MAX_SECONDS`` per read). A server that
    refuses that hold (a lower JOBSVC_MAX_WAIT_SECONDS) or answers at once is polled with a
    backoff instead.
    """
    deadline = time.monotonic() + timeout
    pause = WAIT_POLL_FIRST_SECONDS
    hold_max = WAIT_HOLD_MAX_SECONDS
    while True:
        left = deadline - time.monotonic()
        hold = round(max(0.0, min(left, hold_max)), 3)
        started = time.monotonic()
        request = Request(
            "GET",
            f"/jobs/{int(job_id)}",
            params={"wait": hold} if hold else None,
            timeout=(hold + WAIT_HOLD_SLACK_SECONDS) if hold else None,
        )
        try:
            job = yield from call(request, max_retries)
        except ValidationFailed as exc:
            if "wait" not in exc.errors or not hold:
                raise
            hold_max = 0.0  # this server will not hold this long: poll
            continue
        if job["status"] in TERMINAL_STATUSES or deadline - time.monotonic() <= 0:
            return job
        if time.monotonic() - started < hold / 2:  # answered early, yet not ended: no long-poll
            yield Pause(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, WAIT_POLL_MAX_SECONDS)


def bulk(action: str, selection: dict[str, Any], max_retries: int) -> Operation:
    """Call ``POST /jobs/<action>`` until no more jobs match; return how many it changed."""
    if "job_type" in selection:
        selection["type"] = selection.pop("job_type")
    body = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in selection.items()
        if value is not None
    }
    changed = 0
    while True:
        answer = yield from call(Request("POST", f"/jobs/{action}", json=body), max_retries)
        changed += answer["count"]
        # A batch that changed nothing while more match would loop: the filter's jobs changed
        # state under it (another caller); stop and report.
        if not answer["more"] or answer["count"] == 0:
            return changed


def first_page(filters: Mapping[str, Any], page_size: int) -> Request:
    """Return the request for the first page of ``GET /jobs``."""
    params = {name: value for name, value in filters.items() if value is not None}
    params["limit"] = page_size
    return Request("GET", "/jobs", params=params)


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class Client:
    """A synchronous client: ``Client("http://127.0.0.1:8000", token=...)``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _run(self, operation: Operation) -> Any:
        response = None
        try:
            while True:
                step = operation.send(response)
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                    response = None
                else:
                    response = self._http.request(
                        step.method,
                        step.path,
                        json=step.json,
                        params=step.params,
                        headers=step.headers,
                        timeout=step.timeout or httpx.USE_CLIENT_DEFAULT,
                    )
        except StopIteration as done:
            return done.value

    def _call(self, method: str, path: str, **options: Any) -> Any:
        return self._run(call(Request(method, path, **options), self.max_retries))

    def enqueue(
        self,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Enqueue one job; return ``{"id", "status"}``."""
        return self._run(
            enqueue(job_body(job_type, payload, **options), idempotency_key, self.max_retries)
        )

    def enqueue_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Enqueue job bodies (see ``job_body``) in one transaction: all of them or none."""
        return self._call("POST", "/jobs/batch", json={"jobs": [dict(j) for j in jobs]})["jobs"]

    def get(self, job_id: int) -> dict[str, Any]:
        """Return the job with ``job_id``."""
        return self._call("GET", f"/jobs/{int(job_id)}")

    def wait(self, job_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """Return the job once it is terminal, or its current state after ``timeout`` seconds
        (long-polling ``GET /jobs/{id}?wait=``: answered within milliseconds of its end)."""
        return self._run(wait(job_id, timeout, self.max_retries))

    def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a PENDING or RUNNING job."""
        return self._call("POST", f"/jobs/{int(job_id)}/cancel")

    def cancel_many(self, **selection: Any) -> int:
        """Cancel every PENDING or RUNNING job selected (ids=[...], status, queue, job_type,
        created_after, created_before), 10,000 a call; return how many were cancelled."""
        return self._run(bulk("cancel", selection, self.max_retries))

    def retry_many(self, **selection: Any) -> int:
        """Retry every FAILED or CANCELLED job selected (as ``cancel_many``); return how many."""
        return self._run(bulk("retry", selection, self.max_retries))

    def retry(self, job_id: int) -> dict[str, Any]:
        """Send a FAILED or CANCELLED job back to PENDING."""
        return self._call("POST", f"/jobs/{int(job_id)}/retry")

    def list(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Yield jobs newest first across every page (filters: status, queue, type)."""
        request: Request | None = first_page(filters, page_size)
        while request is not None:
            page = self._run(call(request, self.max_retries))
            yield from page["jobs"]
            request = Request("GET", page["next"]) if page.get("next") else None


class AsyncClient:
    """The asyncio twin of ``Client``: the same methods, as coroutines."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _run(self, operation: Operation) -> Any:
        response = None
        try:
            while True:
                step = operation.send(response)
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                    response = None
                else:
                    response = await self._http.request(
                        step.method,
                        step.path,
                        json=step.json,
                        params=step.params,
                        headers=step.headers,
                        timeout=step.timeout or httpx.USE_CLIENT_DEFAULT,
                    )
        except StopIteration as done:
            return done.value

    async def _call(self, method: str, path: str, **options: Any) -> Any:
        return await self._run(call(Request(method, path, **options), self.max_retries))

    async def enqueue(
        self,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Enqueue one job; return ``{"id", "status"}``."""
        return await self._run(
            enqueue(job_body(job_type, payload, **options), idempotency_key, self.max_retries)
        )

    async def enqueue_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Enqueue job bodies in one transaction: all of them or none."""
        body = {"jobs": [dict(j) for j in jobs]}
        return (await self._call("POST", "/jobs/batch", json=body))["jobs"]

    async def get(self, job_id: int) -> dict[str, Any]:
        """Return the job with ``job_id``."""
        return await self._call("GET", f"/jobs/{int(job_id)}")

    async def wait(self, job_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """Return the job once it is terminal, or its current state after ``timeout`` seconds
        (long-polling ``GET /jobs/{id}?wait=``: answered within milliseconds of its end)."""
        return await self._run(wait(job_id, timeout, self.max_retries))

    async def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a PENDING or RUNNING job."""
        return await self._call("POST", f"/jobs/{int(job_id)}/cancel")

    async def cancel_many(self, **selection: Any) -> int:
        """Cancel every PENDING or RUNNING job selected; return how many were cancelled."""
        return await self._run(bulk("cancel", selection, self.max_retries))

    async def retry_many(self, **selection: Any) -> int:
        """Retry every FAILED or CANCELLED job selected; return how many were retried."""
        return await self._run(bulk("retry", selection, self.max_retries))

    async def retry(self, job_id: int) -> dict[str, Any]:
        """Send a FAILED or CANCELLED job back to PENDING."""
        return await self._call("POST", f"/jobs/{int(job_id)}/retry")

    async def list(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Yield jobs newest first across every page (filters: status, queue, type)."""
        request: Request | None = first_page(filters, page_size)
        while request is not None:
            page = await self._run(call(request, self.max_retries))
            for job in page["jobs"]:
                yield job
            request = Request("GET", page["next"]) if page.get("next") else None
