"""Hostile input, item by item from the issue: each gets a clear 4xx problem, nothing is stored
half-written, and what is stored comes back byte-identical on both backends."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jobsvc import create_app
from jobsvc.extensions import db
from jobsvc.models import JobStatus
from tests.support.draining import drain as _drain
from tests.support.settings import BACKENDS, FAST_SETTINGS
from tests.support.settings import admin_url as _admin_url

ECHO = {"type": "test.echo", "payload": {}}


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request, tmp_path_factory) -> Iterator[tuple]:
    """One app and database per backend for the refusal tables: a refusal changes nothing, so
    they need no fresh database each (which would cost most of their time)."""
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'db.sqlite3'}", None
    else:
        admin = _admin_url()
        if not admin:
            pytest.skip("PostgreSQL tests need JOBSVC_TEST_POSTGRES_URL")
        name = f"jobsvc_hostile_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
        url, drop = url.render_as_string(hide_password=False), name
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, **FAST_SETTINGS})
    with app.app_context():
        engine = db.engine
    yield app.test_client(), engine
    engine.dispose()
    if drop:
        with psycopg.connect(_admin_url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')


def _post(client, raw: bytes, path: str = "/jobs"):
    return client.post(path, data=raw, content_type="application/json")


def _stored_jobs(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()


def _assert_problem(response, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status and response.json["detail"]


BAD_BODIES = [
    # malformed and non-UTF-8
    pytest.param(b'{"type": "test.echo",}', 400, id="trailing-comma"),
    pytest.param(b"\xef\xbb\xbf" + json.dumps(ECHO).encode(), 400, id="utf8-bom"),
    pytest.param('{"type": "tést"}'.encode("latin-1"), 400, id="latin-1"),
    pytest.param(b'{"type": "test.echo", "payload": {"x": "\xc0\xaf"}}', 400, id="overlong-utf8"),
    pytest.param(
        b'{"type": "test.echo", "payload": {"x": "\xed\xa0\x80"}}', 400, id="utf8-encoded-surrogate"
    ),
    pytest.param(b'{"type": "test.echo", "payload": {"x": "\xe6\xbc"}}', 400, id="truncated-utf8"),
    # depth
    pytest.param(
        b'{"type": "test.echo", "payload": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
        400,
        id="payload-too-deep",
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, id="100k-deep"),
    # NaN, Infinity, numbers no double holds
    pytest.param(b'{"type": "test.echo", "payload": {"x": -Infinity}}', 400, id="-Infinity"),
    pytest.param(b'{"type": "test.echo", "payload": {"x": 1e400}}', 422, id="1e400"),
    pytest.param(b'{"type": "test.echo", "payload": {"x": [-1e999]}}', 422, id="-1e999-in-list"),
    pytest.param(
        b'{"type": "test.echo", "payload": {"x": ' + b"9" * 5000 + b"}}", 400, id="5000-digit-int"
    ),
    pytest.param(b'{"type": "test.echo", "timeout_seconds": 1e400}', 422, id="timeout-1e400"),
    pytest.param(
        b'{"type": "test.echo", "priority": 100000000000000000000000000000}',
        422,
        id="priority-10e29",
    ),
    pytest.param(
        b'{"type": "test.echo", "max_attempts": 9223372036854775808}', 422, id="max-attempts-2e63"
    ),
    # non-object bodies
    pytest.param(b"[]", 422, id="list"),
    pytest.param(b"1", 422, id="number"),
    pytest.param(b"true", 422, id="bool"),
    pytest.param(b"null", 422, id="null"),
    pytest.param(b'"{\\"type\\": \\"test.echo\\"}"', 422, id="json-in-a-string"),
    # duplicate keys, at any depth
    pytest.param(b'{"type": "test.echo", "payload": {"a": 1, "a": 2}}', 400, id="dup-in-payload"),
    pytest.param(b'{"type": "test.echo", "queue": "a", "queue": "b"}', 400, id="dup-top"),
    # unknown fields
    pytest.param(b'{"type": "test.echo", "Type": "x"}', 422, id="unknown-field"),
    pytest.param(b'{"type": "test.echo", "__class__": "x"}', 422, id="dunder-field"),
    # NUL and lone surrogates where text must be a name
    pytest.param(b'{"type": "test.echo\\u0000"}', 422, id="nul-in-type"),
    pytest.param(b'{"type": "test.echo", "queue": "a\\u0000b"}', 422, id="nul-in-queue"),
    pytest.param(b'{"type": "test.echo", "queue": "default\\n"}', 422, id="newline-in-queue"),
    pytest.param(b'{"type": "test.echo", "payload": {"\\udc00": 1}}', 422, id="surrogate-key"),
    pytest.param(
        b'{"type": "test.echo", "payload": {"x": ["\\ud83d"]}}',
        422,
        id="surrogate-half-of-an-emoji",
    ),
    # job types that look like import paths or code
    pytest.param(b'{"type": "os.system"}', 422, id="type-os.system"),
    pytest.param(b'{"type": "builtins.eval"}', 422, id="type-builtins.eval"),
    pytest.param(b'{"type": "__import__(\'os\')"}', 422, id="type-call"),
    pytest.param(b'{"type": "../../etc/passwd"}', 422, id="type-path"),
    pytest.param(b'{"type": "test.echo\\n"}', 422, id="type-trailing-newline"),
    # out-of-range or wrongly typed options
    pytest.param(
        b'{"type": "test.echo", "run_at": "0001-01-01T00:00:00+14:00"}', 422, id="run-at-year-1"
    ),
    pytest.param(
        b'{"type": "test.echo", "run_at": "9999-12-31T23:59:59-14:00"}', 422, id="run-at-year-9999"
    ),
    pytest.param(
        b'{"type": "test.echo", "run_at": "2030-01-01T00:00:00+99:00"}', 422, id="run-at-bad-offset"
    ),
    pytest.param(b'{"type": "test.echo", "timeout_seconds": true}', 422, id="timeout-bool"),
    pytest.param(b'{"type": "test.echo", "max_attempts": 3.0}', 422, id="attempts-float"),
    pytest.param(b'{"type": "test.echo", "priority": "1"}', 422, id="priority-string"),
    pytest.param(b'{"type": "test.echo", "payload": null}', 422, id="payload-null"),
]


@pytest.mark.parametrize(("raw", "status"), BAD_BODIES)
def test_hostile_job_body_is_a_clear_4xx_and_stores_nothing(shared, raw, status):
    client, engine = shared
    before = _stored_jobs(engine)
    _assert_problem(_post(client, raw), status)
    assert _stored_jobs(engine) == before


BAD_BATCHES = [
    pytest.param(b"[]", 422, id="list"),
    pytest.param(b'[{"type": "test.echo"}]', 422, id="bare-list-of-jobs"),
    pytest.param(b'"jobs"', 422, id="string"),
    pytest.param(b"null", 422, id="null"),
    pytest.param(b'{"jobs": null}', 422, id="jobs-null"),
    pytest.param(b'{"jobs": {}}', 422, id="jobs-object"),
    pytest.param(b'{"jobs": []}', 422, id="jobs-empty"),
    pytest.param(b'{"jobs": [1, "x", []]}', 422, id="items-not-objects"),
    pytest.param(b'{"jobs": [{"type": "test.echo"}], "extra": 1}', 422, id="unknown-field"),
    pytest.param(
        b'{"jobs": [{"type": "test.echo"}, {"type": "test.echo", "x": 1}]}', 422, id="one-bad-item"
    ),
    pytest.param(
        b'{"jobs": [{"type": "test.echo"}, {"type": "test.echo", "type": "a"}]}',
        400,
        id="dup-key-in-item",
    ),
    pytest.param(
        b'{"jobs": [{"type": "test.echo", "payload": {"x": 1e400}}]}', 422, id="overflow-in-item"
    ),
]


@pytest.mark.parametrize(("raw", "status"), BAD_BATCHES)
def test_hostile_batch_is_a_clear_4xx_and_stores_none_of_it(shared, raw, status):
    client, engine = shared
    before = _stored_jobs(engine)
    _assert_problem(_post(client, raw, "/jobs/batch"), status)
    assert _stored_jobs(engine) == before


def test_a_payload_over_its_limit_is_422_even_under_the_body_limit(client, app, engine):
    app.config["JOBSVC_MAX_PAYLOAD_BYTES"] = 1000
    assert (
        _post(client, json.dumps({**ECHO, "payload": {"x": "y" * 990}}).encode()).status_code == 201
    )
    response = _post(client, json.dumps({**ECHO, "payload": {"x": "y" * 1000}}).encode())
    _assert_problem(response, 422)
    assert "limit is 1000" in response.json["errors"]["payload"][0]
    assert _stored_jobs(engine) == 1


def test_payload_exactly_at_the_depth_limit_is_accepted(client, app):
    depth = app.config["JOBSVC_MAX_JSON_DEPTH"]
    payload: dict = {}
    for _ in range(depth - 2):  # the body and the payload are two levels
        payload = {"a": payload}
    assert _post(client, json.dumps({**ECHO, "payload": payload}).encode()).status_code == 201
    too_deep = {"a": payload}
    assert _post(client, json.dumps({**ECHO, "payload": too_deep}).encode()).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/jobs/-1", 404),
        ("GET", "/jobs/0", 404),
        ("GET", "/jobs/%00", 404),
        ("GET", "/jobs/1%0A", 404),
        ("GET", "/jobs/0x10", 404),
        ("GET", "/jobs/+1", 404),
        ("GET", "/jobs/%D9%A3", 404),
        ("GET", "/jobs/%EF%BC%91", 404),
        ("GET", "/jobs/1.0", 404),
        ("GET", "/jobs/" + "9" * 40, 404),
        ("GET", "/jobs/9223372036854775808", 404),
        ("POST", "/jobs/-1/cancel", 404),
        ("POST", "/jobs/%D9%A3/retry", 404),
        ("GET", "/jobs/batch", 405),
        ("GET", "/jobs/1/cancel", 405),
    ],
)
def test_hostile_ids_are_404_problems(shared, method, path, status):
    client, _ = shared
    if client.get("/jobs/1").status_code == 404:
        client.post("/jobs", json=ECHO)  # job 1 exists, so "1\n" or "+1" must not find it
    assert client.get("/jobs/1").status_code == 200
    _assert_problem(client.open(path, method=method), status)


@pytest.mark.parametrize(
    "query",
    [
        "limit=%D9%A3",
        "limit=%EF%BC%95",
        "limit=5_0",
        "limit=+5",
        "limit=%205",
        "limit=5%0A",
        "limit=1e2",
        "limit=0x10",
        "before=-1",
        "before=99999999999999999999",
        "before=9223372036854775808",
        "limit=1&limit=500",
        "status=PENDING&status=DONE",
        "status=",
        "status=pending",
        "queue=",
        "queue=%00",
        "queue=a%0A",
        "queue=%FF%FE",
        "type=os.system%28%29",
        "type=" + "a" * 200,
        "limit",
        "unknown=1",
    ],
)
def test_hostile_list_queries_are_422(shared, query):
    _assert_problem(shared[0].get(f"/jobs?{query}"), 422)


@pytest.mark.parametrize(
    "payload",
    [
        {"big": 10**30, "negative": -(2**64) - 1, "max_int64": 2**63 - 1},
        {"digits": int("7" * 4000)},
        {
            "tenth": 0.1,
            "tiny": 5e-324,
            "huge": 1.7976931348623157e308,
            "neg_zero": -0.0,
            "exp": 1e-7,
            "whole": 100000.0,
        },
        {"nul": "a\u0000b", "\u0000key": "\u0000", "controls": "\u0001\u001f\u007f"},
        {
            "emoji": "\U0001f600",
            "accents": "é漢字",
            "rtl": "\u202e",
            "bom": "\ufeff",
            "escapes": '"\\/\b\f\n\r\t',
        },
        {"order": {"z": 1, "a": 2, "m": [3, {"y": None, "b": True}]}, "empty": {}, "list": []},
        {"sql": "'); DROP TABLE jobs;--", "html": "<script>alert(1)</script>"},
    ],
    ids=[
        "big-ints",
        "4000-digits",
        "doubles",
        "nul-and-controls",
        "unicode",
        "order-and-empties",
        "injection-text",
    ],
)
def test_stored_payload_comes_back_byte_identical(client, engine, job_store, payload):
    sent = json.dumps({**ECHO, "payload": payload}, ensure_ascii=False).encode("utf-8")
    response = _post(client, sent)
    assert response.status_code == 201, response.get_data(as_text=True)
    job_id = response.json["id"]
    # The API answers the compact, ASCII-escaped form of exactly what was parsed: the same
    # bytes on both backends, because each test run checks against the same expectation.
    expected = json.dumps(payload, separators=(",", ":")).encode("ascii")
    assert b'"payload":' + expected in client.get(f"/jobs/{job_id}").get_data()
    assert expected in client.get("/jobs").get_data()
    # The worker hands the handler the same value, and its result round-trips as well.
    (record,) = _drain(engine, job_store, [job_id])
    assert record.status is JobStatus.DONE
    assert json.dumps(record.result["echo"], separators=(",", ":")).encode("ascii") == expected


def test_import_path_types_are_stored_as_names_and_never_imported(database_url, tmp_path):
    """Without JOBSVC_HANDLERS the API takes any well-formed name; the worker only looks it up."""
    settings = {**FAST_SETTINGS, "JOBSVC_HANDLERS": ()}
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, **settings})
    try:
        client = app.test_client()
        with app.app_context():
            engine = db.engine
        from jobsvc.store import JobStore

        store = JobStore(engine)
        assert "antigravity" not in sys.modules  # importing it opens a web browser
        ids = [
            client.post("/jobs", json={"type": name}).json["id"]
            for name in ("antigravity", "os.system", "subprocess.Popen")
        ]
        records = _drain(engine, store, ids)
        assert all(r.status is JobStatus.FAILED for r in records)
        assert all("no handler is registered" in r.last_error for r in records)
        assert "antigravity" not in sys.modules
    finally:
        with app.app_context():
            db.engine.dispose()


def test_database_errors_never_carry_bound_values_into_logs(engine):
    from sqlalchemy.exc import DBAPIError

    marker = "payload-value-7f3a"
    with pytest.raises(DBAPIError) as caught, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": marker})
    assert marker not in str(caught.value)
