"""The jobsvc worker: ``python -m worker`` leases jobs and runs their registered handlers."""

from __future__ import annotations

from .context import JobContext
from .errors import PermanentError
from .registry import handler

__all__ = ["JobContext", "PermanentError", "handler"]
