"""W3: an idle worker; jobs enqueued over HTTP at a steady rate; enqueue-to-start latency."""

from __future__ import annotations

import time

from sqlalchemy import select

from jobsvc.models import Job

from ..report import median, percentile
from ..services import Client, Services, cpu_seconds
from ..verify import done_exactly_once
from . import Run
from .w2_drain import _wait_done

jobs = Job.__table__
SETTLE_SECONDS = 1.0  # let the worker finish starting before its idle CPU is measured


def run(bench: Run) -> None:
    """Measure p50/p95/p99 from the enqueue's transaction to the handler's start."""
    bench.database.reset()
    sizes = bench.sizes
    ids: list[int] = []
    with Services(bench.database.url, bench.log_dir) as services:
        _, base_url = services.start_api()
        worker = services.start_worker(1)
        services.wait_started(worker)
        time.sleep(SETTLE_SECONDS)
        cpu_before = cpu_seconds(worker.pid)
        time.sleep(sizes.w3_idle_seconds)
        idle_share = (cpu_seconds(worker.pid) - cpu_before) / sizes.w3_idle_seconds
        bench.add("W3", "idle worker", "CPU", 100 * idle_share, "% of a core")
        _post_at_rate(base_url, sizes.w3_jobs, sizes.w3_rate_per_second, ids)
        _wait_done(bench, len(ids), [worker])
    done_exactly_once(bench.database, ids, "W3")
    latencies = _latencies_ms(bench)
    case = f"{sizes.w3_jobs} jobs at {sizes.w3_rate_per_second:g}/s"
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        bench.add("W3", case, f"latency {name}", percentile(latencies, fraction), "ms")
    bench.add("W3", case, "latency median", median(latencies), "ms")


def _post_at_rate(base_url: str, count: int, rate: float, ids: list[int]) -> None:
    client = Client(base_url)
    start = time.perf_counter()
    try:
        for index in range(count):
            pause = start + index / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            status, body = client.call("POST", "/jobs", {"type": "stamp"})
            if status != 201:
                raise AssertionError(f"POST /jobs answered {status}: {body}")
            ids.append(body["id"])
    finally:
        client.close()


def _latencies_ms(bench: Run) -> list[float]:
    # created_at is the database's now() inside the enqueue's transaction, so this is the
    # commit-to-start latency plus the insert itself: a slight overestimate, never an under.
    with bench.database.engine.connect() as connection:
        rows = connection.execute(select(jobs.c.created_at, jobs.c.result)).all()
    return [1000 * (row.result["started"] - row.created_at.timestamp()) for row in rows]
