"""The composition root: every service the API and the worker run on, built from one config.

The API (``create_app``) and the worker (``python -m worker``) both call ``build_services``;
neither finds its engine, stores or handler registry any other way. No Flask here: the worker
runs without it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from . import config as settings
from .config import shown_database
from .errors import DatabaseUnavailable
from .registry import HandlerRegistry, load_handler_modules, registry
from .retry import RetryPolicy
from .schema import upgrade
from .store import (
    ConnectionSettings,
    JobStore,
    LeaseStore,
    OverviewStore,
    QueueStore,
    TokenStore,
    Waker,
    configure_engine,
    engine_options,
)
from .store import open_waker as _open_waker
from .store.deliveries import DeliveryStore
from .store.housekeeping import HousekeepingStore
from .store.schedules import ScheduleStore

logger = logging.getLogger(__name__)

R = TypeVar("R")
Clock = Callable[[], float]  # monotonic seconds
STARTUP_RETRY_FIRST_SECONDS = 0.5
STARTUP_RETRY_MAX_SECONDS = 5.0
# application_name per process kind, so pg_stat_activity counts each kind's connections.
API_NAME, WORKER_NAME, LISTEN_NAME = "jobsvc-api", "jobsvc-worker", "jobsvc-listen"
# A worker's pool: its claim loop and its completer each hold one connection while they work;
# the maintenance thread (heartbeats, rescues, cancel checks) borrows one between them. Two,
# never more: 30 workers hold 60 plus their 30 listeners.
WORKER_POOL_SIZE = 2


@dataclass(frozen=True)
class Services:
    """What jobsvc runs on: one engine, the stores over it, the handlers, the clock."""

    config: Mapping[str, Any]  # the parsed settings (``jobsvc.config.load`` and overrides)
    engine: Engine
    jobs: JobStore
    leases: LeaseStore
    tokens: TokenStore
    queues: QueueStore
    overview: OverviewStore  # read-only summaries: the dashboard's and the metrics'
    deliveries: DeliveryStore  # the webhook outbox
    registry: HandlerRegistry
    # None means "any type": without JOBSVC_HANDLERS the API cannot know which types exist.
    job_types: frozenset[str] | None
    clock: Clock
    schedules: ScheduleStore
    housekeeping: HousekeepingStore

    def open_waker(self) -> Waker:
        """Return a waker on this engine (LISTEN/NOTIFY on PostgreSQL, polling on SQLite;
        on PostgreSQL behind a transaction pooler, LISTEN_DATABASE_URL's or polling)."""
        return _open_waker(
            self.engine,
            connection_settings(self.config, LISTEN_NAME),
            self.config.get("JOBSVC_LISTEN_DATABASE_URL", ""),
        )


def connection_settings(
    config: Mapping[str, Any], application_name: str, **pool: int
) -> ConnectionSettings:
    """Return how a process of one kind connects, from the settings (``pool``: its sizes)."""

    def setting(name: str) -> Any:
        key = f"JOBSVC_{name}"
        return config[key] if key in config else settings.default_of(key)

    return ConnectionSettings(
        application_name=application_name,
        pool_timeout=setting("POOL_TIMEOUT_SECONDS"),
        statement_timeout_seconds=setting("PG_STATEMENT_TIMEOUT_SECONDS"),
        idle_in_transaction_timeout_seconds=setting("PG_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS"),
        connect_timeout_seconds=setting("PG_CONNECT_TIMEOUT_SECONDS"),
        keepalives_idle_seconds=setting("PG_KEEPALIVES_IDLE_SECONDS"),
        keepalives_interval_seconds=setting("PG_KEEPALIVES_INTERVAL_SECONDS"),
        keepalives_count=setting("PG_KEEPALIVES_COUNT"),
        transaction_pooler=setting("PG_TRANSACTION_POOLER"),
        **pool,
    )


def new_engine(
    database_url: str,
    pool_timeout: float | None = None,
    connection: ConnectionSettings | None = None,
) -> Engine:
    """Return an engine for ``database_url`` with jobsvc's options and connection setup."""
    engine = create_engine(database_url, **engine_options(database_url, pool_timeout, connection))
    configure_engine(engine)
    return engine


def retry_policy(config: Mapping[str, Any]) -> RetryPolicy:
    """Return the backoff policy the settings describe."""
    jitter = random.Random()  # noqa: S311 - jitter, not security
    return RetryPolicy(
        config["JOBSVC_RETRY_BASE_SECONDS"], config["JOBSVC_RETRY_MAX_SECONDS"], jitter
    )


def build_services(
    config: Mapping[str, Any], *, engine: Engine | None = None, clock: Clock = time.monotonic
) -> Services:
    """Build every service from ``config``: engine, migrations, stores, handlers.

    Without ``engine`` a new one is made from ``SQLALCHEMY_DATABASE_URI`` (the worker's, with
    its own pool); the app passes Flask-SQLAlchemy's, so ``flask db`` and the API share one.
    With ``JOBSVC_AUTO_MIGRATE`` pending migrations are applied, under a lock, first.
    """
    owned = engine is None
    if engine is None:
        engine = new_engine(
            config["SQLALCHEMY_DATABASE_URI"],
            config.get("JOBSVC_POOL_TIMEOUT_SECONDS"),
            connection_settings(config, WORKER_NAME, pool_size=WORKER_POOL_SIZE, max_overflow=0),
        )
    configure_engine(engine)
    try:
        if config["JOBSVC_AUTO_MIGRATE"]:
            upgrade(engine)
        handlers = config["JOBSVC_HANDLERS"]
        # Paths come from operator configuration (JOBSVC_HANDLERS / --handlers), never requests.
        job_types = load_handler_modules(handlers) if handlers else None
    except BaseException:
        if owned:
            engine.dispose()
        raise
    return Services(
        config=config,
        engine=engine,
        jobs=JobStore(engine),
        leases=LeaseStore(engine, retry_policy(config)),
        tokens=TokenStore(engine),
        queues=QueueStore(engine),
        overview=OverviewStore(engine),
        deliveries=DeliveryStore(engine, retry_policy(config)),
        registry=registry,
        job_types=job_types,
        clock=clock,
        schedules=ScheduleStore(engine),
        housekeeping=HousekeepingStore(engine),
    )


def wait_for_database(
    build: Callable[[], R], what: str, *, sleep: Callable[[float], None] = time.sleep
) -> R:
    """Return ``build()``, calling it again while the database is not up yet.

    A process that starts before its database (a reboot, a restart in progress) waits, as a
    running one does, instead of exiting with a traceback.
    """
    pause = STARTUP_RETRY_FIRST_SECONDS
    while True:
        try:
            return build()
        except (OperationalError, DatabaseUnavailable) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()
            logger.warning(
                "%s: database unavailable at start-up (%s); retrying in %.1fs",
                what,
                reason[0] if reason else type(exc).__name__,
                pause,
            )
            sleep(pause)
            pause = min(pause * 2, STARTUP_RETRY_MAX_SECONDS)


def log_database(config: Mapping[str, Any], what: str) -> None:
    """Log which database this process uses, its password hidden."""
    logger.info("%s: database %s", what, shown_database(config["SQLALCHEMY_DATABASE_URI"]))
