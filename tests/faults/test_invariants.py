"""The checker itself: each counter goes up when its invariant is broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobsvc.store import JobStore, NewJob

from .invariants import FaultRecord, count

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _job(store: JobStore, engine: Engine, status: str, attempts: int = 1) -> int:
    (job_id,) = store.enqueue([NewJob(type="t", payload={}, queue="default", priority=0,
                                      max_attempts=2)])
    with engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET status = :s, attempts = :a WHERE id = :id"),
                           {"s": status, "a": attempts, "id": job_id})
    return job_id


def _log(path: Path, *events: tuple[str, int, str, int, float, dict]) -> Path:
    with path.open("a") as out:
        for event, job_id, token, pid, t, extra in events:
            out.write(json.dumps({"event": event, "job_id": job_id, "attempt": 1, "token": token,
                                  "pid": pid, "t": t, **extra}) + "\n")
    return path


def test_clean_run_counts_nothing(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE")
    log = _log(tmp_path / "exec.jsonl", ("start", job_id, "a", 1, 1.0, {}),
               ("end", job_id, "a", 1, 2.0, {}))
    counters = count(engine, [job_id], log, [], FaultRecord())
    counters.assert_clean()
    assert (counters.executions, counters.repeated) == (1, 0)


def test_unfinished_and_running_jobs_are_lost_and_stuck(job_store, engine, tmp_path):
    pending, running = _job(job_store, engine, "PENDING"), _job(job_store, engine, "RUNNING")
    counters = count(engine, [pending, running, 999], tmp_path / "none.jsonl", [], FaultRecord())
    assert (counters.lost, counters.stuck) == (3, 1)


def test_two_live_attempts_at_once_overlap(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE", attempts=2)
    log = _log(tmp_path / "exec.jsonl", ("start", job_id, "a", 1, 1.0, {}),
               ("start", job_id, "b", 2, 1.5, {}), ("end", job_id, "b", 2, 2.0, {}),
               ("end", job_id, "a", 1, 3.0, {}))
    counters = count(engine, [job_id], log, [], FaultRecord())
    assert (counters.overlap, counters.unexplained) == (1, 1)


def test_rerun_after_the_first_worker_died_is_explained_and_not_overlap(job_store, engine,
                                                                        tmp_path):
    job_id = _job(job_store, engine, "DONE", attempts=2)
    log = _log(tmp_path / "exec.jsonl", ("start", job_id, "a", 1, 1.0, {}),
               ("start", job_id, "b", 2, 5.0, {}), ("end", job_id, "b", 2, 6.0, {}))
    counters = count(engine, [job_id], log, [], FaultRecord(died={1: 2.0}))
    counters.assert_clean()
    assert counters.repeated == 1


def test_two_finish_lines_for_one_job_are_a_double_finish(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "DONE")
    worker_log = tmp_path / "worker0.log"
    worker_log.write_text(f"t INFO worker.completer: done job_id={job_id} type=t attempt=1\n"
                          f"t INFO worker.completer: done job_id={job_id} type=t attempt=2\n")
    counters = count(engine, [job_id], tmp_path / "none.jsonl", [worker_log], FaultRecord())
    assert counters.double_finish == 1


def test_attempts_above_max_are_counted(job_store, engine, tmp_path):
    job_id = _job(job_store, engine, "FAILED", attempts=3)
    counters = count(engine, [job_id], tmp_path / "none.jsonl", [], FaultRecord())
    assert counters.attempts_exceeded == 1
