"""Comparison benchmark: pgqueuer draining a pre-enqueued backlog of no-op jobs.

This script is standalone. It is NOT part of jobsvc: it imports nothing from the
project, nothing imports it, and it uses only the standard library, pgqueuer and
asyncpg (plus uvloop, which pgqueuer itself depends on and runs its workers on).
Run it from its own virtualenv, outside the project's dependencies::

    python3 -m venv /tmp/pgq
    /tmp/pgq/bin/pip install 'pgqueuer>=1.6,<1.7' asyncpg
    /tmp/pgq/bin/python bench/compare_pgqueuer.py \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/test \\
        --jobs 20000 --workers 1 --batch-size 500

Workload (mirrors the project's W2): ``--jobs`` no-op jobs are enqueued first (not
timed), then ``--workers`` separate OS processes, each running one pgqueuer
``QueueManager`` with a single entrypoint whose handler does nothing, drain them.
The figure is jobs / (last completion - first claim), both PostgreSQL timestamps
from pgqueuer's own log table: its dequeue statement logs a ``picked`` row per
claimed job and its completion statement a ``successful`` one (``created`` is the
statement's NOW()). Process start-up is excluded: workers connect and register
their entrypoint, then wait on a shared start signal before consuming.

Correctness: every enqueued job id must have been handed to a handler exactly once
(handler calls are counted per job id across all workers and sent back to the
parent) and must have exactly one ``picked`` and one ``successful`` row in pgqueuer's
log table, with no other outcome logged and the queue table left empty; otherwise
the script prints an error and exits 1.

A fresh database ``pgq_bench_<random>`` is created on the server named by
``--postgres-url`` (by connecting to that URL's database), pgqueuer's schema is
installed there (reinstalled before each repeat), and the database is dropped at
the end. No other database and no server setting is touched; pgqueuer's tables are
installed with its default (durable, i.e. logged) durability.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import queue
import secrets
import statistics
import sys
import time
import traceback
from collections import Counter
from collections.abc import Coroutine
from importlib.metadata import version as dist_version
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager
from pgqueuer.domain.settings import db_settings
from pgqueuer.models import Job

ENTRYPOINT = "noop"
ENQUEUE_CHUNK = 1000
POLL_SECONDS = 0.25
READY_TIMEOUT_SECONDS = 120.0
RESULT_TIMEOUT_SECONDS = 120.0

T = TypeVar("T")


class BenchError(RuntimeError):
    """A run failed or did not process every job exactly once."""


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name`` (same server, user and options)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def run_loop(coro: Coroutine[object, object, T], loop: str) -> T:
    """Run ``coro`` on uvloop (what ``pgq run`` uses) or the stdlib asyncio loop."""
    if loop == "uvloop":
        import uvloop  # a dependency of pgqueuer itself

        return uvloop.run(coro)
    return asyncio.run(coro)


# --------------------------------------------------------------------------- worker


def worker_main(
    index: int,
    dsn: str,
    batch_size: int,
    concurrency: int,
    loop: str,
    ready: Any,
    go: Any,
    stop: Any,
    results: Any,
) -> None:
    """Entry point of one worker process (started with the spawn method)."""
    try:
        calls = run_loop(_worker(dsn, batch_size, concurrency, ready, go, stop), loop)
        results.put(("ok", index, calls))
    except BaseException:  # report anything, so the parent never waits blindly
        results.put(("error", index, traceback.format_exc()))
        ready.put(index)  # unblock a parent still waiting for start-up


async def _worker(
    dsn: str, batch_size: int, concurrency: int, ready: Any, go: Any, stop: Any
) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        qm = QueueManager(Queries(AsyncpgDriver(connection)))
        calls: list[int] = []

        @qm.entrypoint(ENTRYPOINT, concurrency_limit=concurrency)
        async def noop(job: Job) -> None:
            calls.append(job.id)  # no work; only which job ran, for the exactly-once check

        async def stop_when_told() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            qm.shutdown.set()

        ready.put(-1)
        while not go.wait(0.05):  # start-up is excluded: wait for every worker
            await asyncio.sleep(0)
        watcher = asyncio.create_task(stop_when_told())
        try:
            await qm.run(batch_size=batch_size)
        finally:
            watcher.cancel()
        return calls
    finally:
        await connection.close()


# --------------------------------------------------------------------------- parent


async def reset_schema(dsn: str) -> None:
    """(Re)install pgqueuer's schema so every repeat starts from empty tables."""
    connection = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(connection))
        if await queries.schema_is_installed():
            await queries.uninstall()
        await queries.install()
        names = queries.qbe.settings.qualified
        for table in (names.queue_table, names.queue_table_log, names.statistics_table):
            await connection.execute(f"VACUUM ANALYZE {table}")
    finally:
        await connection.close()


async def enqueue(dsn: str, count: int) -> list[int]:
    """Enqueue ``count`` no-op jobs with pgqueuer's batch enqueue; return their ids."""
    connection = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(connection))
        ids: list[int] = []
        for start in range(0, count, ENQUEUE_CHUNK):
            n = min(ENQUEUE_CHUNK, count - start)
            ids.extend(await queries.enqueue([ENTRYPOINT] * n, [None] * n, [0] * n))
        return ids
    finally:
        await connection.close()


async def wait_drained(dsn: str, processes: list[Any], timeout: float) -> None:
    """Return once the queue table is empty (a completion deletes the row)."""
    queue_table = db_settings().qualified.queue_table
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {queue_table})"):
                return
            if any(p.exitcode is not None for p in processes):
                raise BenchError("a worker exited before the queue was drained")
            await asyncio.sleep(POLL_SECONDS)
        raise BenchError(f"queue not drained within {timeout:.0f} s")
    finally:
        await connection.close()


async def verify_and_time(dsn: str, expected: list[int], calls: Counter[int]) -> float:
    """Check every job ran exactly once; return the drain time in seconds."""
    problems: list[str] = []
    expected_set = set(expected)
    if len(expected_set) != len(expected):
        problems.append("enqueue returned duplicate ids")
    missing = expected_set - calls.keys()
    extra = calls.keys() - expected_set
    repeated = {job_id: n for job_id, n in calls.items() if n != 1}
    if missing:
        problems.append(f"{len(missing)} job(s) never reached a handler")
    if extra:
        problems.append(f"{len(extra)} unknown job id(s) reached a handler")
    if repeated:
        problems.append(f"{len(repeated)} job(s) ran more than once (handler calls)")

    names = db_settings().qualified
    connection = await asyncpg.connect(dsn)
    try:
        left = await connection.fetchval(f"SELECT count(*) FROM {names.queue_table}")
        outcomes = dict(
            await connection.fetch(
                f"SELECT status::text, count(*) FROM {names.queue_table_log}"
                " WHERE status <> 'queued' GROUP BY status"
            )
        )
        per_job = await connection.fetch(
            f"SELECT job_id, count(*) FILTER (WHERE status = 'picked') AS picked,"
            f" count(*) FILTER (WHERE status = 'successful') AS done"
            f" FROM {names.queue_table_log} WHERE status <> 'queued' GROUP BY job_id"
        )
        first_claim, last_done = await connection.fetchrow(
            f"SELECT min(created) FILTER (WHERE status = 'picked'),"
            f" max(created) FILTER (WHERE status = 'successful') FROM {names.queue_table_log}"
        )
    finally:
        await connection.close()
    if left:
        problems.append(f"{left} row(s) left in the queue table")
    if set(outcomes) - {"picked", "successful"}:
        problems.append(f"unexpected outcomes logged: {outcomes}")
    logged_ids = {row["job_id"] for row in per_job}
    not_once = sum(row["picked"] != 1 or row["done"] != 1 for row in per_job)
    if logged_ids != expected_set or not_once:
        problems.append(
            f"log table: {len(logged_ids)} job(s) logged for {len(expected_set)} enqueued, "
            f"{not_once} not picked and completed exactly once"
        )
    if problems:
        raise BenchError("; ".join(problems))
    return (last_done - first_claim).total_seconds()


async def drain_once(args: argparse.Namespace, dsn: str) -> float:
    """One measured drain; return jobs/s."""
    await reset_schema(dsn)
    ids = await enqueue(dsn, args.jobs)

    ctx = mp.get_context("spawn")
    ready, results, go, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    processes = [
        ctx.Process(
            target=worker_main,
            name=f"pgq-worker-{i}",
            args=(i, dsn, args.batch_size, args.concurrency, args.loop, ready, go, stop, results),
        )
        for i in range(args.workers)
    ]
    for process in processes:
        process.start()
    try:
        try:
            for _ in processes:
                await asyncio.to_thread(ready.get, True, READY_TIMEOUT_SECONDS)
            go.set()
            await wait_drained(dsn, processes, args.timeout)
        except (BenchError, queue.Empty) as exc:
            reports = []
            while True:  # surface the workers' own tracebacks, if any
                try:
                    status, index, payload = results.get(True, 1.0)
                except queue.Empty:
                    break
                if status != "ok":
                    reports.append(f"worker {index} failed:\n{payload}")
            raise BenchError("\n".join([str(exc) or "workers did not start", *reports])) from exc
        stop.set()
        calls: Counter[int] = Counter()
        errors: list[str] = []
        for _ in processes:
            try:
                status, index, payload = await asyncio.to_thread(
                    results.get, True, RESULT_TIMEOUT_SECONDS
                )
            except queue.Empty as exc:
                raise BenchError("a worker did not report its handler calls") from exc
            if status != "ok":
                errors.append(f"worker {index} failed:\n{payload}")
                continue
            calls.update(payload)
        for process in processes:
            await asyncio.to_thread(process.join, 30)
        if errors:
            raise BenchError("\n".join(errors))
        seconds = await verify_and_time(dsn, ids, calls)
    finally:
        stop.set()
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
    return args.jobs / max(seconds, 1e-6)


async def measure(args: argparse.Namespace) -> list[float]:
    """Create the scratch database, run the repeats, always drop it."""
    name = f"pgq_bench_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(args.postgres_url)
    try:
        force = " WITH (FORCE)" if admin.get_server_version().major >= 13 else ""
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            dsn = with_database(args.postgres_url, name)
            rates: list[float] = []
            for repeat in range(1, args.repeats + 1):
                rate = await drain_once(args, dsn)
                rates.append(rate)
                print(
                    f"  run {repeat}/{args.repeats}: {args.jobs:,} jobs, "
                    f"{rate:,.0f} jobs/s (first claim -> last completion)",
                    flush=True,
                )
            return rates
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
    finally:
        await admin.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        required=True,
        help="server to use; a scratch database is created next to this one",
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--batch-size", type=int, default=500, help="dequeue batch size")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="the entrypoint's concurrency_limit; 0 (default) = unlimited, which keeps the "
        "dequeue on its plain pick-and-claim query and lets whole batches run at once",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of the workers (pgq run uses uvloop)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per drain")
    args = parser.parse_args(argv)
    if min(args.jobs, args.workers, args.batch_size, args.repeats) < 1 or args.concurrency < 0:
        parser.error(
            "--jobs, --workers, --batch-size and --repeats must be >= 1, --concurrency >= 0"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    label = (
        f"pgqueuer {dist_version('pgqueuer')} asyncpg: {args.workers} worker(s), "
        f"batch {args.batch_size}"
    )
    print(
        f"{label}; {args.jobs:,} no-op jobs, concurrency_limit={args.concurrency}, "
        f"loop={args.loop}, durability={db_settings().durability.value}",
        flush=True,
    )
    try:
        rates = asyncio.run(measure(args))
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(
        f"{label}: median {statistics.median(rates):,.0f} jobs/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}, {len(rates)} run(s))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
