"""``jobsvc.enqueue`` on the caller's own connection: the job commits with the caller's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select
from sqlalchemy.orm import Session

import jobsvc
from jobsvc.config import normalize_database_url
from jobsvc.errors import ValidationFailed
from jobsvc.models import Job

metadata = MetaData()
orders = Table("orders", metadata, Column("id", Integer, primary_key=True), Column("item", String))
SETTINGS = {"JOBSVC_HANDLERS": ("tests.handlers",)}


@pytest.fixture
def app_engine(service):
    engine = create_engine(normalize_database_url(service.env["DATABASE_URL"]))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_job_enqueued_in_a_committed_transaction_runs(service, app_engine):
    service.start_api()
    service.start_worker()
    with app_engine.begin() as connection:
        connection.execute(orders.insert().values(item="book"))
        job = jobsvc.enqueue(connection, "test.echo", {"order": 1}, priority=4, config=SETTINGS)
    (done,) = service.wait_terminal([job.id])
    assert done["status"] == "DONE" and done["result"]["echo"] == {"order": 1}
    assert done["priority"] == 4 and done["max_attempts"] == 3  # the API's default
    assert _count(app_engine, orders) == 1


def test_a_rolled_back_transaction_leaves_neither_its_rows_nor_its_job(service, app_engine):
    with Session(app_engine) as session:
        session.execute(orders.insert().values(item="book"))
        jobsvc.enqueue(session, "test.echo", {"order": 2}, config=SETTINGS)
        session.rollback()
    assert _count(app_engine, orders) == 0
    assert _count(app_engine, Job.__table__) == 0


def test_a_job_is_validated_as_post_jobs_validates_it(service, app_engine):
    with app_engine.connect() as connection:
        with pytest.raises(ValidationFailed) as invalid:
            jobsvc.enqueue(connection, "test.echo", {}, priority="high", config=SETTINGS)
        assert invalid.value.errors == {"priority": ["Not a valid integer."]}
        with pytest.raises(ValidationFailed) as unknown:
            jobsvc.enqueue(connection, "no.such.type", config=SETTINGS)
        assert "Unknown job type" in unknown.value.errors["type"][0]
        first = jobsvc.enqueue(connection, "test.echo", unique_key="k", config=SETTINGS)
        again = jobsvc.enqueue(connection, "test.echo", unique_key="k", config=SETTINGS)
        assert again.duplicate and again.id == first.id


def test_a_callback_url_is_held_to_the_apis_ssrf_rules(service, app_engine):
    webhooks = {**SETTINGS, "JOBSVC_WEBHOOK_SECRET": "whsec_" + "A" * 32}
    with app_engine.connect() as connection:
        with pytest.raises(ValidationFailed) as off:
            jobsvc.enqueue(
                connection, "test.echo", callback_url="http://127.0.0.1/", config=SETTINGS
            )
        assert "JOBSVC_WEBHOOK_SECRET is not set" in off.value.errors["callback_url"][0]
        with pytest.raises(ValidationFailed) as unlisted:
            jobsvc.enqueue(
                connection, "test.echo", callback_url="http://127.0.0.1/", config=webhooks
            )
        assert "JOBSVC_WEBHOOK_ALLOWED_HOSTS" in unlisted.value.errors["callback_url"][0]
        listed = {**webhooks, "JOBSVC_WEBHOOK_ALLOWED_HOSTS": ("localhost",)}
        with pytest.raises(ValidationFailed) as loopback:
            jobsvc.enqueue(connection, "test.echo", callback_url="http://localhost/", config=listed)
        assert "non-public address" in loopback.value.errors["callback_url"][0]
        allowed = {**listed, "JOBSVC_WEBHOOK_ALLOW_PRIVATE": True}
        job = jobsvc.enqueue(
            connection, "test.echo", callback_url="http://localhost/", config=allowed
        )
        assert job.created
        connection.rollback()
    assert _count(app_engine, Job.__table__) == 0  # nothing refused was stored
