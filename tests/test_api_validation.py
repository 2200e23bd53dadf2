"""Bad input: every rule answers a 4xx problem+json naming the field, and stores nothing."""

from __future__ import annotations

import json

import pytest

VALID = {"type": "test.echo", "payload": {}}


def _post(client, body, content_type="application/json"):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/jobs", data=data, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": {}}, "type"),
        ({"type": 5}, "type"),
        ({"type": ""}, "type"),
        ({"type": "os.system('rm -rf /')"}, "type"),
        ({"type": "x" * 200}, "type"),
        ({"type": "test.unknown"}, "type"),
        ({**VALID, "payload": [1, 2]}, "payload"),
        ({**VALID, "payload": "text"}, "payload"),
        ({**VALID, "queue": ""}, "queue"),
        ({**VALID, "queue": "has space"}, "queue"),
        ({**VALID, "queue": 3}, "queue"),
        ({**VALID, "priority": "high"}, "priority"),
        ({**VALID, "priority": 1.5}, "priority"),
        ({**VALID, "priority": True}, "priority"),
        ({**VALID, "priority": 10**30}, "priority"),
        ({**VALID, "max_attempts": 0}, "max_attempts"),
        ({**VALID, "max_attempts": -1}, "max_attempts"),
        ({**VALID, "max_attempts": 100_000}, "max_attempts"),
        ({**VALID, "timeout_seconds": 0}, "timeout_seconds"),
        ({**VALID, "timeout_seconds": "10"}, "timeout_seconds"),
        ({**VALID, "timeout_seconds": 1e12}, "timeout_seconds"),
        ({**VALID, "run_at": "tomorrow"}, "run_at"),
        ({**VALID, "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ({**VALID, "run_at": 1700000000}, "run_at"),
        ({**VALID, "delay_seconds": -1}, "delay_seconds"),
        ({**VALID, "delay_seconds": 366 * 86400}, "delay_seconds"),
        ({**VALID, "delay_seconds": "5"}, "delay_seconds"),
        ({**VALID, "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}, "delay_seconds"),
        ({**VALID, "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}, "run_at"),
        ({**VALID, "colour": "blue"}, "colour"),
    ],
)
def test_invalid_field_is_422_naming_it(client, body, field):
    response = _post(client, body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert field in response.json["errors"]
    assert client.get("/jobs").json["jobs"] == []


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"{", 400),
        (b"", 400),
        (b"\xff\xfe{}", 400),
        (b'{"type": "test.echo", "type": "test.echo"}', 400),
        (b'{"type": "test.echo", "payload": {"x": NaN}}', 400),
        (b'{"type": "test.echo", "payload": {"x": Infinity}}', 400),
        (b"[" * 100 + b"]" * 100, 400),
        (b'{"type": "test.echo", "payload": {"x": "\\ud800"}}', 422),
        (b"[]", 422),
        (b'"just a string"', 422),
        (b"null", 422),
    ],
)
def test_malformed_body_is_4xx(client, data, status):
    response = _post(client, data)
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status
    assert client.get("/jobs").json["jobs"] == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_type_is_415(client, content_type):
    response = _post(client, json.dumps(VALID), content_type=content_type)
    assert response.status_code == 415


def test_body_over_the_limit_is_413(client, app):
    limit = app.config["JOBSVC_MAX_BODY_BYTES"]
    body = {"type": "test.echo", "payload": {"blob": "x" * (limit + 1)}}
    assert _post(client, body).status_code == 413


def test_payload_over_its_own_limit_is_422(client, app):
    app.config["JOBSVC_MAX_PAYLOAD_BYTES"] = 100
    response = _post(client, {"type": "test.echo", "payload": {"blob": "x" * 200}})
    assert response.status_code == 422
    assert "payload" in response.json["errors"]


@pytest.mark.parametrize(
    "job_id",
    [
        "0",
        "-1",
        "abc",
        "1.5",
        "٣",
        "99999999999999999999",
        "9223372036854775808",
        "1e3",
        " 1",
        "12345",
    ],
)
def test_unknown_or_malformed_id_is_404(client, job_id):
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/cancel", f"/jobs/{job_id}/retry"):
        response = client.get(path) if path.count("/") == 2 else client.post(path)
        assert response.status_code == 404, (path, response.status_code)
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "query", ["status=DONEISH", "limit=0", "limit=100000", "before=x", "colour=red"]
)
def test_bad_list_query_is_422(client, query):
    assert client.get(f"/jobs?{query}").status_code == 422


def test_batch_over_the_limit_is_422(client, app):
    app.config["JOBSVC_MAX_BATCH_JOBS"] = 3
    response = client.post("/jobs/batch", json={"jobs": [VALID] * 4})
    assert response.status_code == 422
    assert "jobs" in response.json["errors"]


def test_unknown_route_is_404_problem(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
