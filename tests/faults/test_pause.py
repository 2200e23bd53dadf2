"""Scenario 2: a worker is SIGSTOPped past its lease, then resumed; everything it writes late is
fenced out, and another worker finishes each job once."""

from __future__ import annotations

from sqlalchemy import func, select

from jobsvc.models import Job
from jobsvc.timestamps import db_now
from tests.support.settings import slow_e2e_backends

from .invariants import read_events
from .scenario import wait_for
from .service import FaultService, size

# Real worker processes; what differs by backend is the store, which the fast tests
# cover on both: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

JOBS = size(3, 12)
LEASE_SECONDS = 1.5
LEASE = {"JOBSVC_LEASE_SECONDS": str(LEASE_SECONDS), "JOBSVC_HEARTBEAT_SECONDS": "0.3"}
WORK_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 20


def _live_leases(faulty: FaultService) -> int:
    jobs = Job.__table__.c
    query = select(func.count()).where(jobs.status == "RUNNING", jobs.lease_expires_at > db_now())
    with faulty.engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_paused_worker_writes_nothing_after_resuming(faulty: FaultService) -> None:
    faulty.start_api()
    paused = faulty.start_worker("--concurrency", str(JOBS), **LEASE)
    ids = [
        faulty.post({"type": "test.work", "payload": {"seconds": WORK_SECONDS}, "max_attempts": 3})
        for _ in range(JOBS)
    ]
    wait_for(lambda: len([e for e in faulty.executions() if e["event"] == "start"]) == JOBS)
    faulty.pause(paused)
    wait_for(lambda: _live_leases(faulty) == 0)  # the paused worker's leases have all expired
    rescuer = faulty.start_worker("--concurrency", str(JOBS), **LEASE)
    wait_for(lambda: all(faulty.row(i)["status"] == "DONE" for i in ids), timeout=60)
    before = {i: faulty.row(i) for i in ids}

    faulty.resume(paused)
    log = faulty.log_of[paused.pid]

    def lost() -> dict[str, set[int]]:
        # Each paused attempt is given up once: its handler stopped by the self-fence (its lease
        # went unrenewed too long: self_fenced) or at the next heartbeat (lease_lost), or it
        # ended first and its outcome was fenced out (outcome_dropped).
        by_event: dict[str, set[int]] = {
            "self_fenced": set(),
            "lease_lost": set(),
            "outcome_dropped": set(),
        }
        for event in read_events(log):
            if event["event"] in by_event:
                by_event[event["event"]].add(event["job_id"])
        return by_event

    wait_for(lambda: set().union(*lost().values()) == set(ids), timeout=30)
    assert paused.poll() is None  # the resumed worker survived its lost leases
    # A clean exit flushes what it still held: every late write it could make has been made.
    faulty.terminate(paused)
    assert paused.wait(STOP_TIMEOUT_SECONDS) == 0

    assert {i: faulty.row(i) for i in ids} == before  # fencing: not one column changed
    for job_id in ids:
        row = before[job_id]
        assert row["attempts"] == 2
        assert row["locked_by"].split(":")[1] == str(rescuer.pid)
    given_up = lost()
    stopped = given_up["self_fenced"] | given_up["lease_lost"]
    assert not given_up["self_fenced"] & given_up["lease_lost"]  # each attempt once
    assert not stopped & given_up["outcome_dropped"]
    late_ends = {
        e["job_id"] for e in faulty.executions() if e["pid"] == paused.pid and e["event"] == "end"
    }
    assert given_up["outcome_dropped"] <= late_ends  # a dropped outcome came from an end
    faulty.check(
        "pause",
        late_outcomes_fenced=len(given_up["outcome_dropped"]),
        handlers_stopped=len(stopped),
    )
