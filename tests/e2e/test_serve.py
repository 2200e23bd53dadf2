"""``python -m jobsvc.serve``: the production server holds up against slow and idle clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.processes import REPO, START_TIMEOUT_SECONDS

SLOW_CLIENTS = 1000
IDLE_KEEPALIVE_CLIENTS = 200
ANSWER_WITHIN_SECONDS = 1.0
JOB = {"type": "test.echo", "payload": {}}


@pytest.fixture
def serve(service) -> Iterator[callable]:
    """Start ``python -m jobsvc.serve`` with extra flags; return its base URL."""

    def start(*flags: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        child = service._spawn(
            [sys.executable, "-m", "jobsvc.serve", "--port", str(port), *flags], "serve"
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    return base, child
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("jobsvc.serve did not start")

    yield start


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _timed(call: callable) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_slow_and_idle_clients_do_not_lock_out_a_normal_one(serve):
    base, _ = serve()
    port = int(base.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):  # slowloris: headers that never end
            sock = _connect(port)
            sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        for _ in range(IDLE_KEEPALIVE_CLIENTS):  # one request each, then the socket sits open
            sock = _connect(port)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(sock)
        for sock in held[:SLOW_CLIENTS]:  # a byte more, as a slow client would
            sock.sendall(b"X")
        health, health_seconds = _timed(lambda: requests.get(f"{base}/health", timeout=10))
        created, post_seconds = _timed(lambda: requests.post(f"{base}/jobs", json=JOB, timeout=10))
    finally:
        for sock in held:
            sock.close()
    assert health.status_code == 200 and created.status_code == 201, created.text
    assert health_seconds < ANSWER_WITHIN_SECONDS and post_seconds < ANSWER_WITHIN_SECONDS


def _largest_open_file(pid: int) -> int:
    sizes = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.resolve()
            if target.is_file() or "(deleted)" in os.readlink(fd):
                sizes.append(os.stat(fd).st_size)
        except OSError:
            continue
    return max(sizes, default=0)


def test_a_300_mb_body_is_refused_without_being_spooled(serve):
    base, child = serve()
    port = int(base.rsplit(":", 1)[1])
    sock = _connect(port)
    try:
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 300000000\r\n\r\n["
        )
        # Refused from the Content-Length alone: the answer comes before the body is sent.
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert _largest_open_file(child.pid) < 4 * 1024 * 1024


def test_forwarded_for_is_believed_only_from_the_trusted_proxy(serve):
    forged = {"X-Forwarded-For": "203.0.113.9"}
    base, _ = serve()
    # Not trusted: the header is ignored, so this loopback client is served without a token.
    assert requests.post(f"{base}/jobs", json=JOB, headers=forged, timeout=10).status_code == 201
    proxied, _ = serve("--trusted-proxy", "127.0.0.1")
    # Behind a trusted proxy the client is 203.0.113.9: not loopback, so refused without one.
    refused = requests.post(f"{proxied}/jobs", json=JOB, headers=forged, timeout=10)
    assert refused.status_code == 401, refused.text
    assert requests.post(f"{proxied}/jobs", json=JOB, timeout=10).status_code == 201


def test_bad_flags_stop_it_with_a_message_naming_the_flag():
    run = subprocess.run(
        [sys.executable, "-m", "jobsvc.serve", "--threads", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--threads must be at least 1" in run.stderr
