"""Scenario: slow and idle clients. ``python -m jobsvc.serve`` holds 200 / 1,000 connections that
send headers a byte every 2 s and never finish them (slowloris), and 30 / 200 keep-alive
clients that made one request and sit open, for 2 s / 30 s; meanwhile a normal client posts jobs
one by one and reads ``/health``, and a worker drains the jobs. Every normal request must be
answered (201 / 200), and every posted job done; their latencies are printed and recorded (the
one-second acceptance bound is asserted by tests/e2e/test_serve.py).
"""

from __future__ import annotations

import socket
import statistics
import threading
import time

import requests

from tests.support.settings import slow_e2e_backends

from .service import FaultService, size

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("sqlite")

SLOW_CLIENTS = size(200, 1000)
IDLE_CLIENTS = size(30, 200)
SECONDS = size(2.0, 30.0)
TRICKLE_EVERY_SECONDS = 2.0
ANSWER_BOUND_SECONDS = 5.0  # generous: a busy machine; the real bound is the e2e test's 1 s
SETTLE_TIMEOUT_SECONDS = 60


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_slow_and_idle_clients_never_lock_out_a_normal_one(faulty: FaultService) -> None:
    base = faulty.start_api(serve=True)
    port = int(base.rsplit(":", 1)[1])
    faulty.start_worker()
    held: list[socket.socket] = []
    done = threading.Event()

    def trickle() -> None:  # a byte more now and then, as a slow client would
        while not done.wait(TRICKLE_EVERY_SECONDS):
            for sock in held[:SLOW_CLIENTS]:
                try:
                    sock.sendall(b"X")
                except OSError:
                    pass  # the server closed it (channel timeout): that is allowed

    try:
        for _ in range(SLOW_CLIENTS):
            sock = _connect(port)
            sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        for _ in range(IDLE_CLIENTS):
            sock = _connect(port)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(sock)
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        latencies: dict[str, list[float]] = {"health": [], "post": []}
        statuses: set[int] = set()
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            for name, call in (
                ("health", lambda: requests.get(f"{base}/health", timeout=30)),
                (
                    "post",
                    lambda: requests.post(
                        f"{base}/jobs", json={"type": "test.echo", "payload": {}}, timeout=30
                    ),
                ),
            ):
                started = time.monotonic()
                response = call()
                latencies[name].append(time.monotonic() - started)
                statuses.add(response.status_code)
                if name == "post" and response.status_code == 201:
                    faulty.accepted.append(response.json()["id"])
        done.set()
        trickler.join()
    finally:
        done.set()
        for sock in held:
            sock.close()
    faulty.wait_settled(SETTLE_TIMEOUT_SECONDS)
    figures = {
        "slow_clients": SLOW_CLIENTS,
        "idle_clients": IDLE_CLIENTS,
        "requests": sum(len(v) for v in latencies.values()),
        **{
            f"{name}_{stat}_ms": round(f(values) * 1000, 1)
            for name, values in latencies.items()
            for stat, f in (("p50", statistics.median), ("max", max))
        },
    }
    faulty.check("slow-clients", **figures)
    assert statuses <= {200, 201}, statuses
    assert max(max(v) for v in latencies.values()) < ANSWER_BOUND_SECONDS, figures
