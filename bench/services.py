"""The service's real processes for a workload: waitress with the API, ``python -m worker``."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .databases import HANDLER_MODULES

REPO = Path(__file__).resolve().parent.parent
_LOG_NUMBERS = itertools.count(1)
TRIVIAL_PATH = "/bench/trivial"  # served by bench.wsgi_app beside the real API
START_TIMEOUT_SECONDS = 60.0
WORKER_STARTED = " started: queues="  # the worker's first log line once its loop runs
STOP_TIMEOUT_SECONDS = 30.0
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """Return the peak resident set size of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


class Client:
    """One keep-alive HTTP/1.1 connection that writes each request in one ``send``.

    ``http.client`` writes the headers and the body of a request in two sends: the server then
    wakes twice per POST (its first read ends at the headers), a cost of that client, not of the
    server, and one that curl, browsers and Go's client do not impose. Responses are still read
    by ``http.client``'s parser.
    """

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self._address = (host, int(port))
        self._host_header = f"Host: {host}:{port}\r\n"
        self._socket: socket.socket | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON body."""
        head = f"{method} {path} HTTP/1.1\r\n{self._host_header}"
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        sock = self._connect()
        sock.sendall(head.encode("ascii") + b"\r\n" + data)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        raw = response.read()
        if response.will_close:
            self.close()
        return response.status, json.loads(raw) if raw else None

    def _connect(self) -> socket.socket:
        if self._socket is None:
            self._socket = socket.create_connection(self._address, timeout=30)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Services:
    """Starts and stops the API and workers of one workload, all on one database."""

    def __init__(
        self, database_url: str, log_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(REPO),
            "JOBSVC_HANDLERS": ",".join(HANDLER_MODULES),
            **(extra_env or {}),
        }
        self.children: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def start_api(self, threads: int = 4) -> tuple[subprocess.Popen[bytes], str]:
        """Start waitress with the API; return it and its base URL once it answers."""
        port = free_port()
        child = self._spawn(
            [
                sys.executable,
                "-m",
                "waitress",
                f"--listen=127.0.0.1:{port}",
                f"--threads={threads}",
                "bench.wsgi_app:app",
            ],
            "api",
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError(f"the API exited; see {self.logs[child.pid]}")
            try:
                client = Client(base_url)
                status, _ = client.call("GET", "/health")
                client.close()
                if status == 200:
                    return child, base_url
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the API did not start")

    def start_worker(self, concurrency: int | None, *flags: str) -> subprocess.Popen[bytes]:
        """Start ``python -m worker`` on the default queue (``concurrency`` None: its default)."""
        given = [] if concurrency is None else ["--concurrency", str(concurrency)]
        return self._spawn([sys.executable, "-m", "worker", *given, *flags], "worker")

    def wait_started(self, worker: subprocess.Popen[bytes]) -> None:
        """Return once ``worker`` logged that its loop started."""
        log = self.logs[worker.pid]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if WORKER_STARTED in log.read_text(errors="replace"):
                return
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited; see {log}")
            time.sleep(0.05)
        raise RuntimeError("the worker did not start")

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        path = self.log_dir / f"{name}-{next(_LOG_NUMBERS)}.log"
        with path.open("ab") as log:
            child = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.children.append(child)
        self.logs[child.pid] = path
        return child

    def stop_all(self) -> None:
        """SIGTERM every child and wait for it (SIGKILL past the timeout)."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
