"""The jobs API: validate, one store call, dump."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from marshmallow import Schema, ValidationError

from ..errors import JobNotFound, ValidationFailed
from ..models import JobStatus
from ..store import JobStore, NewJob
from .body import read_json
from .limits import admit
from .quickload import quick_load
from .schemas import (
    CreateBatchSchema,
    CreateJobSchema,
    JobDetailSchema,
    JobSchema,
    ListQuerySchema,
)

bp = Blueprint("jobs", __name__, url_prefix="/jobs")

JOB_ID_PATTERN = re.compile(r"^[0-9]{1,19}$")
JOB_ID_MAX = 2**63 - 1

_job = JobSchema()
_job_detail = JobDetailSchema()
_list_query = ListQuerySchema()
_batch = CreateBatchSchema()
# One encoder for every payload: json.dumps with arguments builds a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _store() -> JobStore:
    return current_app.extensions["jobsvc.store"]


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
    config = current_app.config
    payload_json = _COMPACT_JSON.encode(fields["payload"])
    payload_size = len(payload_json)
    if payload_size > config["JOBSVC_MAX_PAYLOAD_BYTES"]:
        raise ValidationFailed(
            {"payload": [f"Is {payload_size} bytes as JSON; the limit is "
                         f"{config['JOBSVC_MAX_PAYLOAD_BYTES']}."]}
        )
    if fields["max_attempts"] is None:
        fields["max_attempts"] = config["JOBSVC_MAX_ATTEMPTS"]
    if fields["timeout_seconds"] is None and config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"] > 0:
        fields["timeout_seconds"] = config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"]
    return NewJob(**fields, payload_json=payload_json)


def _load_job(item: Any) -> NewJob:
    fields = quick_load(item, current_app.extensions["jobsvc.job_types"])
    return _new_job(fields if fields is not None else _load(_create_schema(), item))


def _create_schema() -> CreateJobSchema:
    # Built once per app: a marshmallow Schema deep-copies its fields on construction, which
    # cost more than validating the job. Loading does not mutate it, so threads may share it.
    schema = current_app.extensions.get("jobsvc.create_schema")
    if schema is None:
        schema = CreateJobSchema(known_types=current_app.extensions["jobsvc.job_types"])
        current_app.extensions["jobsvc.create_schema"] = schema
    return schema


def _body() -> Any:
    return read_json(request, current_app.config["JOBSVC_MAX_JSON_DEPTH"])


@bp.post("")
def create_job() -> Response:
    """Enqueue one job."""
    new_job = _load_job(_body())
    admit([new_job])
    (job_id,) = _store().enqueue([new_job])
    # CreatedSchema's shape and get_job's URL, written directly: jsonify and url_for were a
    # fifth of the request's own cost. job_id is an int, so the JSON needs no escaping.
    body = f'{{"id":{job_id},"status":"{JobStatus.PENDING.value}"}}\n'
    location = f"{request.script_root}{bp.url_prefix}/{job_id}"
    return current_app.response_class(body, 201, {"Location": location},
                                      mimetype="application/json")


@bp.post("/batch")
def create_jobs() -> tuple[Response, int]:
    """Enqueue many jobs in one transaction: all of them or, on any error, none."""
    body = _body()
    if type(body) is dict and body.keys() == {"jobs"} and type(body["jobs"]) is list \
            and None not in body["jobs"]:
        items = body["jobs"]  # what CreateBatchSchema would return, without a call per item
    else:
        items = _load(_batch, body)["jobs"]
    limit = current_app.config["JOBSVC_MAX_BATCH_JOBS"]
    if not 1 <= len(items) <= limit:
        raise ValidationFailed({"jobs": [f"Must hold 1 to {limit} jobs; it holds {len(items)}."]})
    new_jobs, errors = [], {}
    for index, item in enumerate(items):
        try:
            new_jobs.append(_load_job(item))
        except ValidationFailed as exc:
            errors[str(index)] = exc.extra["errors"]
    if errors:
        raise ValidationFailed({"jobs": errors})
    admit(new_jobs)
    ids = _store().enqueue(new_jobs)
    # CreatedSchema's shape, built directly: dumping it per job cost a tenth of the request.
    status = JobStatus.PENDING.value
    return jsonify({"jobs": [{"id": job_id, "status": status} for job_id in ids]}), 201


@bp.get("/<jobid:job_id>")
def get_job(job_id: str) -> Response:
    """Show one job."""
    return jsonify(_job_detail.dump(_store().get(_parse_job_id(job_id))))


@bp.get("")
def list_jobs() -> Response:
    """List jobs newest first, filtered by status, queue or type; page with ``before``."""
    query = _load(_list_query, _single_valued_args())
    records = _store().list(**query)
    next_url = None
    if len(records) == query["limit"]:
        args = {**request.args.to_dict(flat=True), "before": records[-1].id}
        next_url = url_for("jobs.list_jobs", **args)
    return jsonify({"jobs": _job.dump(records, many=True), "next": next_url})


@bp.post("/<jobid:job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    """Cancel a PENDING or RUNNING job."""
    return jsonify(_job_detail.dump(_store().cancel(_parse_job_id(job_id))))


@bp.post("/<jobid:job_id>/retry")
def retry_job(job_id: str) -> Response:
    """Send a FAILED or CANCELLED job back to PENDING with its attempts reset."""
    return jsonify(_job_detail.dump(_store().retry(_parse_job_id(job_id))))
