"""The API as an OpenAPI 3 document at ``/openapi.json``, built from the marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema, fields, validate

from ..errors import PROBLEM_MIMETYPE
from .fields import JSONObject, StrictString
from .jobs import JOB_ID_MAX
from .schemas import CreatedSchema, CreateJobSchema, JobDetailSchema, JobSchema, ListQuerySchema

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
SECURITY = [{"bearerAuth": []}]
# Every operation may answer these; each is documented once and referenced.
COMMON_ERRORS = {
    "401": "No API token, or an unknown or revoked one (see WWW-Authenticate).",
    "403": "The token lacks the scope this operation needs.",
    "429": "The token sent too many requests (see Retry-After).",
    "503": "The database does not answer, or the queue is full (see Retry-After).",
}
BODY_ERRORS = {
    "400": "The body is not JSON: malformed, not UTF-8, NaN/Infinity, duplicate keys, too deep.",
    "413": "The body is larger than JOBSVC_MAX_BODY_BYTES.",
    "415": "Content-Type is not application/json.",
    "422": "A field is missing, of the wrong type, out of range or unknown.",
}


class ProblemSchema(Schema):
    """An RFC 9457 problem: every error the API answers."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "What is wrong, by field (422)."})
    job_status = fields.String(metadata={"description": "The job's status (409)."})
    queue = fields.String(metadata={"description": "The full queue (503)."})


class CreateBatchRequestSchema(Schema):
    """The body of ``POST /jobs/batch``, as documented (each item is a ``CreateJob``)."""

    jobs = fields.List(fields.Nested(CreateJobSchema), required=True,
                       validate=validate.Length(min=1))


class CreatedBatchSchema(Schema):
    """What ``POST /jobs/batch`` answers."""

    jobs = fields.List(fields.Nested(CreatedSchema), required=True)


class JobListSchema(Schema):
    """A page of ``GET /jobs``."""

    jobs = fields.List(fields.Nested(JobSchema), required=True)
    next = fields.String(required=True, allow_none=True,
                         metadata={"description": "URL of the next page, or null."})


class HealthSchema(Schema):
    """What ``GET /health`` answers when the database answers."""

    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


def _responses(success: dict[str, Any], *errors: str, body: bool = False) -> dict[str, Any]:
    responses = dict(success)
    codes = [*errors, *(BODY_ERRORS if body else ()), *COMMON_ERRORS]
    for code in codes:
        responses[code] = {"$ref": f"#/components/responses/Problem{code}"}
    return responses


def _json(schema: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema}}, **extra}


def _body(schema: Any) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


LOCATION_HEADER = {"Location": {"schema": {"type": "string"}, "description": "The job's URL."}}
JOB_ID_PARAMETER = {
    "name": "job_id", "in": "path", "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": JOB_ID_MAX},
}


def _operations(max_batch: int) -> dict[str, dict[str, Any]]:
    job = _json(JobDetailSchema, "The job.")
    batch = {"allOf": [{"$ref": "#/components/schemas/CreateBatchRequest"}],
             "properties": {"jobs": {"maxItems": max_batch}}}
    return {
        "/jobs": {
            "post": {"summary": "Enqueue one job.", "operationId": "createJob",
                     "requestBody": _body(CreateJobSchema),
                     "responses": _responses({"201": _json(CreatedSchema, "Stored as PENDING.",
                                                           headers=LOCATION_HEADER)}, body=True)},
            "get": {"summary": "List jobs newest first.", "operationId": "listJobs",
                    "parameters": [{"in": "query", "schema": ListQuerySchema}],
                    "responses": _responses({"200": _json(JobListSchema, "A page of jobs.")},
                                            "422")},
        },
        "/jobs/batch": {
            "post": {"summary": "Enqueue many jobs in one transaction: all or none.",
                     "operationId": "createJobs", "requestBody": _body(batch),
                     "responses": _responses({"201": _json(CreatedBatchSchema, "All stored.")},
                                             body=True)},
        },
        "/jobs/{job_id}": {
            "parameters": [JOB_ID_PARAMETER],
            "get": {"summary": "Show one job.", "operationId": "getJob",
                    "responses": _responses({"200": job}, "404")},
        },
        "/jobs/{job_id}/cancel": {
            "parameters": [JOB_ID_PARAMETER],
            "post": {"summary": "Cancel a PENDING or RUNNING job.", "operationId": "cancelJob",
                     "responses": _responses({"200": job}, "404", "409")},
        },
        "/jobs/{job_id}/retry": {
            "parameters": [JOB_ID_PARAMETER],
            "post": {"summary": "Send a FAILED or CANCELLED job back to PENDING.",
                     "operationId": "retryJob",
                     "responses": _responses({"200": job}, "404", "409")},
        },
        "/health": {
            "get": {"summary": "Answer 200 when the database answers.", "operationId": "health",
                    "security": [],
                    "responses": {"200": _json(HealthSchema, "The service and its database "
                                                             "answer."),
                                  "503": {"$ref": "#/components/responses/Problem503"}}},
        },
        "/metrics": {
            "get": {"summary": "Job counts in the Prometheus text format.",
                    "operationId": "metrics",
                    "responses": _responses({"200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}})},
        },
        "/openapi.json": {
            "get": {"summary": "This document.", "operationId": "openapi",
                    "responses": _responses({"200": _json({"type": "object"},
                                                          "OpenAPI 3 document.")})},
        },
    }


def build_spec(max_batch: int, job_types: frozenset[str] | None) -> dict[str, Any]:
    """Return the OpenAPI document of this API."""
    plugin = MarshmallowPlugin()
    spec = APISpec(title="jobsvc", version=API_VERSION, openapi_version=OPENAPI_VERSION,
                   plugins=[plugin], info={"description": "A job queue as an HTTP service."})
    plugin.map_to_openapi_type(JSONObject, "object", None)
    plugin.converter.add_attribute_function(_pattern)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.schema("CreateJob", schema=CreateJobSchema)
    spec.components.schema("CreateBatchRequest", schema=CreateBatchRequestSchema)
    for code, description in {**BODY_ERRORS, **COMMON_ERRORS, "404": "No job has this id.",
                              "409": "The job's state does not allow this."}.items():
        spec.components.response(f"Problem{code}", {
            "description": description,
            "content": {PROBLEM_MIMETYPE: {"schema": "Problem"}},
        })
    for path, operations in _operations(max_batch).items():
        parameters = operations.pop("parameters", None)
        spec.path(path=path, operations=operations, parameters=parameters)
    document = spec.to_dict()
    document["security"] = SECURITY
    _query_values_are_never_null(document["paths"]["/jobs"]["get"]["parameters"])
    if job_types is not None:
        # With JOBSVC_HANDLERS set the API knows every type it accepts; say so.
        document["components"]["schemas"]["CreateJob"]["properties"]["type"]["enum"] = sorted(
            job_types)
    return document


def _pattern(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    # StrictString checks its own pattern (fullmatch); publish it so clients and fuzzers know.
    if isinstance(field, StrictString):
        return {"pattern": field.pattern.pattern}
    return {}


def _query_values_are_never_null(parameters: list[dict[str, Any]]) -> None:
    # The schema's load_default=None means "absent"; a query string cannot carry a null.
    for parameter in parameters:
        schema = parameter["schema"]
        schema.pop("nullable", None)
        if schema.get("default", 0) is None:
            del schema["default"]
        if "enum" in schema:
            schema["enum"] = [value for value in schema["enum"] if value is not None]
            schema["type"] = "string"


def init_app(app: Flask) -> None:
    """Register ``/openapi.json`` on ``app``."""
    app.register_blueprint(bp)


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI document (built once per app)."""
    document = current_app.extensions.get("jobsvc.openapi")
    if document is None:
        document = build_spec(current_app.config["JOBSVC_MAX_BATCH_JOBS"],
                              current_app.extensions["jobsvc.job_types"])
        current_app.extensions["jobsvc.openapi"] = document
    return jsonify(document)
