"""Every statement that reads or writes jobs; one method is one transaction."""

from __future__ import annotations

from .dialects import Dialect, dialect_for
from .dialects.base import ConnectionSettings, PollingWaker
from .engine import configure_engine, engine_options, worker_engine
from .jobs import JobStore
from .leases import LeaseStore
from .notify import Waker, open_waker
from .records import (
    ClaimedJob,
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
from .tokens import TokenNameTaken, TokenStore

__all__ = [
    "ClaimedJob",
    "ConnectionSettings",
    "Dialect",
    "Failed",
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
    "worker_engine",
    "TokenNameTaken",
    "TokenRecord",
    "TokenStore",
]
