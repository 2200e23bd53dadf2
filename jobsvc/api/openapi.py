"""The API as an OpenAPI 3 document at ``/openapi.json``, built from the endpoint table."""

from __future__ import annotations

import copy
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify
from marshmallow import Schema, fields

from ..jobfields import EXCLUSIVE_FIELDS
from ..tokens import SCOPE_READ
from .endpoints import Endpoint, endpoint, in_document_order, json_response, problem_response
from .fields import JSONObject, StrictString
from .problems import PROBLEM_MIMETYPE
from .schemas import (
    BulkActionSchema,
    CreateBatchItemSchema,
    CreateBatchRequestSchema,
    CreateJobSchema,
)
from .state import state

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
DEFAULT_MAX_WAIT_SECONDS = 60.0  # JOBSVC_MAX_WAIT_SECONDS's default
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


# The headers a problem answer carries, by status (jobsvc.api.problems sets them).
PROBLEM_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": 'How to authenticate: `Bearer` (with `error="invalid_token"` when the '
            "token sent was refused).",
        }
    },
    "429": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds to wait before this token's next request is served.",
        }
    },
    "503": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds to wait before trying again.",
        }
    },
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
    idempotency_key = fields.String(
        metadata={"description": "The Idempotency-Key used before with another request (409)."}
    )
    job_id = fields.Integer(metadata={"description": "The job that key created (409)."})


def _responses(declared: Endpoint) -> dict[str, Any]:
    responses = dict(declared.responses)
    codes = [
        *declared.errors,
        *(BODY_ERRORS if declared.body is not None else ()),
        *(COMMON_ERRORS if declared.common_errors else ()),
    ]
    for code in codes:
        responses[code] = problem_response(code)
    return responses


def _operation(declared: Endpoint, max_batch: int) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": declared.summary, "operationId": declared.operation_id}
    if declared.security is not None:
        operation["security"] = declared.security
    if declared.query is not None:
        operation["parameters"] = [{"in": "query", "schema": declared.query}]
    if declared.header_parameters:
        operation.setdefault("parameters", []).extend(declared.header_parameters)
    if declared.body is not None:
        body = declared.body
        if callable(body) and not isinstance(body, type):
            body = body(max_batch)  # a body whose documented bounds come from the settings
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    operation["responses"] = _responses(declared)
    # apispec resolves schemas in place: give it a copy, never the declaration itself.
    return copy.deepcopy(operation)


def _paths(
    endpoints: list[Endpoint], max_batch: int
) -> dict[str, tuple[list[Any], dict[str, Any]]]:
    paths: dict[str, tuple[list[Any], dict[str, Any]]] = {}
    for declared in endpoints:
        parameters, operations = paths.setdefault(declared.path, ([], {}))
        for parameter in declared.path_parameters:
            if parameter not in parameters:
                parameters.append(copy.deepcopy(parameter))
        operations[declared.method] = _operation(declared, max_batch)
    return paths


def build_spec(
    max_batch: int,
    job_types: frozenset[str] | None,
    *,
    webhooks: bool = False,
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
) -> dict[str, Any]:
    """Return the OpenAPI document of this API (``webhooks``: callback_url is accepted;
    ``max_wait_seconds``: JOBSVC_MAX_WAIT_SECONDS)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="jobsvc",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": "A job queue as an HTTP service."},
    )
    plugin.map_to_openapi_type(JSONObject, "object", None)
    plugin.converter.add_attribute_function(_pattern)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.schema("CreateJob", schema=CreateJobSchema)
    spec.components.schema("CreateBatchItem", schema=CreateBatchItemSchema)
    spec.components.schema("BulkAction", schema=BulkActionSchema)
    spec.components.schema("CreateBatchRequest", schema=CreateBatchRequestSchema)
    for code, description in {
        **BODY_ERRORS,
        **COMMON_ERRORS,
        "404": "No job has this id, or no queue has this name (no jobs, no settings).",
        "409": "The job's state does not allow this, or the Idempotency-Key was used before "
        "with a different request.",
    }.items():
        spec.components.response(
            f"Problem{code}",
            {
                "description": description,
                "content": {PROBLEM_MIMETYPE: {"schema": "Problem"}},
                **({"headers": PROBLEM_HEADERS[code]} if code in PROBLEM_HEADERS else {}),
            },
        )
    for path, (parameters, operations) in _paths(in_document_order(), max_batch).items():
        spec.path(path=path, operations=operations, parameters=parameters or None)
    document = spec.to_dict()
    document["security"] = SECURITY
    _nullable_references(document["components"]["schemas"])
    _query_values_are_never_null(document["paths"]["/jobs"]["get"]["parameters"])
    job_parameters = document["paths"]["/jobs/{job_id}"]["get"]["parameters"]
    _query_values_are_never_null(job_parameters)
    for parameter in job_parameters:
        if parameter["name"] == "wait":
            parameter["schema"]["maximum"] = max_wait_seconds
    for name in ("CreateJob", "CreateBatchItem"):
        _exclusive_fields(document["components"]["schemas"][name])
    for name in ("CreateJob", "CreateBatchItem"):
        properties = document["components"]["schemas"][name]["properties"]
        if job_types is not None:
            # With JOBSVC_HANDLERS set the API knows every type it accepts; say so.
            properties["type"]["enum"] = sorted(job_types)
        if not webhooks:
            # Without JOBSVC_WEBHOOK_SECRET and ALLOWED_HOSTS every callback_url is refused (422).
            properties["callback_url"] = {
                "nullable": True,
                "enum": [None],
                "description": "Completion webhooks are off on this service "
                "(JOBSVC_WEBHOOK_SECRET and JOBSVC_WEBHOOK_ALLOWED_HOSTS): a URL is refused (422).",
            }
    return document


NULL_ALTERNATIVE = {"type": "object", "nullable": True}


def _nullable_references(schemas: dict[str, Any]) -> None:
    # apispec writes a nullable Nested field as anyOf [the schema, any object or null], which
    # lets any object through; say "this schema, or null" instead.
    for schema in schemas.values():
        for name, prop in schema.get("properties", {}).items():
            options = prop.get("anyOf", [])
            if len(options) == 2 and NULL_ALTERNATIVE in options:
                (reference,) = [option for option in options if option != NULL_ALTERNATIVE]
                rest = {key: value for key, value in prop.items() if key != "anyOf"}
                schema["properties"][name] = {"allOf": [reference], "nullable": True, **rest}


def _exclusive_fields(create_job: dict[str, Any]) -> None:
    # run_at or delay_seconds, not both: "not both present with a non-null value" (a schema
    # without nullable refuses null in OpenAPI 3.0).
    properties = create_job["properties"]
    create_job["allOf"] = [
        {
            "not": {
                "required": list(pair),
                "properties": {name: {"type": properties[name]["type"]} for name in pair},
            }
        }
        for pair in EXCLUSIVE_FIELDS
    ]


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


@endpoint(
    bp,
    "GET",
    "/openapi.json",
    scope=SCOPE_READ,
    summary="This document.",
    operation_id="openapi",
    responses={"200": json_response({"type": "object"}, "OpenAPI 3 document.")},
)
def openapi() -> Response:
    """Serve the OpenAPI document (built when the app was)."""
    return jsonify(state().openapi)
