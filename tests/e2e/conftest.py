"""Real processes: the API under waitress and ``python -m worker``, on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import FAST_SETTINGS
from tests.handlers import EXEC_LOG_ENV

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
TERMINAL = {"DONE", "FAILED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            **{key: ",".join(value) if isinstance(value, tuple) else str(value)
               for key, value in FAST_SETTINGS.items()},
        }
        self.children: list[subprocess.Popen[bytes]] = []
        self.base_url = ""

    def start_api(self) -> str:
        port = free_port()
        self._spawn([sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "wsgi:app"],
                    "api")
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self.base_url
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the API did not start")

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self._spawn([sys.executable, "-m", "worker", "--queues", "*", *args],
                           f"worker{len(self.children)}", env)

    def _spawn(self, argv: list[str], name: str,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own fd
            child = subprocess.Popen(argv, cwd=REPO, env={**self.env, **(env or {})},
                                     stdout=log, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def post(self, body: dict) -> int:
        response = requests.post(f"{self.base_url}/jobs", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def get(self, job_id: int) -> dict:
        return requests.get(f"{self.base_url}/jobs/{job_id}", timeout=10).json()

    def wait_terminal(self, job_ids: list[int], timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        pending = set(job_ids)
        while pending and time.monotonic() < deadline:
            pending = {job_id for job_id in pending if self.get(job_id)["status"] not in TERMINAL}
            if pending:
                time.sleep(0.05)
        assert not pending, f"not finished: {sorted(pending)[:10]}"
        return [self.get(job_id) for job_id in job_ids]

    def executions(self) -> list[dict]:
        if not self.exec_log.exists():
            return []
        return [json.loads(line) for line in self.exec_log.read_text().splitlines()]

    def stop_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(database_url, tmp_path)
    yield processes
    processes.stop_all()
