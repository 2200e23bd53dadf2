"""How an attempt ended, as the store records it: the outcome kinds and their named constructors.

Every outcome, in the worker or the store, is built by one of the functions below, and whether a
failure is final (the job fails) or retried is decided in one place, ``Failed.is_final``.
"""

from __future__ import annotations

import traceback as tracebacks
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..models import JobStatus

if TYPE_CHECKING:
    from .records import ClaimedJob, Lease

UNKNOWN_TYPE = "UnknownJobType"
NOT_STORED = "OutcomeNotStored"
LEASE_EXPIRED = "LeaseExpired"
TIMED_OUT = "JobTimeout"  # the name of the exception the worker raises in the handler's thread
TOO_LARGE = "ResultTooLarge"
TOO_DEEP = "ResultTooDeep"
CRASHED = "OutcomeError"  # building the outcome itself failed; the attempt still ends
PROCESS_DIED = "WorkerProcessDied"  # the child process running the handler died (processes pool)
TRUNCATED_MARK = "...(truncated)\n"
MESSAGE_CHARS_MAX = 2048  # an error message kept (and logged) is at most this long


@dataclass(frozen=True)
class Succeeded:
    """The handler returned ``result``."""

    lease: Lease
    result: Any
    result_json: str | None = None  # ``result`` as JSON text, when the caller has encoded it


@dataclass(frozen=True)
class Failed:
    """The attempt failed; ``permanent`` failures are not retried."""

    lease: Lease
    attempt: int
    max_attempts: int
    message: str
    error_type: str
    traceback: str | None = None
    permanent: bool = False

    @property
    def is_final(self) -> bool:
        """True if the job fails for good; False if it is scheduled for another attempt."""
        return self.permanent or self.attempt >= self.max_attempts


@dataclass(frozen=True)
class Released:
    """The worker gave the job back unfinished (shutdown); the attempt does not count."""

    lease: Lease


Outcome = Succeeded | Failed | Released


@dataclass(frozen=True)
class Rescued:
    """An expired lease the rescuer sent back through the retry rule."""

    job_id: int
    attempt: int
    status: JobStatus


def succeeded(job: ClaimedJob, result: Any, result_json: str | None = None) -> Succeeded:
    """The attempt of ``job`` returned ``result`` (``result_json``: it encoded as JSON)."""
    return Succeeded(job.lease, result, result_json)


def failed(
    job: ClaimedJob,
    exc: BaseException,
    *,
    permanent: bool,
    traceback_limit: int,
    with_traceback: bool = True,
) -> Failed:
    """The attempt of ``job`` raised ``exc``; keep at most ``traceback_limit`` of its trace.

    Total: an exception whose ``__str__`` or ``__repr__`` raises, or whose traceback cannot be
    formatted, still gives a bounded, storable message.
    """
    error_type = _type_name(exc)
    text = _text_of(exc, error_type)
    message = f"{error_type}: {text}" if text else error_type
    trace = _trace_of(exc) if with_traceback else None
    return Failed(
        lease=job.lease,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        message=_storable(_bounded_message(message)),
        error_type=_storable(error_type),
        traceback=_storable(_bounded(trace, traceback_limit)) if trace else None,
        permanent=permanent,
    )


def _attempt_failed(
    job: ClaimedJob, error_type: str, message: str, *, permanent: bool = False
) -> Failed:
    # The worker's own verdicts on an attempt: messages it wrote itself, short and storable.
    return Failed(
        lease=job.lease,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        message=message,
        error_type=error_type,
        permanent=permanent,
    )


def crashed(job: ClaimedJob, exc: BaseException) -> Failed:
    """Turning the attempt of ``job`` into an outcome raised ``exc``: retry it like a raise."""
    return _attempt_failed(
        job,
        CRASHED,
        f"{CRASHED}: the worker could not record the attempt's outcome ({_type_name(exc)})",
    )


def process_died(job: ClaimedJob, how: str) -> Failed:
    """The child process running ``job``'s handler died (``how``: its exit code or signal);
    retry it like a raise."""
    return _attempt_failed(
        job, PROCESS_DIED, f"{PROCESS_DIED}: the process running the handler {how}"
    )


def timed_out(job: ClaimedJob) -> Failed:
    """The attempt of ``job`` ran past its ``timeout_seconds``; it may be retried."""
    return _attempt_failed(
        job, TIMED_OUT, f"{TIMED_OUT}: the job ran past its timeout of {job.timeout_seconds}s"
    )


def not_json(job: ClaimedJob, exc: BaseException) -> Failed:
    """The attempt of ``job`` returned a result JSON cannot encode (``exc``): fail it for good."""
    return failed(
        job,
        TypeError(f"the handler's result is not JSON: {_text_of(exc, _type_name(exc))}"),
        permanent=True,
        traceback_limit=0,
        with_traceback=False,
    )


def too_large(job: ClaimedJob, size_bytes: int, limit_bytes: int) -> Failed:
    """The result of ``job``'s attempt encodes to more than ``limit_bytes``: fail it for good."""
    return _attempt_failed(
        job,
        TOO_LARGE,
        f"{TOO_LARGE}: the handler's result is {size_bytes} bytes of JSON, over "
        f"JOBSVC_MAX_RESULT_BYTES={limit_bytes}",
        permanent=True,
    )


def too_deep(job: ClaimedJob, limit_depth: int) -> Failed:
    """The result of ``job``'s attempt nests deeper than ``limit_depth``: fail it for good."""
    return _attempt_failed(
        job,
        TOO_DEEP,
        f"{TOO_DEEP}: the handler's result nests deeper than JOBSVC_MAX_JSON_DEPTH={limit_depth}",
        permanent=True,
    )


def unknown_type(job: ClaimedJob, known: Iterable[str]) -> Failed:
    """No handler is registered for ``job``'s type on this worker: fail it for good."""
    names = ", ".join(sorted(known)) or "none"
    return _attempt_failed(
        job,
        UNKNOWN_TYPE,
        f"no handler is registered for job type {job.type!r} (this worker knows: {names})",
        permanent=True,
    )


def released(job: ClaimedJob) -> Released:
    """The worker gives ``job`` back unfinished; the attempt will not count."""
    return Released(job.lease)


def not_stored(refused: Outcome, attempt: int, exc: BaseException) -> Failed:
    """The database refused ``refused`` (``exc``): fail the job for good in its place."""
    return Failed(
        lease=refused.lease,
        attempt=attempt,
        max_attempts=attempt,
        error_type=NOT_STORED,
        message=f"the database refused the attempt's outcome: {exc}",
        permanent=True,
    )


def is_not_stored(outcome: Outcome) -> bool:
    """True if ``outcome`` is the replacement ``not_stored`` built (it has no fallback)."""
    return isinstance(outcome, Failed) and outcome.error_type == NOT_STORED


def lease_expired(
    lease: Lease, *, attempt: int, max_attempts: int, locked_by: str | None
) -> Failed:
    """The worker ``locked_by`` stopped renewing ``lease``: the attempt counts as failed."""
    return Failed(
        lease=lease,
        attempt=attempt,
        max_attempts=max_attempts,
        message=f"lease expired: worker {locked_by} stopped heartbeating "
        "(it died, hung or lost the database)",
        error_type=LEASE_EXPIRED,
    )


def rescued(failure: Failed, status: JobStatus) -> Rescued:
    """The rescuer applied ``failure`` to its job, which is now ``status``."""
    return Rescued(failure.lease.job_id, failure.attempt, status)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else TRUNCATED_MARK + text[-limit:]


def _bounded_message(text: str) -> str:
    # The head of a message says what went wrong; its tail is usually repetition.
    if len(text) <= MESSAGE_CHARS_MAX:
        return text
    return text[:MESSAGE_CHARS_MAX] + TRUNCATED_MARK.rstrip("\n")


def _type_name(exc: BaseException) -> str:
    name = getattr(type(exc), "__name__", None)
    return name if type(name) is str else "Exception"


def _text_of(exc: BaseException, error_type: str) -> str:
    # A handler's exception may raise from __str__ (and __repr__): say so instead of failing.
    for render in (str, repr):
        try:
            text = render(exc)
        except Exception:  # noqa: S112 - any failure here means: try the next rendering
            continue
        if type(text) is str:
            return text
    return f"<{error_type} whose str() and repr() raise>"


def _trace_of(exc: BaseException) -> str | None:
    try:
        return "".join(tracebacks.format_exception(exc))
    except Exception:
        return None


def _storable(text: str) -> str:
    # PostgreSQL text holds neither NUL nor lone surrogates, and stderr cannot encode the
    # latter: escape both, so the job keeps its retry and its real message.
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
