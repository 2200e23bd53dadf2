"""schemathesis against a database holding what a misbehaving worker stored: every read of it
still keeps to the OpenAPI document (no 500), and huge numbers sent are refused, not crashed on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from jobsvc import create_app
from jobsvc.extensions import db
from tests.support.openapi import DOCUMENT, FUZZ_MAX_WAIT_SECONDS, SCHEMATHESIS_EXAMPLES
from tests.support.settings import FAST_SETTINGS
from tests.support.tokens import bearer, make_token

DEEP = 980  # decodes, but cannot be encoded again without a guard
schema = schemathesis.openapi.from_dict(DOCUMENT)


def _hostile_rows(app: Flask, token: str) -> None:
    client = app.test_client()
    headers = bearer(token)
    ids = [
        client.post("/jobs", json={"type": "test.echo"}, headers=headers).json["id"]
        for _ in range(3)
    ]
    with app.app_context():
        engine = db.engine
    cast = "CAST(:result AS json)" if engine.dialect.name == "postgresql" else ":result"
    results = ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP, "1e308"]
    with engine.begin() as connection:
        for job_id, result in zip(ids, results, strict=True):
            statement = f"UPDATE jobs SET result = {cast}, status = 'DONE' WHERE id = :id"  # noqa: S608 - cast is a constant
            connection.execute(text(statement), {"result": result, "id": job_id})


@pytest.fixture
def hostile_app(database_url: str) -> Iterator[tuple[Flask, str]]:
    """An app whose database holds jobs with results too deep to encode."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            **FAST_SETTINGS,
            "JOBSVC_RATE_LIMIT_PER_SECOND": 0.0,
            "JOBSVC_MAX_WAIT_SECONDS": FUZZ_MAX_WAIT_SECONDS,  # as the fuzzed document says
        }
    )
    token = make_token(app)
    _hostile_rows(app, token)
    yield app, token
    with app.app_context():
        db.engine.dispose()


@schema.include(method="GET").parametrize()
@settings(
    max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_reads_keep_to_the_document_whatever_is_stored(case, hostile_app):
    app, token = hostile_app
    case.operation.schema.app = app
    case.call_and_validate(headers=bearer(token), app=app)


@pytest.mark.parametrize("field", ["timeout_seconds", "priority", "max_attempts"])
def test_a_huge_integer_is_a_documented_422(hostile_app, field):
    app, token = hostile_app
    response = app.test_client().post(
        "/jobs", json={"type": "test.echo", field: 10**310}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert "422" in DOCUMENT["paths"]["/jobs"]["post"]["responses"]
