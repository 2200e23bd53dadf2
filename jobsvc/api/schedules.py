"""The schedules API: the periodic jobs the workers registered, with their next run times.

The API learns schedules from the database (workers upsert theirs when they start), so it
lists them without importing any handler module.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, fields

from ..tokens import SCOPE_READ
from .endpoints import endpoint, json_response
from .state import state

bp = Blueprint("schedules", __name__, url_prefix="/schedules")


class ScheduleSchema(Schema):
    """A periodic job as the workers registered it."""

    name = fields.String(required=True, metadata={"description": "The job type it enqueues."})
    cron = fields.String(allow_none=True, metadata={"description": "Five cron fields, or null."})
    every_seconds = fields.Integer(
        allow_none=True, metadata={"description": "The interval in seconds, or null."}
    )
    timezone = fields.String(metadata={"description": "The IANA zone the cron fields read in."})
    queue = fields.String()
    payload = fields.Raw(metadata={"description": "The payload of each tick's job."})
    last_tick_at = fields.AwareDateTime(
        format="iso", allow_none=True, metadata={"description": "The newest tick enqueued."}
    )
    next_run_at = fields.AwareDateTime(
        format="iso",
        allow_none=True,
        metadata={"description": "The next tick after now, by the database's clock."},
    )
    created_at = fields.AwareDateTime(format="iso")
    seen_at = fields.AwareDateTime(
        format="iso", metadata={"description": "When a worker last registered it."}
    )


class ScheduleListSchema(Schema):
    """What ``GET /schedules`` answers."""

    schedules = fields.List(fields.Nested(ScheduleSchema), required=True)


_schedules = ScheduleSchema(many=True)


@endpoint(
    bp,
    "GET",
    "",
    scope=SCOPE_READ,
    summary="List the periodic jobs the workers registered, with their next run times.",
    operation_id="listSchedules",
    responses={"200": json_response(ScheduleListSchema, "Every schedule, by name.")},
)
def list_schedules() -> Response:
    """List every registered schedule by name, with its next run time."""
    return jsonify({"schedules": _schedules.dump(state().services.schedules.list())})
