"""No 500, whatever is stored or sent: numbers of any size, results of any depth, a pool with no
free connection, a statement the server cancels; and /metrics and /health that tell the truth."""

from __future__ import annotations

import time

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout

from jobsvc import create_app
from jobsvc.errors import DatabaseUnavailable
from jobsvc.extensions import db
from jobsvc.store import JobStore
from jobsvc.store.dialects.jsontext import OMITTED_KEY
from tests.support.settings import FAST_SETTINGS, admin_url

ECHO = {"type": "test.echo", "payload": {}}
HUGE = 10**310  # no double holds it: float(HUGE) raises OverflowError


def _stored(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()


def _is_problem(response, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"


# -- integers of any size in any numeric field ---------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [HUGE, -HUGE, 2**63, -(2**63) - 1, 10**4000],
    ids=["1e310", "-1e310", "2e63", "-2e63", "4001-digits"],
)
@pytest.mark.parametrize("field", ["timeout_seconds", "priority", "max_attempts"])
def test_an_integer_of_any_size_is_422_alone_and_in_a_batch(client, engine, field, value):
    item = {**ECHO, field: value}
    _is_problem(client.post("/jobs", json=item), 422)
    batch = client.post("/jobs/batch", json={"jobs": [ECHO, item]})
    _is_problem(batch, 422)
    assert field in batch.json["errors"]["jobs"]["1"]
    assert _stored(engine) == 0


# -- stored JSON of any depth --------------------------------------------------------------------


def _store_result(engine, job_id: int, json_text: str) -> None:
    # As a misbehaving worker would: straight into the row, no API in between.
    value = "CAST(:result AS json)" if engine.dialect.name == "postgresql" else ":result"
    with engine.begin() as connection:
        # value is one of two constants above, not data
        statement = f"UPDATE jobs SET result = {value}, status = 'DONE' WHERE id = :id"  # noqa: S608
        connection.execute(text(statement), {"result": json_text, "id": job_id})


@pytest.mark.parametrize("depth", [980, 5000])
def test_a_job_whose_stored_result_is_too_deep_stays_readable(client, engine, depth):
    deep_id = client.post("/jobs", json=ECHO).json["id"]
    fine_id = client.post("/jobs", json={**ECHO, "payload": {"n": 1}}).json["id"]
    _store_result(engine, deep_id, "[" * depth + "]" * depth)
    _store_result(engine, fine_id, '{"ok": [1, 2, {"x": null}]}')

    shown = client.get(f"/jobs/{deep_id}")
    assert shown.status_code == 200, shown.get_data(as_text=True)
    assert shown.json["status"] == "DONE"
    assert shown.json["result"][OMITTED_KEY] == "too_deep"
    listed = client.get("/jobs")
    assert listed.status_code == 200, listed.get_data(as_text=True)
    by_id = {job["id"]: job for job in listed.json["jobs"]}
    assert by_id[deep_id]["result"][OMITTED_KEY] == "too_deep"
    assert by_id[fine_id]["result"] == {"ok": [1, 2, {"x": None}]}


# -- a pool with no free connection, a statement the server cancels ------------------------------


def test_an_exhausted_pool_answers_503_soon(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            **FAST_SETTINGS,
            "JOBSVC_POOL_TIMEOUT_SECONDS": 0.2,
        }
    )
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    held = []
    try:
        while True:  # take every connection the pool will give
            held.append(engine.pool.connect())
    except PoolTimeout:
        pass
    try:
        for send in (
            lambda: client.get("/jobs"),
            lambda: client.post("/jobs", json=ECHO),
            lambda: client.get("/health"),
        ):
            started = time.monotonic()
            response = send()
            assert time.monotonic() - started < 3.0
            assert response.status_code == 503, response.get_data(as_text=True)
            assert int(response.headers["Retry-After"]) >= 1
    finally:
        for connection in held:
            connection.close()
    try:
        assert client.post("/jobs", json=ECHO).status_code == 201
    finally:
        engine.dispose()


def test_a_statement_the_server_cancels_is_database_unavailable(backend, app):
    if backend != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    timed = create_engine(database_url, connect_args={"options": "-c statement_timeout=200"})
    plain = (
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        with psycopg.connect(plain) as locker:
            locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseUnavailable):
                JobStore(timed).list()
            with pytest.raises(DatabaseUnavailable):
                JobStore(timed).count_waiting("default", 10)
    finally:
        timed.dispose()


# -- /metrics ------------------------------------------------------------------------------------


def test_metrics_sends_one_valid_content_type(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"


def test_metrics_reports_the_largest_queues_and_sums_the_rest(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            **FAST_SETTINGS,
            "JOBSVC_METRICS_MAX_QUEUES": 2,
        }
    )
    client = app.test_client()
    try:
        sizes = {"big": 5, "mid": 3, "small": 2, "tiny": 1}
        jobs = [{**ECHO, "queue": queue} for queue, size in sizes.items() for _ in range(size)]
        assert client.post("/jobs/batch", json={"jobs": jobs}).status_code == 201
        body = client.get("/metrics").get_data(as_text=True)
        pending = {
            sample.labels["queue"]: sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if sample.labels.get("status") == "PENDING"
        }
        assert pending == {"big": 5, "mid": 3, "(other)": 3}
    finally:
        with app.app_context():
            db.engine.dispose()


# -- /health on a database that cannot be written ------------------------------------------------


def test_health_is_503_when_the_sqlite_file_is_read_only(tmp_path):
    path = tmp_path / "jobsvc.sqlite3"
    writable = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", **FAST_SETTINGS}
    )
    assert writable.test_client().get("/health").status_code == 200
    read_only = create_app(
        {
            "TESTING": True,
            **FAST_SETTINGS,
            "JOBSVC_AUTO_MIGRATE": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///file:{path}?mode=ro&uri=true",
        }
    )
    response = read_only.test_client().get("/health")
    _is_problem(response, 503)
    assert "cannot be written" in response.json["detail"]
    assert "readonly" in response.json["detail"]
    for each in (writable, read_only):
        with each.app_context():
            db.engine.dispose()


def test_health_is_503_when_postgresql_transactions_are_read_only(backend, app, client):
    if backend != "postgresql":
        pytest.skip("default_transaction_read_only is PostgreSQL's")
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    assert client.get("/health").status_code == 200
    url = make_url(database_url)
    admin = admin_url()  # another database: the test's own turns read-only
    setting = f'ALTER DATABASE "{url.database}" {{}} default_transaction_read_only'
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(setting.format("SET") + " = on")
    try:
        with app.app_context():
            db.engine.dispose()  # the setting applies to new sessions
        response = client.get("/health")
        _is_problem(response, 503)
        assert "read-only" in response.json["detail"]
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(setting.format("RESET"))
        with app.app_context():
            db.engine.dispose()
    assert client.get("/health").status_code == 200


def test_stored_json_too_large_or_too_deep_decodes_to_a_placeholder():
    from jobsvc.store.dialects.jsontext import MAX_STORED_JSON_CHARS, load_json

    assert load_json('{"a": [1, 2]}') == {"a": [1, 2]}
    assert load_json("[" * 100_000 + "]" * 100_000)[OMITTED_KEY] == "too_deep"
    assert load_json('"' + "a" * MAX_STORED_JSON_CHARS + '"')[OMITTED_KEY] == "too_large"
