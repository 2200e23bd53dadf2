"""Settings: defaults, then the environment (``DATABASE_URL``, ``JOBSVC_*``), then test config."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "JOBSVC_"


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected a number above 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"expected a finite number of at least 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a whole number of at least 0, got {text!r}")
    return value


def _handler_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Setting:
    """One ``JOBSVC_*`` setting: its default, how to parse it, and what it means."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "AUTO_MIGRATE",
        True,
        _bool,
        "Apply pending schema migrations when the API or a worker starts.",
    ),
    Setting(
        "HANDLERS",
        (),
        _handler_list,
        "Comma-separated import paths of handler modules. When set on the API, unknown job "
        "types are rejected with 422.",
    ),
    Setting(
        "LEASE_SECONDS",
        30.0,
        _positive_float,
        "How long a claimed job stays leased without a heartbeat before a worker rescues it.",
    ),
    Setting(
        "HEARTBEAT_SECONDS",
        10.0,
        _positive_float,
        "How often a worker extends the leases of the jobs it runs (keep it under lease/2).",
    ),
    Setting(
        "POLL_SECONDS",
        1.0,
        _positive_float,
        "How long an idle worker waits before looking for ready jobs again (PostgreSQL "
        "workers are also woken at once by LISTEN/NOTIFY).",
    ),
    Setting(
        "MAX_ATTEMPTS", 3, _positive_int, "Attempts a job gets when it does not say (max_attempts)."
    ),
    Setting(
        "RETRY_BASE_SECONDS",
        2.0,
        _positive_float,
        "Backoff base: attempt n waits a random time in [0, base * 2**(n-1)] (full jitter).",
    ),
    Setting("RETRY_MAX_SECONDS", 600.0, _positive_float, "Upper bound of one backoff delay."),
    Setting(
        "SHUTDOWN_GRACE_SECONDS",
        30.0,
        _positive_float,
        "After SIGTERM, how long running jobs may take before they are released for retry.",
    ),
    Setting(
        "CANCEL_GRACE_SECONDS",
        5.0,
        _positive_float,
        "After a running job is cancelled, how long its handler may take to stop by itself "
        "(ctx.cancelled) before the worker stops it.",
    ),
    Setting(
        "DEFAULT_TIMEOUT_SECONDS",
        0.0,
        float,
        "Timeout for jobs that give none; 0 means no timeout.",
    ),
    Setting(
        "MAX_BODY_BYTES",
        1_048_576,
        _positive_int,
        "Largest request body the API accepts (413 above it).",
    ),
    Setting(
        "MAX_PAYLOAD_BYTES",
        262_144,
        _positive_int,
        "Largest job payload, as compact JSON (422 above it).",
    ),
    Setting("MAX_JSON_DEPTH", 32, _positive_int, "Deepest nesting of JSON the API accepts."),
    Setting("MAX_BATCH_JOBS", 1000, _positive_int, "Most jobs one POST /jobs/batch may carry."),
    Setting(
        "TRACEBACK_BYTES",
        8192,
        _positive_int,
        "How much of a failed attempt's traceback is kept with the job.",
    ),
    Setting(
        "RATE_LIMIT_PER_SECOND",
        50.0,
        _non_negative_float,
        "Requests per second one API token may make, per API process (429 above it); "
        "0 turns the limit off.",
    ),
    Setting(
        "RATE_LIMIT_BURST",
        100,
        _positive_int,
        "Requests one API token may make at once before the per-second rate applies.",
    ),
    Setting(
        "MAX_READY_PER_QUEUE",
        0,
        _non_negative_int,
        "Most PENDING jobs a queue may hold before enqueues to it answer 503 with "
        "Retry-After; 0 means no cap.",
    ),
    Setting("LOG_LEVEL", "INFO", str, "Log level of the API and the worker."),
    Setting(
        "LOG_FORMAT",
        "text",
        str,
        "How the worker writes its log: text (readable lines) or json (one JSON object per "
        "line, with the event's fields: event, job_id, type, queue, attempt, worker).",
    ),
)


def instance_path() -> str:
    """Return the instance folder: the one Flask picks for the ``jobsvc`` app, found without it.

    The API and the worker must agree on it, since the default SQLite file lives there: the
    checkout's ``instance/`` for a source checkout, ``<prefix>/var/jobsvc-instance`` once
    installed.
    """
    package_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = _install_prefix(package_path)
    if prefix is None:
        return os.path.join(package_path, "instance")
    return os.path.join(prefix, "var", "jobsvc-instance")


def _install_prefix(package_path: str) -> str | None:
    # Flask's own rule (flask.sansio.scaffold.find_package), for one package.
    py_prefix = os.path.abspath(sys.prefix)
    if Path(package_path).is_relative_to(py_prefix):
        return py_prefix
    site_parent, site_folder = os.path.split(package_path)
    if site_folder.lower() != "site-packages":
        return None
    parent, folder = os.path.split(site_parent)
    if folder.lower() == "lib":
        return parent
    if os.path.basename(parent).lower() == "lib":
        return os.path.dirname(parent)
    return site_parent


def default_database_url(instance_path: str) -> str:
    """Return the SQLite URL every process of this checkout resolves to the same absolute file."""
    return f"sqlite:///{Path(instance_path).resolve() / 'jobsvc.sqlite3'}"


def normalize_database_url(url: str) -> str:
    """Return ``url`` with PostgreSQL pointed at psycopg 3, the driver jobsvc ships with."""
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def load(instance_path: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return config keys (Flask's names) from the defaults and the environment."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(ENV_PREFIX + setting.name)
        key = ENV_PREFIX + setting.name
        if raw is None:
            config[key] = setting.default
            continue
        try:
            config[key] = setting.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        environ.get("DATABASE_URL") or default_database_url(instance_path)
    )
    config["MAX_CONTENT_LENGTH"] = config["JOBSVC_MAX_BODY_BYTES"]
    return config
