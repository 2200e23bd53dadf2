"""Marshmallow schemas: what a request may say, and what a response shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates

from ..models import QUEUE_NAME_MAX, JobStatus
from ..registry import TYPE_NAME_PATTERN
from .fields import (
    BoundedDateTime,
    JSONObject,
    QueryInteger,
    StrictInteger,
    StrictNumber,
    StrictString,
)

QUEUE_NAME_PATTERN = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{QUEUE_NAME_MAX}}}$")
PRIORITY_RANGE = (-1_000_000, 1_000_000)
MAX_ATTEMPTS_RANGE = (1, 1000)
TIMEOUT_RANGE_SECONDS = (0.001, 7 * 24 * 3600.0)
LIST_LIMIT_MAX = 500
RUN_AT_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
RUN_AT_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
# For the OpenAPI document: JSON Schema cannot bound a date-time, but it can bound its year.
RUN_AT_YEAR_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3})-"


class CreateJobSchema(Schema):
    """The body of ``POST /jobs``."""

    class Meta:
        unknown = RAISE

    type = StrictString(
        required=True, pattern=TYPE_NAME_PATTERN,
        description="Must start with a letter or _, then up to 127 letters, digits or _ . : -",
    )
    payload = JSONObject(load_default=dict)
    queue = StrictString(
        load_default="default", pattern=QUEUE_NAME_PATTERN,
        description=f"Must be 1 to {QUEUE_NAME_MAX} letters, digits or _ . : -",
    )
    priority = StrictInteger(load_default=0, validate=validate.Range(*PRIORITY_RANGE))
    run_at = BoundedDateTime(
        load_default=None, allow_none=True, earliest=RUN_AT_EARLIEST, latest=RUN_AT_LATEST,
        metadata={"pattern": RUN_AT_YEAR_PATTERN,
                  "description": "ISO-8601 with an offset, from 1970 to before 9000 (UTC)."},
    )
    max_attempts = StrictInteger(load_default=None, allow_none=True,
                                 validate=validate.Range(*MAX_ATTEMPTS_RANGE))
    timeout_seconds = StrictNumber(load_default=None, allow_none=True,
                                   validate=validate.Range(*TIMEOUT_RANGE_SECONDS))

    def __init__(self, *, known_types: frozenset[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.known_types = known_types

    @validates("type")
    def _known_type(self, value: str, **kwargs: Any) -> None:
        if self.known_types is not None and value not in self.known_types:
            raise ValidationError(
                f"Unknown job type {value!r}; this service runs: "
                f"{', '.join(sorted(self.known_types)) or 'no types'}."
            )


class CreateBatchSchema(Schema):
    """The body of ``POST /jobs/batch``."""

    class Meta:
        unknown = RAISE

    jobs = fields.List(fields.Raw(), required=True)


class JobSchema(Schema):
    """A job as the API shows it: the seed's fields first, then the rest."""

    id = fields.Integer()
    type = fields.String()
    status = fields.Enum(JobStatus, by_value=True)
    attempts = fields.Integer()
    result = fields.Raw()
    last_error = fields.String(allow_none=True)
    error_type = fields.String(allow_none=True)
    queue = fields.String()
    priority = fields.Integer()
    payload = fields.Raw()
    max_attempts = fields.Integer()
    timeout_seconds = fields.Float(allow_none=True)
    run_at = fields.AwareDateTime(format="iso")
    created_at = fields.AwareDateTime(format="iso")
    started_at = fields.AwareDateTime(format="iso", allow_none=True)
    finished_at = fields.AwareDateTime(format="iso", allow_none=True)
    updated_at = fields.AwareDateTime(format="iso")
    locked_by = fields.String(allow_none=True)
    lease_expires_at = fields.AwareDateTime(format="iso", allow_none=True)


class JobDetailSchema(JobSchema):
    """A single job, with the traceback of its last failed attempt."""

    error_traceback = fields.String(allow_none=True)


class CreatedSchema(Schema):
    """What ``POST /jobs`` answers: the seed's ``{"id", "status"}``."""

    id = fields.Integer()
    status = fields.Enum(JobStatus, by_value=True)


class ListQuerySchema(Schema):
    """The query string of ``GET /jobs``."""

    class Meta:
        unknown = RAISE

    status = fields.Enum(JobStatus, by_value=True, load_default=None)
    queue = StrictString(load_default=None, pattern=QUEUE_NAME_PATTERN,
                         description=f"Must be 1 to {QUEUE_NAME_MAX} letters, digits or _ . : -")
    type = StrictString(load_default=None, pattern=TYPE_NAME_PATTERN,
                        description="Must be a job type name.")
    limit = QueryInteger(load_default=50, validate=validate.Range(1, LIST_LIMIT_MAX))
    before = QueryInteger(load_default=None, validate=validate.Range(1, 2**63 - 1))

    @post_load
    def _rename(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["job_type"] = data.pop("type")
        data["before_id"] = data.pop("before")
        return data
