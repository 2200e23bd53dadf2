"""The settings every test app and test process runs with."""

from __future__ import annotations

import os

import pytest

POSTGRES_ENV = "JOBSVC_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]
TERMINAL = {"DONE", "FAILED", "CANCELLED"}
RETRY_SEED = 7  # the lease_store fixture's jitter: tests can replay its draws
# Short leases, polls and backoffs: the lifecycle plays out in seconds, not minutes.
FAST_SETTINGS = {
    "JOBSVC_LEASE_SECONDS": 2.0,
    "JOBSVC_HEARTBEAT_SECONDS": 0.5,
    "JOBSVC_POLL_SECONDS": 0.05,
    "JOBSVC_RETRY_BASE_SECONDS": 0.05,
    "JOBSVC_RETRY_MAX_SECONDS": 1.0,
    "JOBSVC_SHUTDOWN_GRACE_SECONDS": 5.0,
    "JOBSVC_HANDLERS": ("tests.handlers",),
}


def admin_url() -> str | None:
    """Return the PostgreSQL server URL tests may create databases on, if one is given."""
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_ENV} must be set under CI: PostgreSQL tests are required there")
    return url


def require_admin_url() -> str:
    """Return the PostgreSQL server URL, or skip the test when none is given."""
    url = admin_url()
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    return url


def process_env(settings: dict[str, object]) -> dict[str, str]:
    """Return ``settings`` as environment variables (tuples joined by commas)."""
    return {
        key: ",".join(value) if isinstance(value, tuple) else str(value)
        for key, value in settings.items()
    }


FULL_SCALE_ENV = "JOBSVC_FAULTS_SCALE"  # "full": the long runs (``make faults``)


def slow_e2e_backends(default: str) -> pytest.MarkDecorator:
    """Run a slow end-to-end test or fault scenario (a browser, a Prometheus, real worker
    processes) on ``default`` in ``make test`` and on every backend under
    ``JOBSVC_FAULTS_SCALE=full``: what differs by backend is the store, which the fast tests
    cover on both. It keeps ``make test`` under 15 minutes."""
    backends = BACKENDS if os.environ.get(FULL_SCALE_ENV) == "full" else [default]
    return pytest.mark.parametrize("backend", backends, indirect=True)
