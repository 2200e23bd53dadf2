"""Real processes: the API under waitress and ``python -m worker``, on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.exec_log import EXEC_LOG_ENV

from .ports import free_port
from .settings import FAST_SETTINGS, TERMINAL, process_env
from .waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.05


class Processes:
    """Starts and stops the service's processes for one test, all on one database."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.exec_log = tmp_path / "executions.jsonl"
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            EXEC_LOG_ENV: str(self.exec_log),
            **process_env(FAST_SETTINGS),
        }
        self.children: list[subprocess.Popen[bytes]] = []
        self.base_url = ""

    def start_api(self, *, serve: bool = False) -> str:
        """Start the API on a free port; return its base URL once /health answers.

        ``serve``: the production command (``python -m jobsvc.serve``) instead of bare waitress.
        """
        port = free_port()
        argv = (
            [sys.executable, "-m", "jobsvc.serve", "--port", str(port)]
            if serve
            else [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "wsgi:app"]
        )
        self._spawn(argv, "api")
        self.base_url = f"http://127.0.0.1:{port}"
        wait_until(
            self._healthy,
            timeout=START_TIMEOUT_SECONDS,
            interval=POLL_SECONDS,
            message="the API did not start",
        )
        return self.base_url

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``python -m worker`` on every queue; its output goes to ``worker<n>.log``."""
        return self._spawn(
            [sys.executable, "-m", "worker", "--queues", "*", *args],
            f"worker{len(self.children)}",
            env,
        )

    def _spawn(
        self, argv: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own fd
            child = subprocess.Popen(
                argv,
                cwd=REPO,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.children.append(child)
        return child

    def post(self, body: dict) -> int:
        """POST one job; return its id."""
        response = requests.post(f"{self.base_url}/jobs", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def get(self, job_id: int) -> dict:
        """Return the job as the API shows it."""
        return requests.get(f"{self.base_url}/jobs/{job_id}", timeout=10).json()

    def wait_terminal(self, job_ids: list[int], timeout: float = 60.0) -> list[dict]:
        """Wait until every job in ``job_ids`` is terminal; return them as the API shows them."""
        pending = set(job_ids)

        def all_terminal() -> bool:
            pending.difference_update(
                {job_id for job_id in pending if self.get(job_id)["status"] in TERMINAL}
            )
            return not pending

        wait_until(
            all_terminal,
            timeout=timeout,
            interval=POLL_SECONDS,
            message=f"jobs not finished: {sorted(pending)[:10]}",
        )
        return [self.get(job_id) for job_id in job_ids]

    def executions(self) -> list[dict]:
        """Return the execution log the test handlers write, one dict per line."""
        if not self.exec_log.exists():
            return []
        return [json.loads(line) for line in self.exec_log.read_text().splitlines()]

    def log(self, name: str) -> str:
        """Return what the process ``name`` (``api``, ``worker1``...) has written so far."""
        path = self.tmp_path / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def stop_all(self) -> None:
        """SIGTERM every child still running; SIGKILL those that do not exit in time."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
