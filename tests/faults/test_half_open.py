"""Scenario: a half-open connection. A worker in a network namespace reaches a private
PostgreSQL over a veth pair; the link is cut while the worker idles on its LISTEN connection
and polls on its pool: no FIN or RST ever arrives, the peer is silently gone. The keepalives
(idle + interval x count) and the TCP user timeout derived from them must report both
connections dead within that time, where the kernel alone would wait about 15 minutes for a
statement and forever on an idle LISTEN. Once the link is back, the same worker serves a new
job: it did not hang on a dead socket.

PostgreSQL only. Needs root and ``ip`` (see netns.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import Processes
from tests.support.waiting import wait_until

from .netns import Partitionable, VethPostgres
from .service import record

KEEPALIVE = {
    "JOBSVC_PG_KEEPALIVES_IDLE_SECONDS": "2",
    "JOBSVC_PG_KEEPALIVES_INTERVAL_SECONDS": "1",
    "JOBSVC_PG_KEEPALIVES_COUNT": "2",
    "JOBSVC_PG_CONNECT_TIMEOUT_SECONDS": "2",
    "JOBSVC_POLL_SECONDS": "0.5",
}
DEAD_AFTER_SECONDS = 2 + 1 * 2
SLACK_SECONDS = 10.0  # generous: a busy machine, the worker's retry pause, the log writer
LISTEN_LOST = "listen connection lost"
CLAIM_FAILED = "database unavailable"


def test_a_silently_vanished_database_is_detected_within_the_keepalive_time(
    network: Partitionable, veth_postgres: VethPostgres, tmp_path: Path
) -> None:
    service = Processes(veth_postgres.url, tmp_path)
    service.env.update(KEEPALIVE)
    worker: subprocess.Popen[bytes] | None = None
    try:
        service.start_api()  # on the host: it migrates the cluster
        argv = [sys.executable, "-m", "worker", "--queues", "*"]
        worker = service._spawn(network.command(argv), "worker-netns")
        first = service.post({"type": "test.echo", "payload": {"n": 1}})
        assert service.wait_terminal([first])[0]["status"] == "DONE"  # connected, listening

        network.cut()
        cut = time.monotonic()
        detected: dict[str, float] = {}

        def both_reported() -> bool:
            log = service.log("worker-netns")
            for words in (LISTEN_LOST, CLAIM_FAILED):
                if words in log and words not in detected:
                    detected[words] = time.monotonic() - cut
            return len(detected) == 2

        wait_until(
            both_reported,
            timeout=DEAD_AFTER_SECONDS + SLACK_SECONDS,
            interval=0.1,
            message=f"dead connections not reported: {detected}",
        )
        network.restore()
        second = service.post({"type": "test.echo", "payload": {"n": 2}})
        (job,) = service.wait_terminal([second], timeout=60)
        assert job["status"] == "DONE" and worker.poll() is None
        figures = {
            "dead_after_seconds": DEAD_AFTER_SECONDS,
            "listen_lost_after_seconds": round(detected[LISTEN_LOST], 1),
            "claim_failed_after_seconds": round(detected[CLAIM_FAILED], 1),
        }
        print("[faults] half-open[postgresql-private]:", figures)
        record("half-open[postgresql-private]", **figures)
        assert max(detected.values()) <= DEAD_AFTER_SECONDS + SLACK_SECONDS
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        service.stop_all()
