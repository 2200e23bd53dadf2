"""Scenario: a network partition. A worker runs in a network namespace of its own, reaching a
private PostgreSQL cluster over a veth pair; its link is cut while its handlers run. It cannot
renew its leases, so it must stop its handlers before they expire: when a worker on the host
rescues the jobs, no first attempt may still be running. Counted from the handlers' own start
and end records, never from the workers' logs.

PostgreSQL only: SQLite serves one host and has no network to lose. Needs root and ``ip``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support.processes import Processes
from tests.support.waiting import wait_until

from .netns import Partitionable, VethPostgres
from .service import record, size

JOBS = size(4, 16)
WORK_SECONDS = size(6.0, 8.0)  # longer than the lease: the partitioned attempt must be stopped
LEASE = {"JOBSVC_LEASE_SECONDS": "2", "JOBSVC_HEARTBEAT_SECONDS": "0.4"}
HANDLERS = "tests.handlers,tests.cancel_handlers"
SETTLE_SECONDS = 60.0


Run = tuple[float, float, int, str]  # start, end (inf: never ended), pid, how it ended


def _attempts(executions: list[dict]) -> dict[int, list[Run]]:
    """Per job, each attempt's run, from the handler's own start and end records."""
    ends = {(e["job_id"], e["token"]): e for e in executions if e["event"] == "end"}
    attempts: dict[int, list[Run]] = {}
    for e in executions:
        if e["event"] == "start":
            end = ends.get((e["job_id"], e["token"]), {"t": float("inf"), "how": "running"})
            attempts.setdefault(e["job_id"], []).append((e["t"], end["t"], e["pid"], end["how"]))
    return attempts


def _overlaps(runs: list[Run]) -> int:
    runs = sorted(runs)
    return sum(1 for a, b in zip(runs, runs[1:], strict=False) if b[0] < a[1])


def test_a_partitioned_worker_stops_its_handlers_before_they_are_rescued(
    network: Partitionable, veth_postgres: VethPostgres, tmp_path: Path
) -> None:
    service = Processes(veth_postgres.url, tmp_path)
    service.env.update({"JOBSVC_HANDLERS": HANDLERS, **LEASE})
    partitioned: subprocess.Popen[bytes] | None = None
    try:
        service.start_api()
        argv = [sys.executable, "-m", "worker", "--queues", "*", "--concurrency", str(JOBS)]
        partitioned = service._spawn(network.command(argv), "worker-partitioned")
        body = {"type": "cancel.stubborn", "payload": {"seconds": WORK_SECONDS}}
        ids = [service.post({**body, "max_attempts": 3}) for _ in range(JOBS)]

        def all_started_in_the_namespace() -> bool:
            pids = {e["job_id"]: e["pid"] for e in service.executions() if e["event"] == "start"}
            return set(pids) == set(ids) and set(pids.values()) == {partitioned.pid}

        wait_until(all_started_in_the_namespace, message="the partitioned worker did not start")
        network.cut()
        service.start_worker("--concurrency", str(JOBS))  # on the host: rescues once leases expire
        jobs = service.wait_terminal(ids, timeout=SETTLE_SECONDS)
        attempts = _attempts(service.executions())
        first = [runs for runs in attempts.values() if runs and runs[0][2] == partitioned.pid]
        fenced = sum(1 for runs in first if runs[0][3] == "LeaseUnrenewed")
        overlapping = sum(_overlaps(runs) for runs in attempts.values())
        lost = sum(1 for job in jobs if job["status"] != "DONE")
        rescued = sum(1 for job in jobs if job["attempts"] == 2)
        counters = {
            "jobs": JOBS,
            "fenced": fenced,
            "rescued": rescued,
            "overlapping": overlapping,
            "lost": lost,
        }
        print("[faults] partition[postgresql-private]:", counters)
        record("partition[postgresql-private]", **counters)
        assert (overlapping, lost) == (0, 0), counters
        assert fenced == rescued == JOBS, counters
    finally:
        if partitioned is not None and partitioned.poll() is None:
            partitioned.send_signal(signal.SIGKILL)  # its writes can never arrive: no drain
            partitioned.wait()
        service.stop_all()
