"""The checker itself: each counter goes up when its invariant is broken."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobsvc.models import JobStatus
from jobsvc.store import ClaimedJob, JobStore, NewJob, Rescued, outcomes
from worker.events import Events
from worker.events import logger as events_logger
from worker.logs import JsonFormatter

from .invariants import FaultRecord, count, read_events

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _job(store: JobStore, engine: Engine, status: str, attempts: int = 1) -> int:
    (job_id,) = store.enqueue(
        [NewJob(type="t", payload={}, queue="default", priority=0, max_attempts=2)]
    )
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET status = :s, attempts = :a WHERE id = :id"),
            {"s": status, "a": attempts, "id": job_id},
        )
    return job_id


def _log(path: Path, *events: tuple[str, int, str, int, float, dict]) -> Path:
    with path.open("a") as out:
        for event, job_id, token, pid, t, extra in events:
            out.write(
                json.dumps(
                    {
                        "event": event,
                        "job_id": job_id,
                        "attempt": 1,
                        "token": token,
                        "pid": pid,
                        "t": t,
                        **extra,
                    }
                )
                + "\n"
            )
    return path


def test_clean_run_counts_nothing(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE")
    log = _log(
        tmp_path / "exec.jsonl",
        ("start", job_id, "a", 1, 1.0, {}),
        ("end", job_id, "a", 1, 2.0, {}),
    )
    counters = count(engine, [job_id], log, [], FaultRecord())
    counters.assert_clean()
    assert (counters.executions, counters.repeated) == (1, 0)


def test_unfinished_and_running_jobs_are_lost_and_stuck(job_store, engine, tmp_path):
    pending, running = _job(job_store, engine, "PENDING"), _job(job_store, engine, "RUNNING")
    counters = count(engine, [pending, running, 999], tmp_path / "none.jsonl", [], FaultRecord())
    assert (counters.lost, counters.stuck) == (3, 1)


def test_two_live_attempts_at_once_overlap(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE", attempts=2)
    log = _log(
        tmp_path / "exec.jsonl",
        ("start", job_id, "a", 1, 1.0, {}),
        ("start", job_id, "b", 2, 1.5, {}),
        ("end", job_id, "b", 2, 2.0, {}),
        ("end", job_id, "a", 1, 3.0, {}),
    )
    counters = count(engine, [job_id], log, [], FaultRecord())
    assert (counters.overlap, counters.unexplained) == (1, 1)


def test_rerun_after_the_first_worker_died_is_explained_and_not_overlap(
    job_store, engine, tmp_path
):
    job_id = _job(job_store, engine, "DONE", attempts=2)
    log = _log(
        tmp_path / "exec.jsonl",
        ("start", job_id, "a", 1, 1.0, {}),
        ("start", job_id, "b", 2, 5.0, {}),
        ("end", job_id, "b", 2, 6.0, {}),
    )
    counters = count(engine, [job_id], log, [], FaultRecord(died={1: 2.0}))
    counters.assert_clean()
    assert counters.repeated == 1


def _worker_log(path: Path, pid: int, write: Callable[[Events], None]) -> Path:
    """Write a worker log as a worker does under JOBSVC_LOG_FORMAT=json: started, then events."""
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    events_logger.addHandler(handler)
    level = events_logger.level
    events_logger.setLevel(logging.INFO)
    try:
        events = Events(f"host:{pid}:abcdef")
        events.started(None, 1, pid)
        write(events)
    finally:
        events_logger.setLevel(level)
        events_logger.removeHandler(handler)
        handler.close()
    return path


def _claimed(job_id: int, attempt: int) -> ClaimedJob:
    return ClaimedJob(job_id, "t", "default", {}, attempt, 2, None, "a")


def test_two_finish_events_for_one_job_are_a_double_finish(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE")

    def finish_twice(events: Events) -> None:
        for attempt in (1, 2):
            job = _claimed(job_id, attempt)
            events.recorded(job, outcomes.succeeded(job, None), 0.01, lost=False)

    worker_log = _worker_log(tmp_path / "worker0.log", 1, finish_twice)
    counters = count(engine, [job_id], tmp_path / "none.jsonl", [worker_log], FaultRecord())
    assert counters.double_finish == 1


LEASE_ENDS: dict[str, Callable[[Events, ClaimedJob], None]] = {
    "timed_out": lambda events, job: events.timed_out(job),
    "released": lambda events, job: events.released(job),
    "lease_lost": lambda events, job: events.lease_lost(job),
    "outcome_dropped": lambda events, job: events.recorded(
        job, outcomes.succeeded(job, None), 1.0, lost=True
    ),
}


@pytest.mark.parametrize("event", sorted(LEASE_ENDS))
def test_an_attempt_its_worker_gave_up_ends_its_lease_and_explains_the_rerun(
    job_store, engine, tmp_path, event
):
    job_id = _job(job_store, engine, "DONE", attempts=2)
    now = time.time()  # the event's time is the real clock's
    log = _log(
        tmp_path / "exec.jsonl",
        ("start", job_id, "a", 1, now - 10, {}),
        ("start", job_id, "b", 2, now + 5, {}),
        ("end", job_id, "b", 2, now + 6, {}),
    )
    unexplained = count(engine, [job_id], log, [], FaultRecord())
    assert (unexplained.overlap, unexplained.unexplained) == (1, 1)  # the first never ended
    worker_log = _worker_log(
        tmp_path / "worker0.log", 1, lambda events: LEASE_ENDS[event](events, _claimed(job_id, 1))
    )
    counters = count(engine, [job_id], log, [worker_log], FaultRecord())
    counters.assert_clean()
    assert counters.repeated == 1


def test_a_rescue_explains_a_rerun_but_does_not_end_the_lease(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE", attempts=2)
    now = time.time()
    log = _log(
        tmp_path / "exec.jsonl",
        ("start", job_id, "a", 1, now - 10, {}),
        ("start", job_id, "b", 2, now + 5, {}),
        ("end", job_id, "b", 2, now + 6, {}),
    )
    worker_log = _worker_log(
        tmp_path / "worker0.log",
        2,
        lambda events: events.rescued(Rescued(job_id, 1, JobStatus.PENDING)),
    )
    counters = count(engine, [job_id], log, [worker_log], FaultRecord())
    assert (counters.overlap, counters.unexplained) == (1, 0)


def test_lines_that_are_not_events_are_skipped_and_a_cut_last_line_too(backend, tmp_path):
    worker_log = _worker_log(
        tmp_path / "worker0.log", 1, lambda events: events.claimed(_claimed(7, 1))
    )
    content = worker_log.read_text()
    worker_log.write_text(
        "2026-01-01 00:00:00,000 WARNING worker.cli: database unavailable\n"
        + content
        + '{"event": "claimed", "job_'
    )
    assert [e["event"] for e in read_events(worker_log)] == ["started", "claimed"]
    assert read_events(worker_log)[1]["job_id"] == 7


def test_attempts_above_max_are_counted(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "FAILED", attempts=3)
    counters = count(engine, [job_id], tmp_path / "none.jsonl", [], FaultRecord())
    assert counters.attempts_exceeded == 1
