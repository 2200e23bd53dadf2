"""The jobs API: validate, one store call, dump."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from marshmallow import Schema, ValidationError

from ..callbacks import CallbackRefused
from ..errors import JobNotFound, ValidationFailed
from ..models import JobStatus
from ..store import JobStore, NewJob
from ..tokens import SCOPE_ADMIN, SCOPE_ENQUEUE, SCOPE_READ
from ..waiting import is_ended
from .body import read_json
from .endpoints import endpoint, json_response
from .quickload import quick_load
from .readable import encode_jobs
from .schemas import (
    AttemptListSchema,
    CreateBatchSchema,
    CreatedBatchSchema,
    CreatedSchema,
    CreateJobSchema,
    JobDetailSchema,
    JobListSchema,
    JobSchema,
    ListQuerySchema,
    WaitQuerySchema,
)
from .state import state

bp = Blueprint("jobs", __name__, url_prefix="/jobs")

JOB_ID_PATTERN = re.compile(r"^[0-9]{1,19}$")
JOB_ID_MAX = 2**63 - 1

_job = JobSchema()
_job_detail = JobDetailSchema()
_attempts = AttemptListSchema()
_wait_query = WaitQuerySchema()
_list_query = ListQuerySchema()
_batch = CreateBatchSchema()
# One encoder for every payload: json.dumps with arguments builds a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))

LOCATION_HEADER = {"Location": {"schema": {"type": "string"}, "description": "The job's URL."}}
JOB_ID_PARAMETER = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": JOB_ID_MAX},
}
_JOB_RESPONSE = {"200": json_response(JobDetailSchema, "The job.")}


def _batch_body(max_batch: int) -> dict[str, Any]:
    return {
        "allOf": [{"$ref": "#/components/schemas/CreateBatchRequest"}],
        "properties": {"jobs": {"maxItems": max_batch}},
    }


def _store() -> JobStore:
    return state().services.jobs


def _parse_job_id(raw: str) -> int:
    # str.isdigit() accepts non-ASCII digits; ids are ASCII digits that fit a signed 64-bit int.
    if not JOB_ID_PATTERN.fullmatch(raw) or int(raw) > JOB_ID_MAX or int(raw) < 1:
        raise JobNotFound(f"no job has id {raw!r}")
    return int(raw)


def _load(schema: Schema, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ValidationFailed(exc.normalized_messages()) from None


def _single_valued_args() -> dict[str, str]:
    # to_dict(flat=True) would keep the first of ?limit=1&limit=500 silently.
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ValidationFailed({name: ["Given more than once."] for name in repeated})
    return request.args.to_dict(flat=True)


def _new_job(fields: dict[str, Any]) -> NewJob:
    config = state().services.config
    payload_json = _COMPACT_JSON.encode(fields["payload"])
    payload_size = len(payload_json)
    if payload_size > config["JOBSVC_MAX_PAYLOAD_BYTES"]:
        raise ValidationFailed(
            {
                "payload": [
                    f"Is {payload_size} bytes as JSON; the limit is "
                    f"{config['JOBSVC_MAX_PAYLOAD_BYTES']}."
                ]
            }
        )
    if fields["max_attempts"] is None:
        fields["max_attempts"] = config["JOBSVC_MAX_ATTEMPTS"]
    if fields["timeout_seconds"] is None and config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"] > 0:
        fields["timeout_seconds"] = config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"]
    if fields["callback_url"] is not None:
        _check_callback(fields["callback_url"])
    return NewJob(**fields, payload_json=payload_json)


def _check_callback(url: str) -> None:
    # Refused here with the reason, and checked again at each delivery (DNS rebinding).
    api = state()
    if not api.services.config["JOBSVC_WEBHOOK_SECRET"]:
        raise ValidationFailed(
            {"callback_url": ["Webhooks are off: JOBSVC_WEBHOOK_SECRET is not set."]}
        )
    try:
        api.callback_policy.check(url)
    except CallbackRefused as exc:
        raise ValidationFailed({"callback_url": [f"Refused: {exc.message}."]}) from None


def _load_job(item: Any) -> NewJob:
    api = state()
    fields = quick_load(item, api.services.job_types)
    return _new_job(fields if fields is not None else _load(api.create_schema, item))


def _body() -> Any:
    return read_json(request, state().services.config["JOBSVC_MAX_JSON_DEPTH"])


@endpoint(
    bp,
    "POST",
    "",
    scope=SCOPE_ENQUEUE,
    summary="Enqueue one job.",
    operation_id="createJob",
    body=CreateJobSchema,
    responses={"201": json_response(CreatedSchema, "Stored as PENDING.", headers=LOCATION_HEADER)},
)
def create_job() -> Response:
    """Enqueue one job."""
    new_job = _load_job(_body())
    state().ready_cap.admit([new_job])
    (job_id,) = _store().enqueue([new_job])
    # CreatedSchema's shape and get_job's URL, written directly: jsonify and url_for were a
    # fifth of the request's own cost. job_id is an int, so the JSON needs no escaping.
    body = f'{{"id":{job_id},"status":"{JobStatus.PENDING.value}"}}\n'
    location = f"{request.script_root}{bp.url_prefix}/{job_id}"
    return current_app.response_class(
        body, 201, {"Location": location}, mimetype="application/json"
    )


@endpoint(
    bp,
    "POST",
    "/batch",
    scope=SCOPE_ENQUEUE,
    summary="Enqueue many jobs in one transaction: all or none.",
    operation_id="createJobs",
    body=_batch_body,
    responses={"201": json_response(CreatedBatchSchema, "All stored.")},
)
def create_jobs() -> tuple[Response, int]:
    """Enqueue many jobs in one transaction: all of them or, on any error, none."""
    body = _body()
    if (
        type(body) is dict
        and body.keys() == {"jobs"}
        and type(body["jobs"]) is list
        and None not in body["jobs"]
    ):
        items = body["jobs"]  # what CreateBatchSchema would return, without a call per item
    else:
        items = _load(_batch, body)["jobs"]
    limit = state().services.config["JOBSVC_MAX_BATCH_JOBS"]
    if not 1 <= len(items) <= limit:
        raise ValidationFailed({"jobs": [f"Must hold 1 to {limit} jobs; it holds {len(items)}."]})
    new_jobs, errors = [], {}
    for index, item in enumerate(items):
        try:
            new_jobs.append(_load_job(item))
        except ValidationFailed as exc:
            errors[str(index)] = exc.errors
    if errors:
        raise ValidationFailed({"jobs": errors})
    state().ready_cap.admit(new_jobs)
    ids = _store().enqueue(new_jobs)
    # CreatedSchema's shape, built directly: dumping it per job cost a tenth of the request.
    status = JobStatus.PENDING.value
    return jsonify({"jobs": [{"id": job_id, "status": status} for job_id in ids]}), 201


@endpoint(
    bp,
    "GET",
    "/<jobid:job_id>",
    scope=SCOPE_READ,
    summary="Show one job.",
    operation_id="getJob",
    path_parameters=(JOB_ID_PARAMETER,),
    query=WaitQuerySchema,
    responses=_JOB_RESPONSE,
    errors=("404", "422"),
)
def get_job(job_id: str) -> Response:
    """Show one job; with ``?wait=N``, as soon as it ended or after N seconds."""
    jid = _parse_job_id(job_id)
    wait = _wait_seconds() if "wait" in request.args else None
    if not wait:
        return _one_job(_job_detail.dump(_store().get(jid)))
    record = state().ended_jobs.wait_for(jid, wait, lambda: _store().get(jid), is_ended)
    return _one_job(_job_detail.dump(record))


def _wait_seconds() -> float:
    wait = _load(_wait_query, _single_valued_args())["wait"]
    limit = state().services.config["JOBSVC_MAX_WAIT_SECONDS"]
    if wait is None or wait > limit:
        raise ValidationFailed(
            {
                "wait": [
                    f"Must be a number of seconds from 0 to {limit:g} (JOBSVC_MAX_WAIT_SECONDS)."
                ]
            }
        )
    return wait


def _one_job(job: dict[str, Any]) -> Response:
    holder = [job]
    return encode_jobs(lambda _: jsonify(holder[0]), holder, lambda found: found)


@endpoint(
    bp,
    "GET",
    "",
    scope=SCOPE_READ,
    summary="List jobs newest first.",
    operation_id="listJobs",
    query=ListQuerySchema,
    errors=("422",),
    responses={"200": json_response(JobListSchema, "A page of jobs.")},
)
def list_jobs() -> Response:
    """List jobs newest first, filtered by status, queue or type; page with ``before``."""
    query = _load(_list_query, _single_valued_args())
    records = _store().list(**query)
    next_url = None
    if len(records) == query["limit"]:
        args = {**request.args.to_dict(flat=True), "before": records[-1].id}
        next_url = url_for("jobs.list_jobs", **args)
    body = {"jobs": _job.dump(records, many=True), "next": next_url}
    return encode_jobs(jsonify, body, lambda found: found["jobs"])


@endpoint(
    bp,
    "POST",
    "/<jobid:job_id>/cancel",
    scope=SCOPE_ADMIN,
    summary="Cancel a PENDING or RUNNING job.",
    operation_id="cancelJob",
    path_parameters=(JOB_ID_PARAMETER,),
    responses=_JOB_RESPONSE,
    errors=("404", "409"),
)
def cancel_job(job_id: str) -> Response:
    """Cancel a PENDING or RUNNING job."""
    return _one_job(_job_detail.dump(_store().cancel(_parse_job_id(job_id))))


@endpoint(
    bp,
    "POST",
    "/<jobid:job_id>/retry",
    scope=SCOPE_ADMIN,
    summary="Send a FAILED or CANCELLED job back to PENDING.",
    operation_id="retryJob",
    path_parameters=(JOB_ID_PARAMETER,),
    responses=_JOB_RESPONSE,
    errors=("404", "409"),
)
def retry_job(job_id: str) -> Response:
    """Send a FAILED or CANCELLED job back to PENDING with its attempts reset."""
    return _one_job(_job_detail.dump(_store().retry(_parse_job_id(job_id))))


@endpoint(
    bp,
    "GET",
    "/<jobid:job_id>/attempts",
    scope=SCOPE_READ,
    summary="List a job's ended attempts, oldest first.",
    operation_id="listJobAttempts",
    path_parameters=(JOB_ID_PARAMETER,),
    responses={"200": json_response(AttemptListSchema, "Its attempts.")},
    errors=("404",),
)
def list_attempts(job_id: str) -> Response:
    """List a job's ended attempts: number, worker, start, end, outcome and error."""
    return jsonify(_attempts.dump({"attempts": _store().attempts(_parse_job_id(job_id))}))
