"""Every setting is parsed and range-checked at start; a bad value is refused by name."""

from __future__ import annotations

import pytest

from jobsvc import config, create_app, jobfields
from jobsvc.config import ConfigError

# name: (a good value, what it parses to, a bad value, words the refusal must hold)
TABLE = {
    "AUTO_MIGRATE": ("off", False, "maybe", "expected a boolean"),
    "HANDLERS": ("a.b, c_d.e", ("a.b", "c_d.e"), "a b;rm -rf", "module import paths"),
    "INSTANCE_PATH": ("/srv/jobsvc", "/srv/jobsvc", "relative/dir", "absolute path"),
    "LEASE_SECONDS": ("45", 45.0, "inf", "0.1 to 86400 seconds"),
    "HEARTBEAT_SECONDS": ("5", 5.0, "-1", "0.01 to 3600 seconds"),
    "POLL_SECONDS": ("0.2", 0.2, "nan", "0.001 to 3600 seconds"),
    "MAX_ATTEMPTS": ("7", 7, "1001", "from 1 to 1000"),
    "RETRY_BASE_SECONDS": ("1.5", 1.5, "0", "0.001 to 86400 seconds"),
    "RETRY_MAX_SECONDS": ("60", 60.0, "1e300", "0.001 to 604800 seconds"),
    "SHUTDOWN_GRACE_SECONDS": ("10", 10.0, "0", "above 0 to 86400 seconds"),
    "DEFAULT_TIMEOUT_SECONDS": ("30", 30.0, "inf", "0 (no timeout) or from 0.001 to 604800"),
    "MAX_BODY_BYTES": ("2097152", 2_097_152, "1e6", "from 1024 to 1073741824"),
    "MAX_PAYLOAD_BYTES": ("1000", 1000, "0", "from 1 to 1073741824"),
    "MAX_JSON_DEPTH": ("16", 16, "5000", "from 1 to 200"),
    "MAX_RESULT_BYTES": ("2048", 2048, "0", "from 1 to 1073741824"),
    "CANCEL_GRACE_SECONDS": ("1.5", 1.5, "-1", "from 0 to 3600 seconds"),
    "MAX_BATCH_JOBS": ("500", 500, "-3", "from 1 to 100000"),
    "IDEMPOTENCY_SECONDS": ("3600", 3600.0, "0", "from 1 to 31536000 seconds"),
    "TRACEBACK_BYTES": ("4096", 4096, "lots", "from 1 to 1048576"),
    "RATE_LIMIT_PER_SECOND": ("0", 0.0, "-5", "0 to 1000000"),
    "RATE_LIMIT_BURST": ("10", 10, "0", "from 1 to 1000000"),
    "MAX_READY_PER_QUEUE": ("0", 0, "-1", "0 (no cap) or a whole number from 1"),
    "POOL_TIMEOUT_SECONDS": ("2", 2.0, "30000", "0.01 to 300 seconds"),
    "PG_STATEMENT_TIMEOUT_SECONDS": ("0", 0.0, "inf", "0 (no timeout) or from 0.001 to 86400"),
    "PG_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": ("5", 5.0, "-1", "0 (no timeout) or from 0.001"),
    "PG_CONNECT_TIMEOUT_SECONDS": ("3", 3, "1", "from 2 to 3600"),
    "PG_KEEPALIVES_IDLE_SECONDS": ("30", 30, "0", "from 1 to 7200"),
    "PG_KEEPALIVES_INTERVAL_SECONDS": ("2", 2, "0.5", "from 1 to 600"),
    "PG_KEEPALIVES_COUNT": ("5", 5, "1000", "from 1 to 100"),
    "PG_TRANSACTION_POOLER": ("on", True, "pgbouncer", "expected a boolean"),
    "LISTEN_DATABASE_URL": (
        "postgres://u@db:5432/jobs",
        "postgresql+psycopg://u@db:5432/jobs",
        "mysql://u@db/jobs",
        "expected a postgresql:// URL",
    ),
    "METRICS_MAX_QUEUES": ("20", 20, "0", "from 1 to 10000"),
    "MAX_WAIT_SECONDS": ("5", 5.0, "3601", "from 0 to 3600 seconds"),
    "MAX_WAITERS": ("10", 10, "-1", "from 0 to 10000"),
    "WEBHOOK_SECRET": (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_c2hvcnQ=",
        "whsec_<base64 of 24 to 64 bytes>",
    ),
    "WEBHOOK_ALLOWED_HOSTS": (
        "Example.com, *.hooks.example.org,10.0.0.5",
        ("example.com", "*.hooks.example.org", "10.0.0.5"),
        "http://example.com/x",
        "host names",
    ),
    "WEBHOOK_ALLOW_PRIVATE": ("yes", True, "sometimes", "expected a boolean"),
    "WEBHOOK_MAX_ATTEMPTS": ("3", 3, "0", "from 1 to 100"),
    "WEBHOOK_TIMEOUT_SECONDS": ("2.5", 2.5, "0", "0.1 to 300 seconds"),
    "PRIORITY_AGING_SECONDS": ("60", 60.0, "0.01", "0 (off) or from 0.1 to 31536000 seconds"),
    "RETAIN_DONE_SECONDS": ("3600", 3600.0, "-1", "0 (keep forever) or from 1 to"),
    "RETAIN_FAILED_SECONDS": ("0", 0.0, "0.5", "0 (keep forever) or from 1 to"),
    "RETAIN_CANCELLED_SECONDS": ("86400", 86400.0, "1e12", "0 (keep forever) or from 1 to"),
    "LOG_LEVEL": ("debug", "DEBUG", "LOUD", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    "LOG_FORMAT": ("JSON", "json", "xml", "text, json"),
    "SECRET_KEY": ("k" * 40, "k" * 40, "short", "at least 32 characters"),
}
ROWS = [(name, *row) for name, row in TABLE.items()]


def test_the_table_covers_every_setting():
    assert set(TABLE) == {setting.name for setting in config.SETTINGS}


@pytest.mark.parametrize(
    ("name", "good", "parsed", "bad", "words"), ROWS, ids=[row[0] for row in ROWS]
)
def test_every_setting_takes_a_good_value_and_refuses_a_bad_one(
    tmp_path, name, good, parsed, bad, words
):
    key = f"JOBSVC_{name}"
    assert config.load(str(tmp_path), environ={key: good})[key] == parsed
    with pytest.raises(ConfigError) as refused:
        config.load(str(tmp_path), environ={key: bad})
    message = str(refused.value)
    assert key in message and repr(bad) in message and words in message, message


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-5", "1e999", "Infinity"])
def test_no_duration_is_infinite_nan_or_negative(tmp_path, value):
    for setting in config.SETTINGS:
        if setting.name.endswith("_SECONDS"):
            with pytest.raises(ConfigError, match=f"JOBSVC_{setting.name}"):
                config.load(str(tmp_path), environ={f"JOBSVC_{setting.name}": value})


def test_heartbeat_must_be_below_half_the_lease(tmp_path):
    with pytest.raises(ConfigError) as refused:
        config.load(str(tmp_path), environ={"JOBSVC_LEASE_SECONDS": "0.5"})
    message = str(refused.value)
    assert "JOBSVC_HEARTBEAT_SECONDS=10" in message and "JOBSVC_LEASE_SECONDS=0.5" in message
    assert "below 0.25" in message
    with pytest.raises(ConfigError, match="HEARTBEAT"):
        config.load(
            str(tmp_path), environ={"JOBSVC_LEASE_SECONDS": "20", "JOBSVC_HEARTBEAT_SECONDS": "10"}
        )
    ok = config.load(
        str(tmp_path), environ={"JOBSVC_LEASE_SECONDS": "20", "JOBSVC_HEARTBEAT_SECONDS": "9.9"}
    )
    assert ok["JOBSVC_HEARTBEAT_SECONDS"] == 9.9


def test_retry_cap_is_at_least_the_base(tmp_path):
    with pytest.raises(ConfigError, match="JOBSVC_RETRY_MAX_SECONDS=1 .*RETRY_BASE_SECONDS=2"):
        config.load(str(tmp_path), environ={"JOBSVC_RETRY_MAX_SECONDS": "1"})


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://app:s3cret@db/jobs", "sqlite:// or postgresql://"),
        ("sqlite:///relative.sqlite3", "absolute file path"),
        ("not a url", "expected a URL"),
    ],
)
def test_database_url_is_checked_and_its_password_hidden(tmp_path, url, words):
    with pytest.raises(ConfigError) as refused:
        config.load(str(tmp_path), environ={"DATABASE_URL": url})
    message = str(refused.value)
    assert message.startswith("DATABASE_URL=") and words in message
    assert "s3cret" not in message


def test_a_refused_listen_url_hides_its_password(tmp_path):
    with pytest.raises(ConfigError) as refused:
        config.load(str(tmp_path), environ={"JOBSVC_LISTEN_DATABASE_URL": "mysql://u:s3cret@h/d"})
    assert "s3cret" not in str(refused.value) and "u:***@h" in str(refused.value)


def test_postgres_urls_are_accepted_for_psycopg(tmp_path):
    loaded = config.load(str(tmp_path), environ={"DATABASE_URL": "postgres://u:p@h:5/db"})
    assert loaded["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@h:5/db"
    assert config.shown_database(loaded["SQLALCHEMY_DATABASE_URI"]) == (
        "postgresql+psycopg://u:***@h:5/db"
    )


def test_test_config_is_checked_as_the_environment_is(tmp_path):
    base = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    for bad in (
        {"JOBSVC_DEFAULT_TIMEOUT_SECONDS": float("inf")},
        {"JOBSVC_DEFAULT_TIMEOUT_SECONDS": float("nan")},
        {"JOBSVC_DEFAULT_TIMEOUT_SECONDS": -5.0},
        {"JOBSVC_LEASE_SECONDS": 0.5, "JOBSVC_HEARTBEAT_SECONDS": 10.0},
    ):
        with pytest.raises(ConfigError):
            create_app({**base, **bad})


def test_settings_bounds_match_the_job_fields():
    assert config.MAX_ATTEMPTS_RANGE == jobfields.MAX_ATTEMPTS_RANGE
    assert config.TIMEOUT_RANGE_SECONDS == jobfields.TIMEOUT_RANGE_SECONDS


@pytest.mark.parametrize("queues", ["", ",", " ", "a,,b", "a b", "*,a"])
def test_worker_refuses_empty_or_malformed_queues(queues, capsys):
    from worker.cli import EXIT_CONFIG_ERROR, main

    assert main(["--queues", queues, "--burst"]) == EXIT_CONFIG_ERROR
    assert "--queues" in capsys.readouterr().err


def test_worker_queues_star_means_every_queue():
    from worker.cli import _queues

    assert _queues("*") is None
    assert _queues("a, b") == ("a", "b")
