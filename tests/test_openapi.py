"""The OpenAPI document describes the real API; schemathesis checks the API keeps to it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

import tests.handlers  # noqa: F401 - registers the job types the test app accepts
from jobsvc import create_app
from jobsvc.api.endpoints import BROWSER_BLUEPRINTS
from jobsvc.extensions import db
from tests.support.openapi import DOCUMENT, FUZZ_MAX_WAIT_SECONDS, SCHEMATHESIS_EXAMPLES
from tests.support.settings import FAST_SETTINGS
from tests.support.tokens import bearer, make_token


def _flask_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_route_is_documented_and_nothing_else(client, app):
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    routes = {
        (_flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and rule.endpoint.partition(".")[0] not in BROWSER_BLUEPRINTS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == documented


def test_document_names_bearer_auth_and_problem_errors(client):
    document = client.get("/openapi.json").json
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["paths"]["/health"]["get"]["security"] == []
    create = document["paths"]["/jobs"]["post"]["responses"]
    assert {"201", "400", "401", "403", "413", "415", "422", "429", "503"} <= set(create)
    problem = document["components"]["responses"]["Problem422"]["content"]
    assert "application/problem+json" in problem


def test_known_job_types_are_listed_when_handlers_are_configured(client):
    schema = client.get("/openapi.json").json["components"]["schemas"]["CreateJob"]
    assert "test.echo" in schema["properties"]["type"]["enum"]


@pytest.fixture
def token_app(database_url: str) -> Iterator[tuple[Flask, str]]:
    """An app with one admin token and no rate limit, as a client on another host sees it."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            **FAST_SETTINGS,
            "JOBSVC_RATE_LIMIT_PER_SECOND": 0.0,
            "JOBSVC_MAX_WAIT_SECONDS": FUZZ_MAX_WAIT_SECONDS,
        }
    )
    yield app, make_token(app)
    with app.app_context():
        db.engine.dispose()


def test_the_served_document_is_the_one_fuzzed_below(token_app):
    app, token = token_app
    served = app.test_client().get("/openapi.json", headers=bearer(token)).json
    assert served == DOCUMENT


schema = schemathesis.openapi.from_dict(DOCUMENT)


def _valid_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= 100
        and all(type(v) is int and 1 <= v < 2**63 for v in value)
    )


def _without_parents(body: object) -> None:
    # Valid ids the generator draws for depends_on name no stored job: a 422 the document
    # cannot rule out (tests/test_api_dependencies.py covers it), so they are dropped. Invalid
    # values stay: the API must still refuse them.
    items = body.get("jobs") if isinstance(body, dict) and "jobs" in body else [body]
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and _valid_ids(item.get("depends_on")):
            del item["depends_on"]


@schema.parametrize()
@settings(
    max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_api_keeps_to_its_openapi_document(case, token_app):
    app, token = token_app
    _without_parents(case.body)
    case.operation.schema.app = app  # send requests to this test's app, in-process (WSGI)
    case.call_and_validate(headers=bearer(token), app=app)


def test_the_headers_of_answers_are_documented(client):
    document = client.get("/openapi.json").json
    responses = document["components"]["responses"]
    assert "Retry-After" in responses["Problem429"]["headers"]
    assert "Retry-After" in responses["Problem503"]["headers"]
    assert "WWW-Authenticate" in responses["Problem401"]["headers"]
    created = document["paths"]["/jobs"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]
