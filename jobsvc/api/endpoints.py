"""Each endpoint declared once: its route, the scope it needs, its schemas and its docs.

``@endpoint`` registers the view on its blueprint and records an ``Endpoint`` in one table,
which the access check (``auth``) and the OpenAPI document (``openapi``) both read. A view
registered some other way has no entry, so it needs the admin scope (closed by default) and
``tests/test_openapi.py`` finds it undocumented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint

OPEN_TO_ALL = "open"  # the "scope" of an endpoint anyone may call, token or not (health)
# The order of the OpenAPI document's paths: blueprint by blueprint, views as declared.
DOCUMENT_ORDER = (
    "jobs",
    "schedules",
    "health",
    "metrics",
    "openapi",
)

View = TypeVar("View", bound=Callable[..., Any])
BodySchema = Any  # a marshmallow Schema class, a JSON Schema dict, or a function of max_batch


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API, as routed, authorized and documented."""

    blueprint: str
    name: str  # Flask's endpoint name: "<blueprint>.<view function>"
    method: str
    path: str  # as OpenAPI writes it: /jobs/{job_id}
    scope: str
    summary: str
    operation_id: str
    responses: dict[str, Any]  # the successes, and any problem written out
    errors: tuple[str, ...] = ()  # problems this operation answers besides the common ones
    body: BodySchema | None = None
    query: Any | None = None  # a marshmallow Schema class of the query string
    path_parameters: tuple[dict[str, Any], ...] = ()
    common_errors: bool = True  # whether 401/403/429/503 apply
    security: list[Any] | None = None  # None: the document's default (bearer)


ENDPOINTS: list[Endpoint] = []


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def endpoint(
    bp: Blueprint,
    method: str,
    rule: str,
    *,
    scope: str,
    summary: str,
    operation_id: str,
    responses: dict[str, Any],
    errors: tuple[str, ...] = (),
    body: BodySchema | None = None,
    query: Any | None = None,
    path_parameters: tuple[dict[str, Any], ...] = (),
    common_errors: bool = True,
    security: list[Any] | None = None,
) -> Callable[[View], View]:
    """Route the decorated view on ``bp`` and declare its scope and documentation."""

    def register(view: View) -> View:
        bp.add_url_rule(rule, view_func=view, methods=[method])
        ENDPOINTS.append(
            Endpoint(
                blueprint=bp.name,
                name=f"{bp.name}.{view.__name__}",
                method=method.lower(),
                path=_openapi_path(f"{bp.url_prefix or ''}{rule}"),
                scope=scope,
                summary=summary,
                operation_id=operation_id,
                responses=responses,
                errors=errors,
                body=body,
                query=query,
                path_parameters=path_parameters,
                common_errors=common_errors,
                security=security,
            )
        )
        return view

    return register


def in_document_order() -> list[Endpoint]:
    """Return the declared endpoints in the OpenAPI document's order."""
    rank = {name: index for index, name in enumerate(DOCUMENT_ORDER)}
    return sorted(ENDPOINTS, key=lambda e: rank.get(e.blueprint, len(rank)))


def scopes() -> dict[str, str]:
    """Return the scope each declared endpoint needs, by Flask endpoint name."""
    return {e.name: e.scope for e in ENDPOINTS}


def json_response(schema: Any, description: str, **extra: Any) -> dict[str, Any]:
    """Return an OpenAPI response whose body is JSON of ``schema``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def problem_response(code: str) -> dict[str, Any]:
    """Return a reference to the documented problem response of ``code``."""
    return {"$ref": f"#/components/responses/Problem{code}"}
