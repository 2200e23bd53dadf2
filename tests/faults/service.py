"""The fault-injection harness: real API and worker processes, faults done to them, counters after.

Small sizes run by default; ``JOBSVC_FAULTS_SCALE=full`` runs the full-size scenarios.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.support.processes import Processes
from tests.support.waiting import poll_until

from .invariants import LOG_FORMAT_ENV, TERMINAL, Counters, FaultRecord, count

SCALE_ENV = "JOBSVC_FAULTS_SCALE"
REPORT_ENV = "JOBSVC_FAULTS_REPORT"  # a file the counters are appended to, one JSON per line
FULL = os.environ.get(SCALE_ENV, "small") == "full"
BATCH_JOBS_MAX = 1000  # the API's default JOBSVC_MAX_BATCH_JOBS
SUPERVISE_EVERY_SECONDS = 0.05
SETTLE_POLL_SECONDS = 0.1


def size(small: Any, full: Any) -> Any:
    """Return the small value, or the full one under JOBSVC_FAULTS_SCALE=full."""
    return full if FULL else small


def record(scenario: str, **values: Any) -> None:
    """Append a scenario's figures to the JOBSVC_FAULTS_REPORT file, if one is named."""
    report = os.environ.get(REPORT_ENV)
    if report:
        with open(report, "a") as out:
            line = {"scenario": scenario, "scale": size("small", "full"), **values}
            out.write(json.dumps(line) + "\n")


class FaultService(Processes):
    """The service's processes, plus the faults done to them and what the client was told."""

    def __init__(self, database_url: str, tmp_path: Path, backend: str) -> None:
        super().__init__(database_url, tmp_path)
        self.backend = backend
        self.faults = FaultRecord()
        self.accepted: list[int] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.log_of: dict[int, Path] = {}
        self._worker_args: dict[int, tuple[tuple[str, ...], dict[str, str]]] = {}
        self._supervisor: threading.Thread | None = None
        self._supervising = threading.Event()
        self._lock = threading.Lock()
        self.engine: Engine = create_engine(database_url)

    # -- processes ---------------------------------------------------------------------

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start a worker that writes its log as JSON events (the checker reads those)."""
        env = {**LOG_FORMAT_ENV, **env}
        log = self.tmp_path / f"worker{len(self.children)}.log"  # how Processes names it
        child = super().start_worker(*args, **env)
        with self._lock:
            self.log_of[child.pid] = log
            self.workers.append(child)
            self._worker_args[child.pid] = (args, env)
        return child

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return [child for child in self.workers if child.poll() is None]

    def kill(self, child: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``child`` and note when it was dead."""
        child.send_signal(signal.SIGKILL)
        child.wait()
        self._note_death(child)

    def _note_death(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self.faults.died.setdefault(child.pid, time.time())

    def pause(self, child: subprocess.Popen[bytes]) -> None:
        self.faults.paused.setdefault(child.pid, time.time())
        child.send_signal(signal.SIGSTOP)

    def resume(self, child: subprocess.Popen[bytes]) -> None:
        child.send_signal(signal.SIGCONT)

    def terminate(self, child: subprocess.Popen[bytes]) -> None:
        self.faults.stopped.add(child.pid)
        child.send_signal(signal.SIGTERM)

    def supervise(self) -> None:
        """Restart, in the background, any worker that dies (with its arguments)."""
        self._supervising.set()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        while self._supervising.is_set():
            with self._lock:
                dead = [c for c in self.workers if c.poll() is not None and c.returncode < 0]
                for child in dead:
                    self.workers.remove(child)
            for child in dead:
                self._note_death(child)
                args, env = self._worker_args[child.pid]
                self.start_worker(*args, **env)
            time.sleep(SUPERVISE_EVERY_SECONDS)

    def stop_supervising(self) -> None:
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join()

    def kill_randomly(
        self, every_seconds: float, until: threading.Event, rng: random.Random
    ) -> threading.Thread:
        """Every ``every_seconds``, SIGKILL a random live worker (the supervisor restarts it)."""

        def loop() -> None:
            while not until.wait(every_seconds):
                live = self.live_workers()
                if live:
                    self.kill(rng.choice(live))

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    # -- the client's side -------------------------------------------------------------

    def enqueue(self, jobs: list[dict[str, Any]]) -> list[int]:
        """POST ``jobs`` in batches; remember every id the API accepted."""
        ids: list[int] = []
        for start in range(0, len(jobs), BATCH_JOBS_MAX):
            body = {"jobs": jobs[start : start + BATCH_JOBS_MAX]}
            response = requests.post(f"{self.base_url}/jobs/batch", json=body, timeout=60)
            assert response.status_code == 201, response.text
            ids += [job["id"] for job in response.json()["jobs"]]
        self.accepted += ids
        return ids

    def post(self, body: dict) -> int:
        job_id = super().post(body)
        self.accepted.append(job_id)
        return job_id

    # -- settling and checking -----------------------------------------------------------

    def statuses(self) -> dict[int, str]:
        with self.engine.connect() as connection:
            return dict(connection.execute(text("SELECT id, status FROM jobs")).all())

    def row(self, job_id: int) -> dict[str, Any]:
        with self.engine.connect() as connection:
            row = connection.execute(
                text("SELECT * FROM jobs WHERE id = :id"), {"id": job_id}
            ).one()
        return dict(row._mapping)

    def wait_settled(self, timeout: float) -> None:
        """Wait until every accepted job is terminal (or ``timeout`` passes)."""
        # No raise on timeout: check() then counts what did not settle.
        poll_until(self._settled, timeout=timeout, interval=SETTLE_POLL_SECONDS)

    def _settled(self) -> bool:
        statuses = self.statuses()
        return all(statuses.get(job_id) in TERMINAL for job_id in self.accepted)

    def logs(self, prefix: str = "worker") -> list[Path]:
        return sorted(self.tmp_path.glob(f"{prefix}*.log"))

    def check(self, scenario: str, **extra: Any) -> Counters:
        """Compute, print, record and assert the counters."""
        counters = count(self.engine, self.accepted, self.exec_log, self.logs(), self.faults)
        name = f"{scenario}[{self.backend}]"
        print(counters.line(name), *(f"{k}={v}" for k, v in extra.items()))
        record(name, **extra, **{k: v for k, v in vars(counters).items() if k != "examples"})
        counters.assert_clean()
        return counters

    def close(self) -> None:
        self.stop_supervising()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGCONT)  # a paused child cannot handle SIGTERM
        self.stop_all()
        self.engine.dispose()
