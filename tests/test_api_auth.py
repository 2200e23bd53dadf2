"""Who may call the API: loopback until a token exists, then bearer tokens with scopes."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from sqlalchemy import text

from jobsvc.tokens import hash_token
from tests.support.tokens import bearer, make_token

JOB = {"type": "test.echo", "payload": {}}
REMOTE = {"REMOTE_ADDR": "203.0.113.7"}
CREATE_HINT = "flask --app jobsvc jobs token create"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("address", "served"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.168.1.2", False),
        ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False),
        ("", False),
        ("not-an-ip", False),
    ],
)
def test_without_tokens_only_loopback_is_served(client, address, served):
    response = client.get("/jobs", environ_base={"REMOTE_ADDR": address})
    if served:
        assert response.status_code == 200
        return
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert CREATE_HINT in response.json["detail"]


def test_a_remote_post_without_tokens_stores_nothing(client):
    assert client.post("/jobs", json=JOB, environ_base=REMOTE).status_code == 401
    assert client.get("/jobs").json["jobs"] == []


@pytest.mark.parametrize("remote", [{}, REMOTE])
def test_health_stays_open_with_or_without_tokens(client, app, remote):
    assert client.get("/health", environ_base=remote).status_code == 200
    make_token(app)
    assert client.get("/health", environ_base=remote).status_code == 200


def test_once_a_token_exists_loopback_needs_it_too(client, app):
    token = make_token(app)
    response = client.get("/jobs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/jobs", headers=bearer(token)).status_code == 200
    assert client.get("/jobs", headers=bearer(token), environ_base=REMOTE).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer jobsvc_wrong",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "jobsvc_x",
        "Bearer " + "x" * 5000,
        "Token {token}",
        "Bearer {token}x",
        "Bearer {token_upper}",
    ],
)
def test_wrong_or_malformed_token_is_401(client, app, header):
    token = make_token(app)
    value = header.format(token=token, token_upper=token.upper())
    response = client.get("/jobs", headers={"Authorization": value})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.mimetype == "application/problem+json"


def test_scheme_is_case_insensitive(client, app):
    token = make_token(app)
    assert client.get("/jobs", headers={"Authorization": f"bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    "where",
    [
        {"query_string": {"access_token": "{token}"}},
        {"headers": {"X-Api-Token": "{token}"}},
        {"headers": {"Cookie": "token={token}"}},
    ],
)
def test_token_is_accepted_only_in_the_authorization_header(client, app, where):
    token = make_token(app)
    kwargs = {
        key: {name: value.format(token=token) for name, value in values.items()}
        for key, values in where.items()
    }
    assert client.get("/jobs", **kwargs).status_code == 401


@pytest.mark.parametrize(
    ("scopes", "method", "path", "status"),
    [
        ("enqueue", "POST", "/jobs", 201),
        ("enqueue", "POST", "/jobs/batch", 201),
        ("enqueue", "GET", "/jobs", 403),
        ("enqueue", "GET", "/jobs/{id}", 403),
        ("enqueue", "POST", "/jobs/{id}/cancel", 403),
        ("read", "GET", "/jobs", 200),
        ("read", "GET", "/jobs/{id}", 200),
        ("read", "GET", "/metrics", 200),
        ("read", "GET", "/openapi.json", 200),
        ("read", "POST", "/jobs", 403),
        ("read", "POST", "/jobs/{id}/cancel", 403),
        ("read", "POST", "/jobs/{id}/retry", 403),
        ("admin", "POST", "/jobs", 201),
        ("admin", "GET", "/jobs/{id}", 200),
        ("admin", "POST", "/jobs/{id}/cancel", 200),
        ("enqueue,read", "POST", "/jobs/{id}/cancel", 403),
    ],
)
def test_scopes_decide_what_a_token_may_do(client, app, scopes, method, path, status):
    job_id = client.post("/jobs", json=JOB).json["id"]  # before any token: loopback is open
    token = make_token(app, scopes=scopes)
    body = {"jobs": [JOB]} if path.endswith("batch") else JOB if method == "POST" else None
    response = client.open(
        path.format(id=job_id),
        method=method,
        headers=bearer(token),
        json=body if path in ("/jobs", "/jobs/batch") else None,
    )
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 403:
        assert response.mimetype == "application/problem+json"


def test_unknown_routes_need_a_token_once_one_exists(client, app):
    token = make_token(app, scopes="read")
    assert client.get("/nothing-here").status_code == 401
    assert client.get("/nothing-here", headers=bearer(token)).status_code == 404


def test_rotation_keeps_every_live_token_working_until_revoked(client, app):
    old, new = make_token(app, "old"), make_token(app, "new")
    assert client.get("/jobs", headers=bearer(old)).status_code == 200
    assert client.get("/jobs", headers=bearer(new)).status_code == 200
    assert app.extensions["jobsvc"].services.tokens.revoke("old")
    assert client.get("/jobs", headers=bearer(old)).status_code == 401
    assert client.get("/jobs", headers=bearer(new)).status_code == 200


def test_cli_prints_the_token_once_on_the_last_line_and_revoke_ends_it(client, app, engine):
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["jobs", "token", "create", "--name", "deploy", "--scopes", "read,enqueue"]
    )
    assert created.exit_code == 0, created.output
    token = created.output.rstrip("\n").splitlines()[-1]
    assert token.startswith("jobsvc_") and " " not in token
    assert created.output.count(token) == 1
    assert client.get("/jobs", headers=bearer(token)).status_code == 200
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT * FROM api_tokens")).all()
    assert token not in repr(stored) and hash_token(token) in repr(stored)
    listed = runner.invoke(args=["jobs", "token", "list"])
    assert "deploy" in listed.output and token not in listed.output
    revoked = runner.invoke(args=["jobs", "token", "revoke", "deploy"])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/jobs", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "x", "--scopes", "read,root"],
        ["--name", "x", "--scopes", ""],
        ["--name", "has space", "--scopes", "read"],
        ["--name", "", "--scopes", "read"],
        ["--name", "no-scopes"],
    ],
)
def test_cli_rejects_bad_names_and_scopes(app, args):
    result = app.test_cli_runner().invoke(args=["jobs", "token", "create", *args])
    assert result.exit_code != 0
    assert not app.extensions["jobsvc"].services.tokens.any_live()


def test_cli_refuses_a_second_live_token_with_the_same_name(app):
    runner = app.test_cli_runner()
    create = ["jobs", "token", "create", "--name", "a", "--scopes", "read"]
    assert runner.invoke(args=create).exit_code == 0
    again = runner.invoke(args=create)
    assert again.exit_code != 0 and "already named" in again.output
    assert runner.invoke(args=["jobs", "token", "revoke", "a"]).exit_code == 0
    assert runner.invoke(args=create).exit_code == 0
    assert runner.invoke(args=["jobs", "token", "revoke", "nobody"]).exit_code != 0


def test_tokens_never_reach_the_logs(client, app, caplog):
    token = make_token(app)
    caplog.set_level(logging.DEBUG)
    client.post("/jobs", json=JOB, headers=bearer(token))
    client.get("/jobs", headers=bearer(token + "x"))
    client.get("/jobs/abc", headers=bearer(token))
    assert caplog.records, "expected the requests to log something at DEBUG"
    assert token not in caplog.text


def test_the_first_token_closes_loopback_within_the_cache_time(client, app):
    from jobsvc.api.presence import TOKENS_EXIST_CACHE_SECONDS, TokenPresence

    clock = FakeClock()
    api = app.extensions["jobsvc"]
    app.extensions["jobsvc"] = replace(
        api, token_presence=TokenPresence(api.services.tokens, clock=clock)
    )
    assert client.get("/jobs").status_code == 200  # "no tokens" is now cached
    token = make_token(app)
    assert client.get("/jobs", environ_base=REMOTE).status_code == 401  # never served remote
    assert client.get("/jobs", headers=bearer(token)).status_code == 200  # tokens: not cached
    clock.now += TOKENS_EXIST_CACHE_SECONDS / 2
    assert client.get("/jobs").status_code == 200  # still within the cache time
    clock.now += TOKENS_EXIST_CACHE_SECONDS / 2
    assert client.get("/jobs").status_code == 401


def test_start_warns_while_no_token_exists(database_url, caplog):
    from jobsvc import create_app
    from jobsvc.extensions import db

    caplog.set_level(logging.WARNING, logger="jobsvc.api.auth")
    config = {"SQLALCHEMY_DATABASE_URI": database_url, "JOBSVC_HANDLERS": ()}
    first = create_app(config)
    assert "no API token exists" in caplog.text
    make_token(first)
    caplog.clear()
    second = create_app(config)
    assert "no API token exists" not in caplog.text
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()
