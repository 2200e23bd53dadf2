"""A real ``python -m worker`` process: its JSON log, the first and the second SIGTERM."""

from __future__ import annotations

import json
import signal

from jobsvc.models import JobStatus
from jobsvc.store import NewJob
from tests.support.processes import Processes
from tests.support.waiting import wait_until

EXIT_SECONDS = 10.0


def _events(log) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_a_second_sigterm_exits_at_once_without_waiting_for_the_grace_period(
    app, job_store, tmp_path
):
    (job_id,) = job_store.enqueue(
        [
            NewJob(
                type="test.sleep",
                payload={"seconds": 60},
                queue="default",
                priority=0,
                max_attempts=3,
            )
        ]
    )
    processes = Processes(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path)
    worker = processes.start_worker(JOBSVC_LOG_FORMAT="json", JOBSVC_SHUTDOWN_GRACE_SECONDS="60")
    log = tmp_path / "worker0.log"
    try:
        wait_until(lambda: job_store.get(job_id).status is JobStatus.RUNNING, timeout=30)
        worker.send_signal(signal.SIGTERM)
        wait_until(
            lambda: any("draining 1 running jobs" in e["message"] for e in _events(log)), timeout=30
        )
        assert worker.poll() is None  # draining: the job has 60 s to finish
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(EXIT_SECONDS) == 1
    finally:
        processes.stop_all()
    events = _events(log)
    assert [e["event"] for e in events if "event" in e] == ["started", "claimed"]
    assert events[-1]["message"].startswith("second signal: exiting now")
    assert job_store.get(job_id).status is JobStatus.RUNNING  # its lease will expire
