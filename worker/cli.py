"""``python -m worker``: flags, then the config and the services built from it, then the loop.

No Flask here: the worker builds its services with ``jobsvc.services.build_services``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from jobsvc import config as settings
from jobsvc import configure_logging
from jobsvc.errors import DatabaseUnavailable, SchemaBehind
from jobsvc.schema import require_current
from jobsvc.services import Services, build_services

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
    parser.add_argument(
        "--queues",
        default="default",
        help="comma-separated queues to serve, or * for all (default: default)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="jobs run at once, each on its own thread (default: 1)",
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
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return None if not names or "*" in names else names


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
        cancel_grace_seconds=config["JOBSVC_CANCEL_GRACE_SECONDS"],
    )


def load_config(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings from the environment, with ``overrides`` (the flags) on top."""
    instance = settings.instance_path()
    config = settings.load(instance)
    config.update(overrides)
    # The default SQLite file lives in the instance folder; a worker may start before the API.
    os.makedirs(instance, exist_ok=True)
    return config


def build_runner(services: Services, args: argparse.Namespace) -> Runner:
    """Build a runner on ``services``: their lease store, a waker and the handler registry."""
    require_current(services.engine)
    return Runner(
        services.leases,
        services.open_waker(),
        services.registry,
        settings_from(services.config, args),
    )


def start(config: Mapping[str, Any], args: argparse.Namespace) -> tuple[Services, Runner]:
    """Build the services and the runner, waiting for the database if it is not up yet."""
    pause = STARTUP_RETRY_FIRST_SECONDS
    while True:
        services = None
        try:
            services = build_services(config)
            return services, build_runner(services, args)
        except (OperationalError, DatabaseUnavailable) as exc:
            # A worker that starts before its database (a reboot, a restart in progress) waits,
            # as a running worker does, instead of exiting with a traceback.
            reason = getattr(exc, "orig", exc)
            logger.warning(
                "database unavailable at start-up (%s); retrying in %.1fs",
                str(reason).splitlines()[0],
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, STARTUP_RETRY_MAX_SECONDS)
        except BaseException:
            if services is not None:
                services.engine.dispose()
            raise
        if services is not None:
            services.engine.dispose()  # a new engine (and pool) on the next try


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with --burst, until nothing is ready)."""
    args = _parser().parse_args(argv)
    if args.concurrency < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
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
        services, runner = start(config, args)
        batch_stream_handlers(config["JOBSVC_LOG_FORMAT"])
    except SchemaBehind as exc:
        print(f"worker: {exc.message} (JOBSVC_AUTO_MIGRATE is off)", file=sys.stderr)
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
