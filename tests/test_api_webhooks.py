"""Completion webhooks in-process: the SSRF rules at enqueue and at delivery, the signature,
the delivery state a job shows. Real worker processes: tests/e2e/test_webhooks.py."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from jobsvc import create_app
from jobsvc.callbacks import CallbackPolicy
from jobsvc.retry import RetryPolicy
from jobsvc.store import outcomes
from jobsvc.store.deliveries import DeliveryStore
from jobsvc.webhooks import Signer
from tests.support.receiver import TEST_WEBHOOK_SECRET, Receiver, receiving
from tests.support.settings import FAST_SETTINGS
from worker.deliveries import Deliverer

LOOPBACK = "127.0.0.1"


def _app(database_url: str, **settings: object):
    return create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, **FAST_SETTINGS, **settings}
    )


@pytest.fixture
def hooks_app(migrated_database_url: str) -> Iterator:
    app = _app(
        migrated_database_url,
        JOBSVC_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        JOBSVC_WEBHOOK_ALLOWED_HOSTS=(LOOPBACK,),
    )
    yield app
    app.extensions["jobsvc"].ended_jobs.close()
    app.extensions["jobsvc"].services.engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def _deliverer(app, policy: CallbackPolicy | None = None, max_attempts: int = 3) -> Deliverer:
    services = app.extensions["jobsvc"].services
    store = DeliveryStore(services.engine, RetryPolicy(0.0, 0.0, random.Random(1)))
    return Deliverer(
        store,
        policy or CallbackPolicy((LOOPBACK,), allow_private=False),
        Signer(TEST_WEBHOOK_SECRET),
        timeout_seconds=2.0,
        max_attempts=max_attempts,
        poll_seconds=0.05,
    )


def _finish(app, result: object = None) -> None:
    leases = app.extensions["jobsvc"].services.leases
    (job,) = leases.claim(None, 1, "w-1", lease_seconds=30)
    assert leases.finish([outcomes.succeeded(job, result)]) == []


def _refusal(client, url: str) -> str:
    response = client.post("/jobs", json={"type": "test.echo", "callback_url": url})
    assert response.status_code == 422, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    (message,) = response.json["errors"]["callback_url"]
    return message


def test_callback_url_is_refused_while_no_host_is_allowed(migrated_database_url):
    app = _app(migrated_database_url, JOBSVC_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET)
    try:
        assert "JOBSVC_WEBHOOK_ALLOWED_HOSTS" in _refusal(app.test_client(), "https://example.com/")
    finally:
        app.extensions["jobsvc"].services.engine.dispose()


def test_a_host_listed_by_name_that_resolves_to_loopback_is_refused(migrated_database_url):
    app = _app(
        migrated_database_url,
        JOBSVC_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        JOBSVC_WEBHOOK_ALLOWED_HOSTS=("localhost",),
    )
    try:
        message = _refusal(app.test_client(), "http://localhost:9/hook")
        assert "127.0.0.1" in message and "non-public address" in message
    finally:
        app.extensions["jobsvc"].services.engine.dispose()


def test_callback_url_is_refused_without_a_signing_secret(migrated_database_url):
    app = _app(migrated_database_url, JOBSVC_WEBHOOK_ALLOWED_HOSTS=(LOOPBACK,))
    try:
        assert "JOBSVC_WEBHOOK_SECRET" in _refusal(app.test_client(), f"http://{LOOPBACK}/")
    finally:
        app.extensions["jobsvc"].services.engine.dispose()


def test_callback_urls_outside_the_rules_are_refused_naming_why(hooks_app):
    client = hooks_app.test_client()
    for url, words in [
        ("https://evil.example/hook", "not in JOBSVC_WEBHOOK_ALLOWED_HOSTS"),
        ("ftp://127.0.0.1/hook", "http:// or https:// URL"),
        ("http://user:pw@127.0.0.1/hook", "user name or password"),
        ("http://127.0.0.1:99999/hook", "not a URL"),
    ]:
        assert words in _refusal(client, url), url


def test_a_listed_address_is_allowed_and_the_job_shows_it(hooks_app, receiver):
    client = hooks_app.test_client()
    url = receiver.url()
    response = client.post("/jobs", json={"type": "test.echo", "callback_url": url})
    assert response.status_code == 201, response.json
    job = client.get(f"/jobs/{response.json['id']}").json
    assert job["callback_url"] == url and job["webhook"] is None


def test_the_final_json_is_posted_signed_and_the_job_shows_it_delivered(hooks_app, receiver):
    client = hooks_app.test_client()
    job_id = client.post("/jobs", json={"type": "test.echo", "callback_url": receiver.url()}).json[
        "id"
    ]
    _finish(hooks_app, {"answer": 42})
    assert client.get(f"/jobs/{job_id}").json["webhook"]["status"] == "pending"
    assert _deliverer(hooks_app).run_once() == 1
    (posted,) = receiver.to("/hook")
    document = Webhook(TEST_WEBHOOK_SECRET).verify(posted.body, posted.headers)
    shown = client.get(f"/jobs/{job_id}").json
    assert shown["webhook"]["status"] == "delivered" and shown["webhook"]["attempts"] == 1
    assert document == {name: value for name, value in shown.items() if name != "webhook"}
    assert document["status"] == "DONE" and document["result"] == {"answer": 42}
    assert posted.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 32).verify(posted.body, posted.headers)


def test_a_cancelled_pending_job_posts_its_webhook_too(hooks_app, receiver):
    client = hooks_app.test_client()
    job_id = client.post("/jobs", json={"type": "test.echo", "callback_url": receiver.url()}).json[
        "id"
    ]
    cancelled = client.post(f"/jobs/{job_id}/cancel").json
    assert cancelled["webhook"]["status"] == "pending"
    _deliverer(hooks_app).run_once()
    (posted,) = receiver.to("/hook")
    assert json.loads(posted.body)["status"] == "CANCELLED"


def test_failed_tries_are_retried_then_marked_failed_with_the_last_error(hooks_app, receiver):
    client = hooks_app.test_client()
    receiver.answer("/down", 500, 503, 502)
    job_id = client.post(
        "/jobs", json={"type": "test.echo", "callback_url": receiver.url("/down")}
    ).json["id"]
    _finish(hooks_app)
    deliverer = _deliverer(hooks_app, max_attempts=3)
    for _ in range(3):
        deliverer.run_once()
    webhook = client.get(f"/jobs/{job_id}").json["webhook"]
    assert webhook["status"] == "failed" and webhook["attempts"] == 3
    assert webhook["last_error"] == "HTTP 502"
    tries = receiver.to("/down")
    assert len(tries) == 3
    assert len({t.headers["webhook-id"] for t in tries}) == 1  # one message, tried three times
    assert deliverer.run_once() == 0


def test_delivery_checks_the_address_again_against_dns_rebinding(hooks_app, receiver):
    client = hooks_app.test_client()
    job_id = client.post("/jobs", json={"type": "test.echo", "callback_url": receiver.url()}).json[
        "id"
    ]
    _finish(hooks_app)
    # The name now resolves to a private address that the rules refuse.
    rebound = CallbackPolicy((LOOPBACK,), allow_private=False, resolver=lambda h, p: ["10.1.2.3"])
    _deliverer(hooks_app, policy=rebound).run_once()
    webhook = client.get(f"/jobs/{job_id}").json["webhook"]
    assert webhook["status"] == "failed" and "10.1.2.3" in webhook["last_error"]
    assert receiver.received == []
