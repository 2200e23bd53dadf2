"""Outcome kinds and their constructors: one rule decides whether a failure is final."""

from __future__ import annotations

import logging

import pytest

from jobsvc.models import JobStatus
from jobsvc.store import ClaimedJob, Failed, Lease, NewJob, outcomes
from worker.events import Events

# (permanent, attempt, max_attempts) -> the job fails for good
FINAL_RULE = [
    (False, 1, 3, False),
    (False, 2, 3, False),
    (False, 3, 3, True),
    (False, 4, 3, True),  # a rescued attempt past its budget
    (True, 1, 3, True),
    (True, 1, 1, True),
    (False, 1, 1, True),
]


def _job(attempt: int = 1, max_attempts: int = 3, **fields) -> ClaimedJob:
    return ClaimedJob(
        **{
            "id": 7,
            "type": "t",
            "queue": "q",
            "payload": {"secret": "s3cr3t"},
            "attempt": attempt,
            "max_attempts": max_attempts,
            "timeout_seconds": 2.5,
            "lease_token": "tok",
            **fields,
        }
    )


@pytest.mark.parametrize(("permanent", "attempt", "max_attempts", "final"), FINAL_RULE)
def test_a_failure_is_final_when_permanent_or_out_of_attempts(
    permanent, attempt, max_attempts, final
):
    failure = outcomes.failed(
        _job(attempt, max_attempts), RuntimeError("boom"), permanent=permanent, traceback_limit=100
    )
    assert failure.is_final is final


@pytest.mark.parametrize(("permanent", "attempt", "max_attempts", "final"), FINAL_RULE)
def test_the_store_and_the_worker_events_apply_the_same_rule(
    job_store, lease_store, caplog, permanent, attempt, max_attempts, final
):
    (job_id,) = job_store.enqueue(
        [NewJob(type="t", payload={}, queue="default", priority=0, max_attempts=max_attempts)]
    )
    (job,) = lease_store.claim(None, 1, "w", 30)
    failure = Failed(
        job.lease, attempt, max_attempts, "RuntimeError: boom", "RuntimeError", permanent=permanent
    )
    assert lease_store.finish([failure]) == []
    caplog.set_level(logging.INFO, logger="worker.events")
    Events("w").recorded(job, failure, 0.1, lost=False)
    (record,) = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    status = job_store.get(job_id).status
    assert status is (JobStatus.FAILED if final else JobStatus.PENDING)
    assert record.event == ("failed" if final else "retry_scheduled")


def test_failed_keeps_the_end_of_a_long_traceback():
    def deep(n: int) -> None:
        if n:
            deep(n - 1)
        raise ValueError("deep down")

    try:
        deep(50)
    except ValueError as exc:
        failure = outcomes.failed(_job(), exc, permanent=False, traceback_limit=200)
    assert failure.message == "ValueError: deep down" and failure.error_type == "ValueError"
    assert failure.traceback.startswith("...(truncated)\n")
    assert failure.traceback.endswith("ValueError: deep down\n")
    assert len(failure.traceback) == len("...(truncated)\n") + 200


def test_an_exception_without_a_message_is_named_by_its_type():
    failure = outcomes.failed(
        _job(), KeyError(), permanent=True, traceback_limit=10, with_traceback=False
    )
    assert (failure.message, failure.traceback, failure.permanent) == ("KeyError", None, True)


@pytest.mark.parametrize(
    ("outcome", "error_type", "message", "final"),
    [
        (
            outcomes.timed_out(_job()),
            "JobTimeout",
            "JobTimeout: the job ran past its timeout of 2.5s",
            False,
        ),
        (
            outcomes.unknown_type(_job(type="x.y"), ["b", "a"]),
            "UnknownJobType",
            "no handler is registered for job type 'x.y' (this worker knows: a, b)",
            True,
        ),
        (
            outcomes.unknown_type(_job(), []),
            "UnknownJobType",
            "no handler is registered for job type 't' (this worker knows: none)",
            True,
        ),
        (
            outcomes.not_json(_job(), TypeError("set is not serializable")),
            "TypeError",
            "TypeError: the handler's result is not JSON: set is not serializable",
            True,
        ),
        (
            outcomes.not_stored(outcomes.succeeded(_job(attempt=2), "r"), 2, ValueError("too big")),
            "OutcomeNotStored",
            "the database refused the attempt's outcome: too big",
            True,
        ),
        (
            outcomes.too_large(_job(), 2_000_000, 1_048_576),
            "ResultTooLarge",
            "ResultTooLarge: the handler's result is 2000000 bytes of JSON, "
            "over JOBSVC_MAX_RESULT_BYTES=1048576",
            True,
        ),
        (
            outcomes.too_deep(_job(), 32),
            "ResultTooDeep",
            "ResultTooDeep: the handler's result nests deeper than JOBSVC_MAX_JSON_DEPTH=32",
            True,
        ),
        (
            outcomes.crashed(_job(), MemoryError()),
            "OutcomeError",
            "OutcomeError: the worker could not record the attempt's outcome (MemoryError)",
            False,
        ),
        (
            outcomes.lease_expired(Lease(7, "tok"), attempt=1, max_attempts=3, locked_by="h:1:a"),
            "LeaseExpired",
            "lease expired: worker h:1:a stopped heartbeating (it died, hung or lost the database)",
            False,
        ),
    ],
)
def test_each_named_failure_says_what_happened(outcome, error_type, message, final):
    assert (outcome.error_type, outcome.message, outcome.is_final) == (error_type, message, final)
    assert outcome.lease == Lease(7, "tok")


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _ReprOnly(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "_ReprOnly(7)"


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (_Unprintable(), "_Unprintable: <_Unprintable whose str() and repr() raise>"),
        (_ReprOnly(), "_ReprOnly: _ReprOnly(7)"),
        (ValueError("bad \udcff text"), "ValueError: bad \\udcff text"),
        (ValueError("nul \x00 byte"), "ValueError: nul \\x00 byte"),
        (ValueError("x" * 5000), "ValueError: " + "x" * 2036 + "...(truncated)"),
    ],
)
def test_failed_is_total_bounded_and_storable(exc, message):
    try:
        raise exc
    except Exception as raised:
        failure = outcomes.failed(_job(), raised, permanent=False, traceback_limit=100)
    assert failure.message == message
    assert not failure.is_final
    assert failure.traceback is not None and len(failure.traceback) <= 100 + 20
    failure.traceback.encode("utf-8")  # storable and printable


def test_only_the_replacement_for_a_refused_outcome_is_not_stored():
    refused = outcomes.succeeded(_job(), "r")
    assert outcomes.is_not_stored(outcomes.not_stored(refused, 1, ValueError("no")))
    assert not outcomes.is_not_stored(refused)
    assert not outcomes.is_not_stored(outcomes.timed_out(_job()))


def test_outcomes_are_still_importable_from_the_records_module():
    from jobsvc.store import records

    assert records.Failed is outcomes.Failed and records.Succeeded is outcomes.Succeeded
    assert records.Released is outcomes.Released and records.Rescued is outcomes.Rescued
