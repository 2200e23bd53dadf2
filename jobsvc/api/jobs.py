"""The jobs API: validate, one store call, dump."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from marshmallow import Schema, ValidationError

from ..callbacks import check_callback_url
from ..errors import JobNotFound, ParentsRefused, ValidationFailed
from ..models import JobStatus
from ..newjobs import new_job
from ..store import BULK_BATCH_MAX, Enqueued, IdempotencyClaim, JobStore, NewJob
from ..tokens import SCOPE_ADMIN, SCOPE_ENQUEUE, SCOPE_READ
from ..waiting import is_ended
from .body import read_json
from .endpoints import endpoint, json_response
from .idempotency import (
    BATCH_KEY_FIELD,
    IDEMPOTENCY_PARAMETER,
    REPLAYED_HEADER,
    REPLAYED_RESPONSE_HEADER,
    check_key,
    claim,
    header_claim,
)
from .quickload import quick_load
from .readable import STORED_JSON_FIELDS, encode_jobs
from .schemas import (
    AttemptListSchema,
    BulkActionSchema,
    BulkResultSchema,
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
_bulk = BulkActionSchema()

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


def _bulk_body(max_batch: int) -> dict[str, Any]:
    # An empty body would select every job: one id or one filter at least.
    return {"allOf": [{"$ref": "#/components/schemas/BulkAction"}], "minProperties": 1}


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
    api = state()
    if fields.get("callback_url") is not None:
        check_callback_url(fields["callback_url"], api.services.config, api.callback_policy)
    return new_job(fields, api.services.config)


def load_job(item: Any) -> NewJob:
    """Return the job ``item`` (a decoded request body) asks for, validated as the API does:
    schema, known types, payload size, defaults. ``flask jobs enqueue`` calls it too."""
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
    header_parameters=(IDEMPOTENCY_PARAMETER,),
    responses={
        "201": json_response(CreatedSchema, "Stored as PENDING.", headers=LOCATION_HEADER),
        "200": json_response(
            CreatedSchema,
            "Not stored again: the job this Idempotency-Key created (replayed: true), or the "
            "active job that holds this unique_key (duplicate: true).",
            headers={**LOCATION_HEADER, **REPLAYED_RESPONSE_HEADER},
        ),
    },
    errors=("409",),
)
def create_job() -> Response:
    """Enqueue one job."""
    body = _body()
    new_job = load_job(body)
    claim = header_claim(request.headers, body)
    api = state()
    api.ready_cap.admit([new_job])
    if claim is not None or new_job.unique_key is not None:
        return _created_checked(new_job, claim)
    try:
        (job_id,) = _store().enqueue([new_job])
    except ParentsRefused as exc:
        raise ValidationFailed({"depends_on": exc.by_item[0]}) from None
    api.enqueued.count((new_job,))
    # CreatedSchema's shape and get_job's URL, written directly: jsonify and url_for were a
    # fifth of the request's own cost. job_id is an int, so the JSON needs no escaping.
    body = f'{{"id":{job_id},"status":"{JobStatus.PENDING.value}"}}\n'
    location = f"{request.script_root}{bp.url_prefix}/{job_id}"
    return current_app.response_class(
        body, 201, {"Location": location}, mimetype="application/json"
    )


def _created_checked(new_job: NewJob, claim: IdempotencyClaim | None) -> Response:
    try:
        (enqueued,) = _store().enqueue_checked(
            [new_job], [claim], keys_kept_seconds=_keys_kept_seconds()
        )
    except ParentsRefused as exc:
        raise ValidationFailed({"depends_on": exc.by_item[0]}) from None
    if enqueued.created:
        state().enqueued.count((new_job,))
    response = jsonify(_created_body(enqueued))
    response.status_code = 201 if enqueued.created else 200
    response.headers["Location"] = f"{request.script_root}{bp.url_prefix}/{enqueued.id}"
    if enqueued.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


def _created_body(enqueued: Enqueued) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": enqueued.id,
        "status": None if enqueued.status is None else enqueued.status.value,
    }
    if enqueued.duplicate:
        body["duplicate"] = True
    if enqueued.replayed:
        body["replayed"] = True
    return body


def _keys_kept_seconds() -> float:
    return state().services.config["JOBSVC_IDEMPOTENCY_SECONDS"]


@endpoint(
    bp,
    "POST",
    "/batch",
    scope=SCOPE_ENQUEUE,
    summary="Enqueue many jobs in one transaction: all or none.",
    operation_id="createJobs",
    body=_batch_body,
    responses={
        "201": json_response(
            CreatedBatchSchema,
            "Stored (items marked replayed or duplicate stand for jobs that exist already).",
        ),
        "200": json_response(
            CreatedBatchSchema, "None stored: every item was replayed or a duplicate."
        ),
    },
    errors=("409",),
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
    new_jobs, claims, errors = [], [], {}
    keys_at: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            item, claim = _batch_claim(item, index, keys_at)
            new_jobs.append(load_job(item))
            claims.append(claim)
        except ValidationFailed as exc:
            errors[str(index)] = exc.errors
    if errors:
        raise ValidationFailed({"jobs": errors})
    state().ready_cap.admit(new_jobs)
    if keys_at or any(job.unique_key is not None for job in new_jobs):
        try:
            checked = _store().enqueue_checked(
                new_jobs, claims, keys_kept_seconds=_keys_kept_seconds()
            )
        except ParentsRefused as exc:
            raise ValidationFailed({"jobs": exc.errors}) from None
        created = any(enqueued.created for enqueued in checked)
        state().enqueued.count([j for j, e in zip(new_jobs, checked, strict=True) if e.created])
        return jsonify({"jobs": [_created_body(e) for e in checked]}), 201 if created else 200
    try:
        ids = _store().enqueue(new_jobs)
    except ParentsRefused as exc:
        raise ValidationFailed({"jobs": exc.errors}) from None
    state().enqueued.count(new_jobs)
    # CreatedSchema's shape, built directly: dumping it per job cost a tenth of the request.
    status = JobStatus.PENDING.value
    return jsonify({"jobs": [{"id": job_id, "status": status} for job_id in ids]}), 201


def _batch_claim(
    item: Any, index: int, keys_at: dict[str, int]
) -> tuple[Any, IdempotencyClaim | None]:
    # The key is the item's own field, not the job's: the job (and the fingerprint) is the rest.
    if type(item) is not dict or BATCH_KEY_FIELD not in item:
        return item, None
    job = {name: value for name, value in item.items() if name != BATCH_KEY_FIELD}
    if item[BATCH_KEY_FIELD] is None:  # null means absent, as for the job's own fields
        return job, None
    key = check_key(item[BATCH_KEY_FIELD], BATCH_KEY_FIELD)
    if key in keys_at:
        raise ValidationFailed(
            {BATCH_KEY_FIELD: [f"Item {keys_at[key]} of this batch has this key already."]}
        )
    keys_at[key] = index
    return job, claim(key, job)


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
    """List jobs newest first, filtered by status, queue, type or creation time; page with
    ``before``; ``fields`` picks what each job shows."""
    query = _load(_list_query, _single_valued_args())
    shown = query.pop("shown")
    limit = query.pop("limit")
    without = frozenset() if shown is None else frozenset(STORED_JSON_FIELDS) - set(shown)
    # One more than the page: the last page is the one that finds no more, and has no next.
    records = _store().list(**query, limit=limit + 1, without=without)
    next_url = None
    if len(records) > limit:
        records = records[:limit]
        args = {**request.args.to_dict(flat=True), "before": records[-1].id}
        next_url = url_for("jobs.list_jobs", **args)
    schema = _job if shown is None else _shown_schema(shown)
    body = {"jobs": schema.dump(records, many=True), "next": next_url}
    return encode_jobs(jsonify, body, lambda found: found["jobs"])


@lru_cache(maxsize=64)
def _shown_schema(shown: tuple[str, ...]) -> JobSchema:
    return JobSchema(only=shown)


@endpoint(
    bp,
    "POST",
    "/cancel",
    scope=SCOPE_ADMIN,
    summary=f"Cancel PENDING and RUNNING jobs by ids or a filter, up to {BULK_BATCH_MAX} a call.",
    operation_id="cancelJobs",
    body=_bulk_body,
    responses={
        "200": json_response(BulkResultSchema, "How many were cancelled; more: call again.")
    },
)
def cancel_jobs() -> Response:
    """Cancel the selected PENDING or RUNNING jobs, oldest first, in a bounded batch."""
    result = _store().cancel_many(_load(_bulk, _body()))
    return jsonify({"count": result.count, "more": result.more})


@endpoint(
    bp,
    "POST",
    "/retry",
    scope=SCOPE_ADMIN,
    summary=f"Retry FAILED and CANCELLED jobs by ids or a filter, up to {BULK_BATCH_MAX} a call.",
    operation_id="retryJobs",
    body=_bulk_body,
    responses={"200": json_response(BulkResultSchema, "How many were retried; more: call again.")},
)
def retry_jobs() -> Response:
    """Send the selected FAILED or CANCELLED jobs back to PENDING, oldest first, in a batch."""
    result = _store().retry_many(_load(_bulk, _body()))
    return jsonify({"count": result.count, "more": result.more})


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
