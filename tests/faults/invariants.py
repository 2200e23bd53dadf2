"""The counters every fault scenario reports, computed from the database and the execution log.

- lost: an accepted job (a 201 the client saw) that is missing or not terminal once settled.
- stuck: a job left RUNNING.
- overlap: two attempts of one job that ran at the same time while both leases were live. An
  attempt's lease is taken as live from its start until it ended, its process died, or its
  process was paused (a paused worker cannot renew its lease; what it does after it resumes is
  fenced, which the pause scenario checks from the database).
- double_finish: a job whose final outcome (done, or failed for good) was written more than once,
  counted from the workers' own ``succeeded`` / ``failed`` events.
- attempts_exceeded: a job or a logged attempt above its max_attempts.
- repeated / unexplained: executions after a job's first, and those among them whose previous
  attempt neither failed on purpose, nor ran in a killed, paused or stopped worker, nor was timed
  out, released or fenced out (as the worker's events say). A timed-out or released attempt's
  lease ends when its worker says so (the event's time: the same machine's clock).

The workers run with ``JOBSVC_LOG_FORMAT=json``: their logs are read as events (one JSON object
per line, see ``worker/events.py``), never by their wording.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

TERMINAL = {"DONE", "FAILED", "CANCELLED"}
LOG_FORMAT_ENV = {"JOBSVC_LOG_FORMAT": "json"}  # how the scenarios' workers write their logs
FINISH_EVENTS = {"succeeded", "failed"}  # the job's final outcome was written
# A worker's own word that an attempt's lease ended early (at the event's time)...
LEASE_END_EVENTS = {
    "timed_out",
    "released",
    "lease_lost",
    "self_fenced",
    "outcome_dropped",
    "process_died",  # --pool processes: the child running the attempt died
}
# ...and, with the rescues, what explains that a job ran again.
EXPLAINING_EVENTS = LEASE_END_EVENTS | {"rescued"}


@dataclass
class FaultRecord:
    """What the test did to which worker process, with wall-clock times (time.time())."""

    died: dict[int, float] = field(default_factory=dict)  # pid -> when it was seen dead
    paused: dict[int, float] = field(default_factory=dict)  # pid -> when it was first stopped
    stopped: set[int] = field(default_factory=set)  # pids sent SIGTERM


@dataclass(frozen=True)
class Attempt:
    """One execution of a job, as the handler logged it."""

    job_id: int
    token: str
    attempt: int
    pid: int
    start: float
    end: float | None
    failed: bool
    stopped: bool


@dataclass
class Counters:
    """The invariants' counters; every one but ``accepted``, ``executions`` and ``repeated``
    must be 0."""

    accepted: int = 0
    executions: int = 0
    lost: int = 0
    stuck: int = 0
    overlap: int = 0
    double_finish: int = 0
    attempts_exceeded: int = 0
    repeated: int = 0
    unexplained: int = 0
    examples: dict[str, list[int]] = field(default_factory=dict)

    def line(self, scenario: str) -> str:
        values = {k: v for k, v in asdict(self).items() if k != "examples"}
        return f"[faults] {scenario}: " + " ".join(f"{k}={v}" for k, v in values.items())

    def assert_clean(self) -> None:
        bad = {
            k: v
            for k, v in asdict(self).items()
            if k not in {"accepted", "executions", "repeated", "examples"} and v
        }
        assert not bad, f"invariants broken: {bad}; examples: {self.examples}"


def read_attempts(exec_log: Path) -> list[Attempt]:
    """Pair the log's start and end lines by (job id, lease token): one claim leases several
    jobs under one token, and the pair names exactly one attempt."""
    if not exec_log.exists():
        return []
    starts: dict[tuple[int, str], dict[str, Any]] = {}
    ends: dict[tuple[int, str], dict[str, Any]] = {}
    for line in exec_log.read_text().splitlines():
        event = json.loads(line)
        key = (event["job_id"], event["token"])
        (starts if event["event"] == "start" else ends)[key] = event
    return [
        Attempt(
            job_id=s["job_id"],
            token=key[1],
            attempt=s["attempt"],
            pid=_worker_pid(s),
            start=s["t"],
            end=ends[key]["t"] if key in ends else None,
            failed=bool(ends.get(key, {}).get("failed")),
            stopped=bool(ends.get(key, {}).get("stopped")),
        )
        for key, s in starts.items()
    ]


def _worker_pid(record: dict[str, Any]) -> int:
    # The worker's pid (its id is host:pid:suffix), not the handler's: under --pool processes
    # a handler runs in a child, while deaths, pauses and lease ends are the worker's.
    parts = str(record.get("worker", "")).split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else record["pid"]


def read_events(log: Path) -> list[dict[str, Any]]:
    """Return a worker log's events, in order.

    Lines that are not JSON objects come before the worker set up its JSON log (start-up) or are
    a dying interpreter's own output; they carry no event. Only a log's last line may be cut
    short (a worker killed mid-write); any other line that does not parse is a checker error.
    """
    lines = log.read_text(errors="replace").splitlines()
    events = []
    for number, line in enumerate(lines, 1):
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise
        if "event" in record:
            events.append(record)
    return events


def _event_ids(logs: dict[Path, list[dict[str, Any]]], names: set[str]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for events in logs.values():
        for event in events:
            if event["event"] in names:
                counts[event["job_id"]] += 1
    return counts


LeaseEnds = dict[tuple[int, int, int], float]  # (pid, job id, attempt) -> when


def lease_ends(logs: dict[Path, list[dict[str, Any]]]) -> LeaseEnds:
    """Return when each worker said it gave up an attempt (timed out, released, lease lost)."""
    ends: LeaseEnds = {}
    for events in logs.values():
        pid = next((e["pid"] for e in events if e["event"] == "started"), None)
        if pid is None:
            continue
        for event in events:
            if event["event"] in LEASE_END_EVENTS:
                when = datetime.fromisoformat(event["time"]).timestamp()
                key = (pid, event["job_id"], event["attempt"])
                ends[key] = min(ends.get(key, math.inf), when)
    return ends


def _live_until(attempt: Attempt, faults: FaultRecord, ends: LeaseEnds) -> float:
    return min(
        attempt.end if attempt.end is not None else math.inf,
        faults.died.get(attempt.pid, math.inf),
        faults.paused.get(attempt.pid, math.inf),
        ends.get((attempt.pid, attempt.job_id, attempt.attempt), math.inf),
    )


def _overlaps(attempts: list[Attempt], faults: FaultRecord, ends: LeaseEnds) -> bool:
    ordered = sorted(attempts, key=lambda a: a.start)
    return any(
        later.start < _live_until(earlier, faults, ends)
        for i, earlier in enumerate(ordered)
        for later in ordered[i + 1 :]
    )


def _explained(attempt: Attempt, faults: FaultRecord, explained_ids: dict[int, int]) -> bool:
    return (
        attempt.failed
        or attempt.stopped
        or attempt.pid in faults.died
        or attempt.pid in faults.paused
        or attempt.pid in faults.stopped
        or attempt.job_id in explained_ids
    )


def job_rows(engine: Engine) -> dict[int, Any]:
    """Return every job's id, status, attempts and max_attempts."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, status, attempts, max_attempts FROM jobs"))
        return {row.id: row for row in rows}


def count(
    engine: Engine,
    accepted: Iterable[int],
    exec_log: Path,
    worker_logs: Iterable[Path],
    faults: FaultRecord,
) -> Counters:
    """Compute the counters for jobs ``accepted`` once the system has settled."""
    accepted = list(accepted)
    rows = job_rows(engine)
    attempts = read_attempts(exec_log)
    logs = {path: read_events(path) for path in worker_logs}
    finishes = _event_ids(logs, FINISH_EVENTS)
    explained_ids = _event_ids(logs, EXPLAINING_EVENTS)
    by_job: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_job[attempt.job_id].append(attempt)

    examples: dict[str, list[int]] = defaultdict(list)
    lost = [i for i in accepted if i not in rows or rows[i].status not in TERMINAL]
    stuck = [i for i, row in rows.items() if row.status == "RUNNING"]
    ends = lease_ends(logs)
    overlap = [i for i, runs in by_job.items() if _overlaps(runs, faults, ends)]
    double = [i for i, n in finishes.items() if n > 1]
    exceeded = sorted(
        {i for i, row in rows.items() if row.attempts > row.max_attempts}
        | {
            a.job_id
            for a in attempts
            if a.job_id in rows and a.attempt > rows[a.job_id].max_attempts
        }
    )
    repeated, unexplained = 0, []
    for job_id, runs in by_job.items():
        ordered = sorted(runs, key=lambda a: a.start)
        repeated += len(ordered) - 1
        unexplained += [
            job_id for earlier in ordered[:-1] if not _explained(earlier, faults, explained_ids)
        ]
    for name, ids in (
        ("lost", lost),
        ("stuck", stuck),
        ("overlap", overlap),
        ("double_finish", double),
        ("attempts_exceeded", exceeded),
        ("unexplained", unexplained),
    ):
        if ids:
            examples[name] = sorted(ids)[:10]
    return Counters(
        accepted=len(accepted),
        executions=len(attempts),
        lost=len(lost),
        stuck=len(stuck),
        overlap=len(overlap),
        double_finish=len(double),
        attempts_exceeded=len(exceeded),
        repeated=repeated,
        unexplained=len(unexplained),
        examples=dict(examples),
    )
