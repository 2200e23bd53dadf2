"""The queues API: list and show queues, set their limits, pause and resume them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import ValidationError

from ..errors import QueueNotFound, ValidationFailed
from ..jobfields import QUEUE_NAME_PATTERN
from ..models import QUEUE_NAME_MAX
from ..store import KEEP, QueueStore, RateLimit
from ..tokens import SCOPE_ADMIN, SCOPE_READ
from .body import read_json
from .endpoints import endpoint, json_response
from .queueschemas import QueueListSchema, QueueSchema, QueueSettingsSchema
from .state import state

bp = Blueprint("queues", __name__, url_prefix="/queues")

_queue = QueueSchema()
_settings = QueueSettingsSchema()
NAME_RULE = f"1 to {QUEUE_NAME_MAX} letters, digits or _ . : -"
QUEUE_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": QUEUE_NAME_PATTERN.pattern},
}
_QUEUE_RESPONSE = {"200": json_response(QueueSchema, "The queue.")}


def _store() -> QueueStore:
    return state().services.queues


def _name_to_find(name: str) -> str:
    if not QUEUE_NAME_PATTERN.fullmatch(name):
        raise QueueNotFound(f"no queue is named {name!r}: queue names are {NAME_RULE}")
    return name


def _name_to_set(name: str) -> str:
    # Setting something on a queue may create its row: a bad name is the client's input error.
    if not QUEUE_NAME_PATTERN.fullmatch(name):
        raise ValidationFailed({"name": [f"Must be {NAME_RULE}."]})
    return name


@endpoint(
    bp,
    "GET",
    "",
    scope=SCOPE_READ,
    summary="List queues: their settings, job counts, running attempts, oldest ready job.",
    operation_id="listQueues",
    responses={"200": json_response(QueueListSchema, "Every queue with jobs or settings.")},
)
def list_queues() -> Response:
    """List every queue that has jobs or settings, by name."""
    return jsonify({"queues": _queue.dump(_store().list(), many=True)})


@endpoint(
    bp,
    "GET",
    "/<name>",
    scope=SCOPE_READ,
    summary="Show one queue.",
    operation_id="getQueue",
    path_parameters=(QUEUE_NAME_PARAMETER,),
    responses=_QUEUE_RESPONSE,
    errors=("404",),
)
def get_queue(name: str) -> Response:
    """Show one queue."""
    return jsonify(_queue.dump(_store().get(_name_to_find(name))))


@endpoint(
    bp,
    "PUT",
    "/<name>",
    scope=SCOPE_ADMIN,
    summary="Set a queue's concurrency and rate limit (null removes one; one left out stays).",
    operation_id="configureQueue",
    path_parameters=(QUEUE_NAME_PARAMETER,),
    body=QueueSettingsSchema,
    responses=_QUEUE_RESPONSE,
)
def configure_queue(name: str) -> Response:
    """Set a queue's limits; a limit given as null is removed, one left out is kept."""
    name = _name_to_set(name)
    body = read_json(request, state().services.config["JOBSVC_MAX_JSON_DEPTH"])
    settings = _load_settings(body)
    rate = settings.get("rate_limit", KEEP)
    if rate is not None and rate is not KEEP:
        rate = RateLimit(rate["jobs"], float(rate["per_seconds"]))
    stats = _store().configure(name, concurrency=settings.get("concurrency", KEEP), rate_limit=rate)
    return jsonify(_queue.dump(stats))


def _load_settings(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed({"_schema": ["Send a JSON object."]})
    try:
        return _settings.load(body)
    except ValidationError as exc:
        raise ValidationFailed(exc.normalized_messages()) from None


@endpoint(
    bp,
    "POST",
    "/<name>/pause",
    scope=SCOPE_ADMIN,
    summary="Pause a queue: no new attempt starts; running ones finish; enqueue still works.",
    operation_id="pauseQueue",
    path_parameters=(QUEUE_NAME_PARAMETER,),
    responses=_QUEUE_RESPONSE,
    errors=("422",),
)
def pause_queue(name: str) -> Response:
    """Pause a queue (it need not have jobs yet)."""
    return jsonify(_queue.dump(_store().set_paused(_name_to_set(name), True)))


@endpoint(
    bp,
    "POST",
    "/<name>/resume",
    scope=SCOPE_ADMIN,
    summary="Resume a paused queue.",
    operation_id="resumeQueue",
    path_parameters=(QUEUE_NAME_PARAMETER,),
    responses=_QUEUE_RESPONSE,
    errors=("422",),
)
def resume_queue(name: str) -> Response:
    """Resume a paused queue."""
    return jsonify(_queue.dump(_store().set_paused(_name_to_set(name), False)))
