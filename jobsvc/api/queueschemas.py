"""Marshmallow schemas of the queues API: what PUT /queues/{name} takes, what a queue shows."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..models import JobStatus
from .fields import StrictInteger, StrictNumber

CONCURRENCY_RANGE = (1, 100_000)  # attempts of one queue running at once, across all workers
RATE_JOBS_RANGE = (1, 1_000_000)  # starts per window
RATE_WINDOW_RANGE_SECONDS = (0.001, 86_400.0)  # a window of a millisecond to a day


class RateLimitSchema(Schema):
    """At most ``jobs`` starts in each window of ``per_seconds`` (a fixed window)."""

    class Meta:
        unknown = RAISE

    jobs = StrictInteger(required=True, validate=validate.Range(*RATE_JOBS_RANGE))
    per_seconds = StrictNumber(required=True, validate=validate.Range(*RATE_WINDOW_RANGE_SECONDS))


class QueueSettingsSchema(Schema):
    """The body of ``PUT /queues/{name}``: a limit given is set, ``null`` removes it, one left
    out stays as it is (``{}`` changes nothing)."""

    class Meta:
        unknown = RAISE

    concurrency = StrictInteger(
        allow_none=True,
        validate=validate.Range(*CONCURRENCY_RANGE),
        metadata={"description": "Attempts running at once across all workers; null: no limit."},
    )
    rate_limit = fields.Nested(
        RateLimitSchema,
        allow_none=True,
        metadata={"description": "Starts per window across all workers; null: no limit."},
    )


class QueueSchema(Schema):
    """A queue: its settings and what its jobs are doing now."""

    name = fields.String(required=True)
    paused = fields.Boolean(required=True)
    concurrency = fields.Integer(required=True, allow_none=True)
    rate_limit = fields.Nested(RateLimitSchema, required=True, allow_none=True)
    counts = fields.Dict(
        keys=fields.String(validate=validate.OneOf([s.value for s in JobStatus])),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Jobs by status, every status present."},
    )
    running = fields.Integer(required=True, metadata={"description": "Attempts running now."})
    ready = fields.Integer(
        required=True, metadata={"description": "PENDING jobs due now (not waiting for run_at)."}
    )
    oldest_ready_age_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "How long the oldest ready job has been due; null if none."},
    )


class QueueListSchema(Schema):
    """What ``GET /queues`` answers."""

    queues = fields.List(fields.Nested(QueueSchema), required=True)
