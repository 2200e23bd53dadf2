"""``python -m worker``: flags, then the config and the services built from it, then the loop.

No Flask here: the worker builds its services with ``jobsvc.services.build_services``.
"""

from __future__ import annotations

import argparse
import logging
import os
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
from .runner import Runner, WorkerSettings

logger = logging.getLogger(__name__)

EXIT_CONFIG_ERROR = 2
MAX_CONCURRENCY = 1024
MAX_DELIVERY_POLL_SECONDS = 1.0  # how long a due webhook may wait for the delivery unit
# Short jobs: about 4,800 no-op jobs/s on PostgreSQL at 10 where 1 drained 700 (bench W2); slow
# jobs: ten threads hold at most ten of a handler's connections and little memory.
DEFAULT_CONCURRENCY = 10


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
        default=DEFAULT_CONCURRENCY,
        help=f"jobs run at once, each on its own thread (default: {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="exit once nothing is ready instead of waiting for more jobs",
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
        concurrency=args.concurrency,
        burst=args.burst,
        lease_seconds=config["JOBSVC_LEASE_SECONDS"],
        heartbeat_seconds=config["JOBSVC_HEARTBEAT_SECONDS"],
        poll_seconds=config["JOBSVC_POLL_SECONDS"],
        shutdown_grace_seconds=config["JOBSVC_SHUTDOWN_GRACE_SECONDS"],
        traceback_bytes=config["JOBSVC_TRACEBACK_BYTES"],
        max_result_bytes=config["JOBSVC_MAX_RESULT_BYTES"],
        max_json_depth=config["JOBSVC_MAX_JSON_DEPTH"],
        cancel_grace_seconds=config["JOBSVC_CANCEL_GRACE_SECONDS"],
        priority_aging_seconds=config["JOBSVC_PRIORITY_AGING_SECONDS"],
        retain_seconds={
            JobStatus.DONE: config["JOBSVC_RETAIN_DONE_SECONDS"],
            JobStatus.FAILED: config["JOBSVC_RETAIN_FAILED_SECONDS"],
            JobStatus.CANCELLED: config["JOBSVC_RETAIN_CANCELLED_SECONDS"],
        },
        max_attempts=config["JOBSVC_MAX_ATTEMPTS"],
        timeout_seconds=config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"] or None,
    )


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
    return Runner(
        services.leases,
        services.open_waker(),
        services.registry,
        settings_from(services.config, args),
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
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        print(
            f"worker: --concurrency={args.concurrency} is refused: expected 1 to {MAX_CONCURRENCY}",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    try:
        _queues(args.queues)
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
    runner.install_signal_handlers()
    return runner.run()
