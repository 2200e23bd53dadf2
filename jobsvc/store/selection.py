"""Which jobs a bulk action or a listing means: ids and filters, as one SQL condition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, true

from ..models import Job, JobStatus

jobs = Job.__table__

BULK_BATCH_MAX = 10_000  # jobs one bulk call changes at most; the answer says if more remain


@dataclass(frozen=True)
class JobSelection:
    """Jobs by id and by filter; every given part must hold (none given: every job)."""

    ids: tuple[int, ...] | None = None
    status: JobStatus | None = None
    queue: str | None = None
    job_type: str | None = None
    created_after: datetime | None = None  # exclusive
    created_before: datetime | None = None  # exclusive

    def condition(self) -> Any:
        """Return the WHERE condition that selects these jobs."""
        parts = []
        if self.ids is not None:
            parts.append(jobs.c.id.in_(self.ids))
        if self.status is not None:
            parts.append(jobs.c.status == self.status)
        if self.queue is not None:
            parts.append(jobs.c.queue == self.queue)
        if self.job_type is not None:
            parts.append(jobs.c.type == self.job_type)
        if self.created_after is not None:
            parts.append(jobs.c.created_at > self.created_after)
        if self.created_before is not None:
            parts.append(jobs.c.created_at < self.created_before)
        return and_(true(), *parts)


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: how many jobs it changed, and whether more match still."""

    count: int
    more: bool
