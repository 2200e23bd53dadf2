"""W1: enqueue over HTTP against waitress, beside a trivial endpoint of the same app."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import create_engine

import jobsvc
from jobsvc.config import normalize_database_url

from ..services import TRIVIAL_PATH, Client, Services, peak_rss_mib
from ..verify import done_exactly_once, stored
from . import Run
from .w0_ceiling import drain_with_store

JOB = {"type": "noop", "payload": {"n": 1}}
BATCH_SIZES = (100, 1000)
THREAD_COUNTS = (1, 4)


def run(bench: Run) -> None:
    """Measure requests/s of the trivial endpoint and POST /jobs, and batch enqueue jobs/s."""
    bench.database.reset()
    ids: list[int] = []
    with Services(bench.database.url, bench.log_dir) as services:
        api, base_url = services.start_api()
        for threads in THREAD_COUNTS:
            rate = _hammer(base_url, threads, bench.sizes.w1_requests, _trivial)
            bench.add(
                "W1", f"GET trivial endpoint, {threads} client threads", "requests/s", rate, "req/s"
            )
            rate = _hammer(base_url, threads, bench.sizes.w1_requests, _post_one(ids))
            bench.add("W1", f"POST /jobs, {threads} client threads", "requests/s", rate, "req/s")
        rate = _in_transaction(bench.database.url, bench.sizes.w1_requests, ids)
        bench.add(
            "W1", "jobsvc.enqueue in the caller's transaction, 1 thread", "jobs/s", rate, "jobs/s"
        )
        for size in BATCH_SIZES:
            rate = _batches(base_url, size, bench.sizes.w1_batch_requests, ids)
            bench.add("W1", f"POST /jobs/batch, {size} jobs/request", "jobs/s", rate, "jobs/s")
        bench.add("Mem", "API after W1", "peak RSS", peak_rss_mib(api.pid), "MiB")
    stored(bench.database, ids, "W1")
    # The enqueued jobs are counted too: drain them and check each ran exactly once.
    done_exactly_once(bench.database, drain_with_store(bench, len(ids)), "W1")


def _in_transaction(database_url: str, total: int, ids: list[int]) -> float:
    """Enqueue ``total`` jobs with ``jobsvc.enqueue``, one transaction (commit) each."""
    engine = create_engine(normalize_database_url(database_url))
    try:
        start = time.perf_counter()
        for _ in range(total):
            with engine.begin() as connection:
                ids.append(jobsvc.enqueue(connection, JOB["type"], JOB["payload"]).id)
        elapsed = time.perf_counter() - start
    finally:
        engine.dispose()
    return total / elapsed


def _trivial(client: Client) -> None:
    status, _ = client.call("GET", TRIVIAL_PATH)
    if status != 200:
        raise AssertionError(f"trivial endpoint answered {status}")


def _post_one(ids: list[int]) -> Callable[[Client], None]:
    def post(client: Client) -> None:
        status, body = client.call("POST", "/jobs", JOB)
        if status != 201:
            raise AssertionError(f"POST /jobs answered {status}: {body}")
        ids.append(body["id"])  # list.append is atomic under the GIL

    return post


def _hammer(base_url: str, threads: int, total: int, call: Callable[[Client], None]) -> float:
    """Send ``total`` requests from ``threads`` keep-alive clients; return requests/s."""
    failures: list[BaseException] = []
    start_line = threading.Barrier(threads + 1)

    def client_loop() -> None:
        client = Client(base_url)
        try:
            start_line.wait()
            for _ in range(total // threads):
                call(client)
        except BaseException as exc:
            failures.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=client_loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start_line.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return (total // threads) * threads / elapsed


def _batches(base_url: str, size: int, requests: int, ids: list[int]) -> float:
    body = {"jobs": [JOB] * size}
    client = Client(base_url)
    try:
        start = time.perf_counter()
        for _ in range(requests):
            status, answer = client.call("POST", "/jobs/batch", body)
            if status != 201:
                raise AssertionError(f"POST /jobs/batch answered {status}: {answer}")
            ids.extend(job["id"] for job in answer["jobs"])
        elapsed = time.perf_counter() - start
    finally:
        client.close()
    return size * requests / elapsed
