"""W9: requests waiting for their jobs (``GET /jobs/{id}?wait=``) on one API process.

Many clients hold a long-poll each while another client enqueues: the enqueue's latency is
measured without and with the waiters, then each waited-for job is completed (one at a time,
through the worker's own store) and the time from its completion's commit to its waiter's
answer is measured. The API runs as deployed: ``python -m jobsvc.serve`` (its request threads
plus ``JOBSVC_MAX_WAITERS`` for waiters).
"""

from __future__ import annotations

import sys
import threading
import time

from jobsvc.store import outcomes

from ..report import percentile
from ..services import Client, Services, free_port
from . import Run

HELD_QUEUE = "held"  # no worker serves it: its jobs stay PENDING until the bench ends them
OTHER_QUEUE = "other"
WAIT_SECONDS = 25  # below the bench client's 30 s socket timeout
WAITER_DEADLINE_SECONDS = 600.0
SETTLE_SECONDS = 2.0  # for every waiter's request to reach the API and start waiting
COMPLETE_EVERY_SECONDS = 0.02  # one completion at a time: each wake-up is measured alone
START_TIMEOUT_SECONDS = 60.0


def run(bench: Run) -> None:
    """Measure POST /jobs p50/p99 beside the waiters and the completion-to-answer latency."""
    bench.database.reset()
    sizes = bench.sizes
    env = {"JOBSVC_RATE_LIMIT_PER_SECOND": "0"}
    with Services(bench.database.url, bench.log_dir, extra_env=env) as services:
        base_url = _start_serve(services)
        held = _enqueue(base_url, HELD_QUEUE, sizes.w9_waiters)
        idle = _post_latencies(base_url, sizes.w9_posts)
        answered: dict[int, float] = {}
        waiters = [
            threading.Thread(target=_wait, args=(base_url, job_id, answered), daemon=True)
            for job_id in held
        ]
        for waiter in waiters:
            waiter.start()
        time.sleep(SETTLE_SECONDS)
        busy = _post_latencies(base_url, sizes.w9_posts)
        committed = _complete_one_by_one(bench, len(held))
        for waiter in waiters:
            waiter.join(WAIT_SECONDS + 5)
    case = f"{len(held)} waiters"
    for label, latencies in (("no waiters", idle), (case, busy)):
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            bench.add(
                "W9",
                f"POST /jobs, {label}",
                f"latency {name}",
                percentile(latencies, fraction),
                "ms",
            )
    wakes = [
        1000 * (answered[job_id] - at) for job_id, at in committed.items() if job_id in answered
    ]
    if len(wakes) != len(held):
        raise AssertionError(f"W9: {len(held) - len(wakes)} waiters were not answered")
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        bench.add(
            "W9",
            f"{case}, completion to answer",
            f"latency {name}",
            percentile(wakes, fraction),
            "ms",
        )


def _start_serve(services: Services) -> str:
    port = free_port()
    child = services._spawn([sys.executable, "-m", "jobsvc.serve", "--port", str(port)], "serve")
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError("jobsvc.serve exited")
        try:
            client = Client(base_url)
            status, _ = client.call("GET", "/health")
            client.close()
            if status == 200:
                return base_url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("jobsvc.serve did not start")


def _enqueue(base_url: str, queue: str, count: int) -> list[int]:
    client = Client(base_url)
    try:
        status, body = client.call(
            "POST", "/jobs/batch", {"jobs": [{"type": "stamp", "queue": queue}] * count}
        )
        if status != 201:
            raise AssertionError(f"POST /jobs/batch answered {status}: {body}")
        return [job["id"] for job in body["jobs"]]
    finally:
        client.close()


def _post_latencies(base_url: str, count: int) -> list[float]:
    client = Client(base_url)
    latencies = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            status, body = client.call("POST", "/jobs", {"type": "stamp", "queue": OTHER_QUEUE})
            latencies.append(1000 * (time.perf_counter() - started))
            if status != 201:
                raise AssertionError(f"POST /jobs answered {status}: {body}")
    finally:
        client.close()
    return latencies


def _wait(base_url: str, job_id: int, answered: dict[int, float]) -> None:
    # Long-polls again after each hold that ran out, as Client.wait does: on a slow machine
    # the POST phase can outlast one hold.
    client = Client(base_url)
    deadline = time.monotonic() + WAITER_DEADLINE_SECONDS
    try:
        while time.monotonic() < deadline:
            status, body = client.call("GET", f"/jobs/{job_id}?wait={WAIT_SECONDS}")
            if status == 200 and body["status"] == "DONE":
                answered[job_id] = time.perf_counter()
                return
    finally:
        client.close()


def _complete_one_by_one(bench: Run, count: int) -> dict[int, float]:
    """Complete the held jobs one at a time; return when each completion committed."""
    store = bench.lease_store()
    committed: dict[int, float] = {}
    for _ in range(count):
        (job,) = store.claim([HELD_QUEUE], 1, "bench-w5", 30.0)
        if store.finish([outcomes.succeeded(job, None)]):
            raise AssertionError("W9: a completion was refused")
        committed[job.id] = time.perf_counter()
        time.sleep(COMPLETE_EVERY_SECONDS)
    return committed
