"""Every statement that reads or writes jobs; one method is one transaction."""

from __future__ import annotations

from .dialects import Dialect, dialect_for
from .dialects.base import ConnectionSettings, PollingWaker
from .engine import configure_engine, engine_options, worker_engine
from .idempotency import IdempotencyClaim
from .jobs import JobStore
from .leases import ClaimedJobs, LeaseStore, ready_since
from .notify import Waker, open_waker
from .overview import BusyWorker, FinishedMinute, OverviewStore, ReadyQueue
from .queues import KEEP, QueueLimits, QueueStats, QueueStore, RateLimit
from .records import (
    ClaimedJob,
    Enqueued,
    Failed,
    JobRecord,
    Lease,
    NewJob,
    Outcome,
    Released,
    Rescued,
    Succeeded,
    TokenRecord,
)
from .selection import BULK_BATCH_MAX, BulkResult, JobSelection
from .tokens import TokenNameTaken, TokenStore

__all__ = [
    "KEEP",
    "BULK_BATCH_MAX",
    "BulkResult",
    "JobSelection",
    "BusyWorker",
    "FinishedMinute",
    "OverviewStore",
    "ReadyQueue",
    "ClaimedJob",
    "ClaimedJobs",
    "QueueLimits",
    "QueueStats",
    "QueueStore",
    "RateLimit",
    "ConnectionSettings",
    "Dialect",
    "Enqueued",
    "Failed",
    "IdempotencyClaim",
    "JobRecord",
    "JobStore",
    "Lease",
    "LeaseStore",
    "NewJob",
    "Outcome",
    "PollingWaker",
    "Released",
    "Rescued",
    "Succeeded",
    "Waker",
    "configure_engine",
    "dialect_for",
    "engine_options",
    "open_waker",
    "ready_since",
    "worker_engine",
    "TokenNameTaken",
    "TokenRecord",
    "TokenStore",
]
