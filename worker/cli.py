"""``python -m worker``: flags, then the config and the services built from it, then the loop.

No Flask here: the worker builds its services with ``jobsvc.services.build_services``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from jobsvc import config as settings
from jobsvc import configure_logging
from jobsvc.callbacks import CallbackPolicy
from jobsvc.errors import SchemaBehind
from jobsvc.jobfields import QUEUE_NAME_PATTERN
from jobsvc.models import JobStatus
from jobsvc.schema import require_current
from jobsvc.services import Services, build_services, log_database, wait_for_database
from jobsvc.webhooks import Signer

from .deliveries import Deliverer
from .logs import batch_stream_handlers
from .metrics import WorkerMetrics
from .pools import POOLS, PoolSettings
from .runner import Runner, WorkerSettings, new_worker_id

logger = logging.getLogger(__name__)

EXIT_CONFIG_ERROR = 2
MAX_DELIVERY_POLL_SECONDS = 1.0  # how long a due webhook may wait for the delivery unit
# Picked from bench W2 (no-op jobs, 1 worker, PostgreSQL, this development machine): x10 drained
# about 4,800 jobs/s, x16 5,950, x32 11,559, x64 10,076. 32 is where the curve tops out; past it
# threads only contend for the GIL. Slow jobs: 32 threads hold at most 32 of a handler's
# connections and a few MB. (Sidekiq defaults to 5 threads, Oban to 10 per queue, Celery to a
# process per core: each picked for its own per-job cost, as this is for ours.)
DEFAULT_CONCURRENCY = 32
# Per pool: the default --concurrency and the most it accepts. A child process costs tens of
# MB, so the processes pool defaults to one per core (as Celery's prefork pool does); a task
# costs a few KB, so the asyncio pool runs many at once by default.
CONCURRENCY = {
    "threads": (DEFAULT_CONCURRENCY, 1024),
    "processes": (max(os.cpu_count() or 1, 1), 256),
    "asyncio": (100, 10_000),
}
PREFETCH_MAX = 256  # attempts claimed ahead, at most: as many as the pool's most children
MEMORY_UNITS_KIB = {"": 1, "k": 1, "kb": 1, "kib": 1, "m": 1024, "mb": 1024, "mib": 1024}
MEMORY_UNITS_KIB |= {"g": 1024**2, "gb": 1024**2, "gib": 1024**2}
MEMORY_PATTERN = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Lease jobs from the jobsvc database and run their handlers.",
    )
    parser.add_argument(
        "--queues",
        default="default",
        help="comma-separated queues to serve, or * for every queue; never empty "
        "(default: default)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once: threads, child processes or tasks of the pool (default: "
        + ", ".join(f"{pool} {default}" for pool, (default, _) in CONCURRENCY.items())
        + ")",
    )
    parser.add_argument(
        "--pool",
        choices=POOLS,
        default="threads",
        help="what runs the handlers: threads (default), processes (prefork children: a "
        "handler that crashes, leaks or holds the GIL takes down only its child) or asyncio "
        "(async def handlers as tasks on one event loop)",
    )
    parser.add_argument(
        "--max-jobs-per-child",
        type=int,
        default=None,
        help="processes pool: replace a child after it ran this many jobs (default: never)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="processes pool: attempts claimed ahead, waiting for a free child, so that a "
        "child starts its next job without waiting for a claim (default: one per child; 0 for "
        "long jobs spread evenly over several workers)",
    )
    parser.add_argument(
        "--max-memory-per-child",
        default=None,
        help="processes pool: replace a child whose resident memory after a job is over this, "
        "in KiB, or with a unit: 200MB, 1GB (default: no limit)",
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="exit once nothing is ready instead of waiting for more jobs",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve this worker's Prometheus metrics on this port (default: none)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics port listens on; 0.0.0.0 for a Prometheus on another host "
        "(default: 127.0.0.1)",
    )
    parser.add_argument(
        "--handlers",
        default=None,
        help="comma-separated handler modules (default: $JOBSVC_HANDLERS)",
    )
    return parser


def _queues(text: str) -> tuple[str, ...] | None:
    """Return the queue names of ``--queues``, or None for ``*`` (every queue)."""
    names = tuple(part.strip() for part in text.split(","))
    if names == ("*",):
        return None
    bad = [name for name in names if not QUEUE_NAME_PATTERN.fullmatch(name)]
    if bad:
        raise ValueError(
            f"--queues={text!r} is refused: expected comma-separated queue names "
            "(1 to 64 letters, digits or _ . : -), or * for every queue"
        )
    return names


def settings_from(config: Mapping[str, Any], args: argparse.Namespace) -> WorkerSettings:
    """Combine the config with the command line."""
    return WorkerSettings(
        queues=_queues(args.queues),
        concurrency=_concurrency(args),
        burst=args.burst,
        lease_seconds=config["JOBSVC_LEASE_SECONDS"],
        heartbeat_seconds=config["JOBSVC_HEARTBEAT_SECONDS"],
        poll_seconds=config["JOBSVC_POLL_SECONDS"],
        shutdown_grace_seconds=config["JOBSVC_SHUTDOWN_GRACE_SECONDS"],
        traceback_bytes=config["JOBSVC_TRACEBACK_BYTES"],
        max_result_bytes=config["JOBSVC_MAX_RESULT_BYTES"],
        max_json_depth=config["JOBSVC_MAX_JSON_DEPTH"],
        cancel_grace_seconds=config["JOBSVC_CANCEL_GRACE_SECONDS"],
        pool=PoolSettings(
            kind=args.pool,
            handler_modules=tuple(config["JOBSVC_HANDLERS"]),
            max_jobs_per_child=args.max_jobs_per_child,
            prefetch=args.prefetch,
            max_memory_per_child_kib=_memory_kib(args.max_memory_per_child),
        ),
        priority_aging_seconds=config["JOBSVC_PRIORITY_AGING_SECONDS"],
        retain_seconds={
            JobStatus.DONE: config["JOBSVC_RETAIN_DONE_SECONDS"],
            JobStatus.FAILED: config["JOBSVC_RETAIN_FAILED_SECONDS"],
            JobStatus.CANCELLED: config["JOBSVC_RETAIN_CANCELLED_SECONDS"],
        },
        max_attempts=config["JOBSVC_MAX_ATTEMPTS"],
        timeout_seconds=config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"] or None,
    )


def _concurrency(args: argparse.Namespace) -> int:
    default, _ = CONCURRENCY[args.pool]
    return default if args.concurrency is None else args.concurrency


def _memory_kib(text: str | None) -> int | None:
    """Return ``--max-memory-per-child`` in KiB (None: no limit); ValueError if unreadable."""
    if text is None:
        return None
    match = MEMORY_PATTERN.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in MEMORY_UNITS_KIB or int(match.group(1)) < 1:
        raise ValueError(
            f"--max-memory-per-child={text!r} is refused: expected a whole number of KiB "
            "(at least 1), or one with a unit: 512MB, 2GB (K, KB, KiB, M, MB, MiB, G, GB, GiB; "
            "KB and MB count 1024)"
        )
    return int(match.group(1)) * MEMORY_UNITS_KIB[unit]


def check_flags(args: argparse.Namespace) -> None:
    """Raise ValueError naming the first flag out of range."""
    _, most = CONCURRENCY[args.pool]
    if args.concurrency is not None and not 1 <= args.concurrency <= most:
        raise ValueError(
            f"--concurrency={args.concurrency} is refused: expected 1 to {most} "
            f"with --pool {args.pool}"
        )
    _queues(args.queues)
    per_child = [
        flag
        for flag, value in (
            ("--max-jobs-per-child", args.max_jobs_per_child),
            ("--max-memory-per-child", args.max_memory_per_child),
            ("--prefetch", args.prefetch),
        )
        if value is not None
    ]
    if per_child and args.pool != "processes":
        raise ValueError(
            f"{per_child[0]} is refused with --pool {args.pool}: it concerns the child "
            "processes of --pool processes"
        )
    if args.max_jobs_per_child is not None and args.max_jobs_per_child < 1:
        raise ValueError(
            f"--max-jobs-per-child={args.max_jobs_per_child} is refused: expected at least 1"
        )
    if args.prefetch is not None and not 0 <= args.prefetch <= PREFETCH_MAX:
        # Each prefetched attempt is a claimed job no other worker can start: a large value
        # would let one worker take a whole backlog.
        raise ValueError(f"--prefetch={args.prefetch} is refused: expected 0 to {PREFETCH_MAX}")
    _memory_kib(args.max_memory_per_child)


def load_config(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings from the environment, with ``overrides`` (the flags) on top, checked.

    Raises ``ConfigError`` for a value out of range. The default SQLite file's folder is made
    when the database is first opened (``store/dialects/sqlite.py``).
    """
    config = settings.load(settings.instance_path())
    config.update(overrides)
    config.update(settings.check(config))
    return config


def build_runner(services: Services, args: argparse.Namespace) -> Runner:
    """Build a runner on ``services``: their lease store, a waker and the handler registry."""
    require_current(services.engine)
    worker_id = new_worker_id()
    metrics = None
    if getattr(args, "metrics_port", None) is not None:
        metrics = WorkerMetrics(worker_id)  # served by main() once the worker is built
    return Runner(
        services.leases,
        services.open_waker(),
        services.registry,
        settings_from(services.config, args),
        worker_id=worker_id,
        metrics=metrics,
        schedules=services.schedules,
        housekeeping=services.housekeeping,
        deliverer=build_deliverer(services),
    )


def build_deliverer(services: Services) -> Deliverer | None:
    """Return the webhook delivery unit, or None while JOBSVC_WEBHOOK_SECRET is not set."""
    config = services.config
    if not config["JOBSVC_WEBHOOK_SECRET"]:
        return None
    return Deliverer(
        services.deliveries,
        CallbackPolicy.from_config(config),
        Signer(config["JOBSVC_WEBHOOK_SECRET"]),
        timeout_seconds=config["JOBSVC_WEBHOOK_TIMEOUT_SECONDS"],
        max_attempts=config["JOBSVC_WEBHOOK_MAX_ATTEMPTS"],
        poll_seconds=min(config["JOBSVC_POLL_SECONDS"], MAX_DELIVERY_POLL_SECONDS),
    )


def start(config: Mapping[str, Any], args: argparse.Namespace) -> tuple[Services, Runner]:
    """Build the services and the runner, waiting for the database if it is not up yet."""
    return wait_for_database(lambda: _build(config, args), "worker")


def _build(config: Mapping[str, Any], args: argparse.Namespace) -> tuple[Services, Runner]:
    services = build_services(config)
    try:
        return services, build_runner(services, args)
    except BaseException:
        services.engine.dispose()  # a new engine (and pool) on the next try
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with --burst, until nothing is ready)."""
    args = _parser().parse_args(argv)
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        print(
            f"worker: --metrics-port={args.metrics_port} is refused: expected 1 to 65535",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    try:
        check_flags(args)
    except ValueError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # handler modules are named relative to where we run
    overrides = (
        {}
        if args.handlers is None
        else {
            "JOBSVC_HANDLERS": tuple(
                part.strip() for part in args.handlers.split(",") if part.strip()
            )
        }
    )
    try:
        config = load_config(overrides)
        configure_logging(config["JOBSVC_LOG_LEVEL"])
        log_database(config, "worker")
        services, runner = start(config, args)
        batch_stream_handlers(config["JOBSVC_LOG_FORMAT"])
    except SchemaBehind as exc:
        print(f"worker: {exc.message} (JOBSVC_AUTO_MIGRATE is off)", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except settings.ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except (ImportError, ValueError) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if not services.config["JOBSVC_HANDLERS"]:
        logger.warning(
            "no handler modules configured (JOBSVC_HANDLERS or --handlers): "
            "every job this worker claims will fail as an unknown type"
        )
    if runner.metrics is not None:
        try:
            runner.metrics.serve(args.metrics_port, args.metrics_host)
        except OSError as exc:
            print(
                f"worker: cannot serve metrics on port {args.metrics_port}: {exc}", file=sys.stderr
            )
            return EXIT_CONFIG_ERROR
        logger.info("metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port)
    runner.install_signal_handlers()
    return runner.run()
