"""``python -m worker``: flags, then the app's config, then the run loop."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask
from sqlalchemy.exc import OperationalError

from jobsvc import create_app
from jobsvc.errors import DatabaseUnavailable, SchemaBehind
from jobsvc.extensions import db
from jobsvc.registry import registry
from jobsvc.retry import RetryPolicy
from jobsvc.schema import require_current
from jobsvc.store import LeaseStore, open_waker, worker_engine

from .logs import batch_stream_handlers
from .runner import Runner, WorkerSettings

logger = logging.getLogger(__name__)

EXIT_CONFIG_ERROR = 2
STARTUP_RETRY_FIRST_SECONDS = 0.5
STARTUP_RETRY_MAX_SECONDS = 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Lease jobs from the jobsvc database and run their handlers.",
    )
    parser.add_argument("--queues", default="default",
                        help="comma-separated queues to serve, or * for all (default: default)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="jobs run at once, each on its own thread (default: 1)")
    parser.add_argument("--burst", action="store_true",
                        help="exit once nothing is ready instead of waiting for more jobs")
    parser.add_argument("--handlers", default=None,
                        help="comma-separated handler modules (default: $JOBSVC_HANDLERS)")
    return parser


def _queues(text: str) -> tuple[str, ...] | None:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return None if not names or "*" in names else names


def settings_from(app: Flask, args: argparse.Namespace) -> WorkerSettings:
    """Combine the app's config with the command line."""
    config = app.config
    return WorkerSettings(
        queues=_queues(args.queues),
        concurrency=args.concurrency,
        burst=args.burst,
        lease_seconds=config["JOBSVC_LEASE_SECONDS"],
        heartbeat_seconds=config["JOBSVC_HEARTBEAT_SECONDS"],
        poll_seconds=config["JOBSVC_POLL_SECONDS"],
        shutdown_grace_seconds=config["JOBSVC_SHUTDOWN_GRACE_SECONDS"],
        traceback_bytes=config["JOBSVC_TRACEBACK_BYTES"],
    )


def build_runner(app: Flask, args: argparse.Namespace) -> Runner:
    """Build a runner on ``app``'s engine and settings."""
    config = app.config
    with app.app_context():
        engine = worker_engine(db.engine)
    require_current(engine)
    policy = RetryPolicy(config["JOBSVC_RETRY_BASE_SECONDS"], config["JOBSVC_RETRY_MAX_SECONDS"],
                         random.Random())  # noqa: S311 - jitter, not security
    store = LeaseStore(engine, policy)
    return Runner(store, open_waker(engine), registry, settings_from(app, args))


def start(overrides: Mapping[str, Any], args: argparse.Namespace) -> tuple[Flask, Runner]:
    """Build the app and the runner, waiting for the database if it is not up yet."""
    pause = STARTUP_RETRY_FIRST_SECONDS
    while True:
        try:
            app = create_app(overrides, serve_http=False)
            return app, build_runner(app, args)
        except (OperationalError, DatabaseUnavailable) as exc:
            # A worker that starts before its database (a reboot, a restart in progress) waits,
            # as a running worker does, instead of exiting with a traceback.
            reason = getattr(exc, "orig", exc)
            logger.warning("database unavailable at start-up (%s); retrying in %.1fs",
                           str(reason).splitlines()[0], pause)
            time.sleep(pause)
            pause = min(pause * 2, STARTUP_RETRY_MAX_SECONDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with --burst, until nothing is ready)."""
    args = _parser().parse_args(argv)
    if args.concurrency < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # handler modules are named relative to where we run
    overrides = {} if args.handlers is None else {"JOBSVC_HANDLERS": tuple(
        part.strip() for part in args.handlers.split(",") if part.strip())}
    try:
        app, runner = start(overrides, args)
        batch_stream_handlers(app.config["JOBSVC_LOG_FORMAT"])
    except SchemaBehind as exc:
        print(f"worker: {exc.message} (JOBSVC_AUTO_MIGRATE is off)", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except (ImportError, ValueError) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if not app.config["JOBSVC_HANDLERS"]:
        logger.warning("no handler modules configured (JOBSVC_HANDLERS or --handlers): "
                       "every job this worker claims will fail as an unknown type")
    runner.install_signal_handlers()
    return runner.run()
