"""Marshmallow schemas: what a request may say, and what a response shows."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from ..jobfields import ENQUEUE_FIELDS, EXCLUSIVE_FIELDS, QUEUE_NAME_PATTERN, JobField
from ..models import IDEMPOTENCY_KEY_MAX, QUEUE_NAME_MAX, JobStatus
from ..registry import TYPE_NAME_PATTERN
from ..store.selection import BULK_BATCH_MAX, JobSelection
from .fields import (
    BoundedDateTime,
    IdList,
    JSONObject,
    QueryInteger,
    StrictInteger,
    StrictNumber,
    StrictString,
)

LIST_LIMIT_MAX = 500
# Visible ASCII and spaces: what an HTTP header carries unchanged (UUIDs, ULIDs, "order-42").
IDEMPOTENCY_KEY_PATTERN = re.compile(rf"^[\x20-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}$")
IDEMPOTENCY_KEY_RULE = f"Must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters or spaces."


def _marshmallow_field(field: JobField) -> fields.Field:
    presence: dict[str, Any] = (
        {"required": True} if field.required else {"load_default": field.default}
    )
    if field.nullable:
        presence["allow_none"] = True
    metadata = {
        key: value
        for key, value in (("pattern", field.openapi_pattern), ("description", field.description))
        if value
    }
    if metadata:
        presence["metadata"] = metadata
    if field.kind == "string":
        return StrictString(pattern=field.pattern, description=field.invalid_message, **presence)
    if field.kind == "object":
        return JSONObject(**presence)
    if field.kind == "integer":
        return StrictInteger(validate=validate.Range(*field.bounds), **presence)
    if field.kind == "number":
        return StrictNumber(validate=validate.Range(*field.bounds), **presence)
    if field.kind == "date-time":
        earliest, latest = field.bounds
        return BoundedDateTime(earliest=earliest, latest=latest, **presence)
    if field.kind == "id-list":
        return IdList(bounds=field.bounds, max_items=field.max_items, **presence)
    raise ValueError(f"no marshmallow field for JSON kind {field.kind!r}")


_EnqueueFields = Schema.from_dict(
    {field.name: _marshmallow_field(field) for field in ENQUEUE_FIELDS}
)


class CreateJobSchema(_EnqueueFields):  # type: ignore[misc,valid-type]
    """The body of ``POST /jobs``: the fields of ``jobsvc.jobfields.ENQUEUE_FIELDS``."""

    class Meta:
        unknown = RAISE

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

    @validates_schema
    def _one_of_each_pair(self, data: dict[str, Any], **kwargs: Any) -> None:
        for first, second in EXCLUSIVE_FIELDS:
            if data.get(first) is not None and data.get(second) is not None:
                message = f"Give {first} or {second}, not both."
                raise ValidationError({first: [message], second: [message]})


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
    original_priority = fields.Integer(
        allow_none=True,
        metadata={"description": "The priority asked for, once priority aging raised it."},
    )
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
    unique_key = fields.String(allow_none=True)
    waiting_on = fields.List(
        fields.Integer(),
        metadata={
            "description": "Ids of the jobs in its depends_on that are not DONE yet; while any "
            "is listed, a PENDING job is not claimed."
        },
    )
    callback_url = fields.String(allow_none=True)


_JOB_FIELD_NAME = "(" + "|".join(JobSchema._declared_fields) + ")"
# A comma-separated list of JobSchema's fields: the document then says which names exist.
FIELD_LIST_PATTERN = re.compile(rf"^{_JOB_FIELD_NAME}(,{_JOB_FIELD_NAME})*$")


class DeliverySchema(Schema):
    """Where a job's completion webhook is."""

    status = fields.String(
        validate=validate.OneOf(["pending", "delivered", "failed"]),
        metadata={"description": "pending (not delivered yet), delivered (2xx) or failed."},
    )
    attempts = fields.Integer(metadata={"description": "POSTs tried so far."})
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.AwareDateTime(format="iso")
    delivered_at = fields.AwareDateTime(format="iso", allow_none=True)


class JobDetailSchema(JobSchema):
    """A single job, with the traceback of its last failed attempt and its webhook's state."""

    error_traceback = fields.String(allow_none=True)
    webhook = fields.Nested(
        DeliverySchema,
        attribute="delivery",
        allow_none=True,
        metadata={"description": "Its completion webhook, once it ended with a callback_url."},
    )


class AttemptSchema(Schema):
    """One ended attempt of a job."""

    attempt = fields.Integer()
    worker = fields.String(allow_none=True)
    started_at = fields.AwareDateTime(format="iso", allow_none=True)
    finished_at = fields.AwareDateTime(format="iso")
    outcome = fields.String(
        validate=validate.OneOf(
            ["succeeded", "failed", "timed_out", "lease_lost", "cancelled", "released"]
        )
    )
    error_type = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)


class AttemptListSchema(Schema):
    """What ``GET /jobs/{job_id}/attempts`` answers: the ended attempts, oldest first."""

    attempts = fields.List(fields.Nested(AttemptSchema), required=True)


class CreatedSchema(Schema):
    """What ``POST /jobs`` answers: the seed's ``{"id", "status"}``, and why none was created."""

    id = fields.Integer()
    status = fields.Enum(
        JobStatus,
        by_value=True,
        allow_none=True,
        metadata={"description": "The job's status now; null if it was pruned since."},
    )
    duplicate = fields.Boolean(
        metadata={"description": "True: an active job holds this unique_key; this is that job."}
    )
    replayed = fields.Boolean(
        metadata={"description": "True: this idempotency key created this job before."}
    )


class ListQuerySchema(Schema):
    """The query string of ``GET /jobs``."""

    class Meta:
        unknown = RAISE

    status = fields.Enum(JobStatus, by_value=True, load_default=None)
    queue = StrictString(
        load_default=None,
        pattern=QUEUE_NAME_PATTERN,
        description=f"Must be 1 to {QUEUE_NAME_MAX} letters, digits or _ . : -",
    )
    type = StrictString(
        load_default=None, pattern=TYPE_NAME_PATTERN, description="Must be a job type name."
    )
    limit = QueryInteger(load_default=50, validate=validate.Range(1, LIST_LIMIT_MAX))
    before = QueryInteger(load_default=None, validate=validate.Range(1, 2**63 - 1))
    created_after = fields.AwareDateTime(
        load_default=None, metadata={"description": "Only jobs created after this time."}
    )
    created_before = fields.AwareDateTime(
        load_default=None, metadata={"description": "Only jobs created before this time."}
    )
    fields_ = StrictString(
        data_key="fields",
        attribute="fields",
        load_default=None,
        pattern=FIELD_LIST_PATTERN,
        description="Must be job field names separated by commas: "
        + ", ".join(JobSchema._declared_fields),
        metadata={
            "description": "Show only these fields of each job (comma-separated), e.g. "
            "id,status,type to leave out payloads and results."
        },
    )

    @validates("fields_")
    def _known_fields(self, value: str | None, **kwargs: Any) -> None:
        if value is None:
            return
        unknown = sorted(set(value.split(",")) - set(JobSchema._declared_fields))
        if unknown:
            raise ValidationError(
                f"Unknown job fields: {', '.join(unknown)}; jobs have "
                f"{', '.join(JobSchema._declared_fields)}."
            )

    @post_load
    def _rename(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["job_type"] = data.pop("type")
        data["before_id"] = data.pop("before")
        shown = data.pop("fields")
        data["shown"] = None if shown is None else tuple(dict.fromkeys(shown.split(",")))
        return data


class BulkActionSchema(Schema):
    """The body of ``POST /jobs/cancel`` and ``POST /jobs/retry``: ids, a filter, or both."""

    class Meta:
        unknown = RAISE

    ids = fields.List(
        StrictInteger(validate=validate.Range(1, 2**63 - 1)),
        load_default=None,
        allow_none=False,
        validate=validate.Length(1, BULK_BATCH_MAX),
        metadata={"description": f"These jobs (at most {BULK_BATCH_MAX})."},
    )
    status = fields.Enum(JobStatus, by_value=True, load_default=None, allow_none=False)
    queue = StrictString(
        load_default=None,
        allow_none=False,
        pattern=QUEUE_NAME_PATTERN,
        description=f"Must be 1 to {QUEUE_NAME_MAX} letters, digits or _ . : -",
    )
    type = StrictString(
        load_default=None,
        allow_none=False,
        pattern=TYPE_NAME_PATTERN,
        description="Must be a job type name.",
    )
    created_after = fields.AwareDateTime(load_default=None, allow_none=False)
    created_before = fields.AwareDateTime(load_default=None, allow_none=False)

    @validates_schema
    def _says_which(self, data: dict[str, Any], **kwargs: Any) -> None:
        if all(value is None for value in data.values()):
            raise ValidationError(
                "Give ids, or a filter (status, queue, type, created_after, created_before); "
                "an empty body would select every job."
            )

    @post_load
    def _selection(self, data: dict[str, Any], **kwargs: Any) -> JobSelection:
        ids = data.pop("ids")
        return JobSelection(
            ids=None if ids is None else tuple(ids), job_type=data.pop("type"), **data
        )


class BulkResultSchema(Schema):
    """What a bulk action answers."""

    count = fields.Integer(
        required=True, metadata={"description": "How many jobs this call changed."}
    )
    more = fields.Boolean(
        required=True,
        metadata={
            "description": f"True if more jobs match: call again (at most "
            f"{BULK_BATCH_MAX} per call)."
        },
    )


class CreateBatchItemSchema(CreateJobSchema):
    """One item of ``POST /jobs/batch``, as documented: a ``CreateJob`` and its own key."""

    idempotency_key = StrictString(
        load_default=None,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=IDEMPOTENCY_KEY_RULE,
        metadata={
            "description": "As the Idempotency-Key header of POST /jobs, for this item: the "
            "same key and item again answer the job it created (replayed: true)."
        },
    )


class WaitQuerySchema(Schema):
    """The query string of ``GET /jobs/{job_id}``."""

    class Meta:
        unknown = RAISE  # as GET /jobs: an unknown parameter is 422, never ignored

    wait = fields.Float(
        load_default=None,
        allow_nan=False,
        validate=validate.Range(0, 3600),
        metadata={
            "description": "Seconds to wait for the job to end (at most "
            "JOBSVC_MAX_WAIT_SECONDS, 60 by default): the answer comes as soon as it is DONE, "
            "FAILED or CANCELLED, else after that long with its current state."
        },
    )


class CreateBatchRequestSchema(Schema):
    """The body of ``POST /jobs/batch``, as documented (each item is a ``CreateBatchItem``)."""

    jobs = fields.List(
        fields.Nested(CreateBatchItemSchema), required=True, validate=validate.Length(min=1)
    )


class CreatedBatchSchema(Schema):
    """What ``POST /jobs/batch`` answers."""

    jobs = fields.List(fields.Nested(CreatedSchema), required=True)


class JobListSchema(Schema):
    """A page of ``GET /jobs``."""

    jobs = fields.List(fields.Nested(JobSchema), required=True)
    next = fields.String(
        required=True, allow_none=True, metadata={"description": "URL of the next page, or null."}
    )


class HealthSchema(Schema):
    """What ``GET /health`` answers when the database answers."""

    status = fields.String(required=True, validate=validate.OneOf(["ok"]))
