"""Settings: defaults, then the environment (``DATABASE_URL``, ``JOBSVC_*``), then test config."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "JOBSVC_"
DAY_SECONDS = 86_400.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")  # JOBSVC_LOG_FORMAT: readable lines, or one JSON object per line
MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
DATABASE_KINDS = ("sqlite", "postgresql")
# The same bounds as a job's own fields (jobsvc.jobfields; a test holds them equal). Not
# imported: this module reads no other of ours, so every entry point can parse settings first.
MAX_ATTEMPTS_RANGE = (1, 1000)
TIMEOUT_RANGE_SECONDS = (0.001, 7 * 24 * 3600.0)


SECRET_KEY_MIN_CHARS = 32


def _secret_key(value: Any) -> str:
    text = str(value)
    if text and len(text) < SECRET_KEY_MIN_CHARS:
        raise ValueError(
            f"expected at least {SECRET_KEY_MIN_CHARS} characters (e.g. `python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'`), or empty for a random key"
        )
    return text


class ConfigError(ValueError):
    """A setting holds a value jobsvc refuses; the message names it, the value and the range."""


Parse = Callable[[Any], Any]  # text from the environment, or a typed value; raises ValueError


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected a boolean: true/false, yes/no, on/off or 1/0")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("expected a number") from None
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _plain(number: float) -> str:
    # Whole numbers in full (31536000, not 3.1536e+07): a person reads the range from them.
    return str(int(number)) if number == int(number) else f"{number:g}"


def seconds(
    low: float,
    high: float,
    *,
    zero: str | None = None,
    low_open: bool = False,
    unit: str = "seconds",
) -> Parse:
    """Return a parser of a finite number (seconds unless ``unit`` says) within ``[low, high]``;
    ``zero`` names what 0 means."""
    shown = f"{'above' if low_open else 'from'} {_plain(low)} to {_plain(high)} {unit}"
    accepted = f"0 ({zero}) or {shown}" if zero else shown

    def parse(value: Any) -> float:
        try:
            number = _number(value)
        except ValueError as exc:
            raise ValueError(f"{exc}: {accepted}") from None
        if zero and number == 0:
            return 0.0
        if not ((low < number) if low_open else (low <= number)) or number > high:
            raise ValueError(f"expected {accepted}")
        return number

    parse.accepted = accepted  # type: ignore[attr-defined]
    return parse


def whole(low: int, high: int, *, zero: str | None = None) -> Parse:
    """Return a parser of a whole number within ``[low, high]``; ``zero`` names 0."""
    accepted = f"a whole number from {low} to {high}"
    if zero:
        accepted = f"0 ({zero}) or {accepted}"

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected {accepted}")
        if isinstance(value, str):
            text = value.strip()
            if not re.fullmatch(r"[+-]?[0-9]{1,19}", text):
                raise ValueError(f"expected {accepted}")
            value = int(text)
        if not isinstance(value, int) or not (low <= value <= high or (zero and value == 0)):
            raise ValueError(f"expected {accepted}")
        return value

    parse.accepted = accepted  # type: ignore[attr-defined]
    return parse


def _handler_list(value: Any) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(str(part).strip() for part in parts if str(part).strip())
    for name in names:
        if not MODULE_PATH.fullmatch(name):
            raise ValueError("expected comma-separated module import paths (a.b.c)")
    return names


def choice(*options: str, upper: bool = False) -> Parse:
    """Return a parser that accepts one of ``options`` (compared without case)."""

    def parse(value: Any) -> str:
        text = str(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


_log_level = choice(*LOG_LEVELS, upper=True)


HOST_PATTERN = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
WEBHOOK_SECRET_BYTES = (24, 64)  # Standard Webhooks: 24 to 64 random bytes, base64-encoded


def _host_list(value: Any) -> tuple[str, ...]:
    import ipaddress

    parts = value.split(",") if isinstance(value, str) else list(value)
    hosts = tuple(str(part).strip().lower() for part in parts if str(part).strip())
    for host in hosts:
        try:
            ipaddress.ip_address(host.strip("[]"))
            continue
        except ValueError:
            pass
        if not HOST_PATTERN.fullmatch(host):
            raise ValueError(
                "expected comma-separated host names (example.com, *.example.com) or addresses"
            )
    return hosts


def _webhook_secret(value: Any) -> str:
    import base64
    import binascii

    text = str(value).strip()
    if not text:
        return ""
    low, high = WEBHOOK_SECRET_BYTES
    wanted = f"empty (no webhooks) or {WEBHOOK_SECRET_PREFIX}<base64 of {low} to {high} bytes>"
    if not text.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"expected {wanted}")
    try:
        key = base64.b64decode(text[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"expected {wanted}") from None
    if not low <= len(key) <= high:
        raise ValueError(f"expected {wanted}")
    return text


def _absolute_path(value: Any) -> str:
    path = str(value).strip()
    if path and not os.path.isabs(os.path.expanduser(path)):
        raise ValueError("expected an absolute path (or empty for the per-user default)")
    return os.path.expanduser(path)


def _listen_url(value: Any) -> str:
    url = str(value).strip()
    if url and not normalize_database_url(url).startswith("postgresql+psycopg://"):
        raise ValueError("expected a postgresql:// URL, or empty for DATABASE_URL")
    return normalize_database_url(url) if url else ""


@dataclass(frozen=True)
class Setting:
    """One ``JOBSVC_*`` setting: its default, how to parse and range-check it, what it means."""

    name: str
    default: Any
    parse: Parse
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
        "INSTANCE_PATH",
        "",
        _absolute_path,
        "The folder of the default SQLite database (absolute); empty means "
        "`$XDG_DATA_HOME/jobsvc` (`~/.local/share/jobsvc`).",
    ),
    Setting(
        "LEASE_SECONDS",
        30.0,
        seconds(0.1, DAY_SECONDS),
        "How long a claimed job stays leased without a heartbeat before a worker rescues it.",
    ),
    Setting(
        "HEARTBEAT_SECONDS",
        10.0,
        seconds(0.01, 3600.0),
        "How often a worker extends the leases of the jobs it runs; must be below lease/2.",
    ),
    Setting(
        "POLL_SECONDS",
        1.0,
        seconds(0.001, 3600.0),
        "How long an idle worker waits before looking for ready jobs again (PostgreSQL "
        "workers are also woken at once by LISTEN/NOTIFY).",
    ),
    Setting(
        "MAX_ATTEMPTS",
        3,
        whole(*MAX_ATTEMPTS_RANGE),
        "Attempts a job gets when it does not say (max_attempts).",
    ),
    Setting(
        "RETRY_BASE_SECONDS",
        2.0,
        seconds(0.001, DAY_SECONDS),
        "Backoff base: attempt n waits a random time in [0, base * 2**(n-1)] (full jitter).",
    ),
    Setting(
        "RETRY_MAX_SECONDS",
        600.0,
        seconds(0.001, 7 * DAY_SECONDS),
        "Upper bound of one backoff delay; at least the base.",
    ),
    Setting(
        "SHUTDOWN_GRACE_SECONDS",
        30.0,
        seconds(0.0, DAY_SECONDS, low_open=True),
        "After SIGTERM, how long running jobs may take before they are released for retry.",
    ),
    Setting(
        "CANCEL_GRACE_SECONDS",
        5.0,
        seconds(0.0, 3600.0),
        "After a running job is cancelled, how long its handler may take to stop by itself "
        "(ctx.cancelled) before the worker stops it.",
    ),
    Setting(
        "DEFAULT_TIMEOUT_SECONDS",
        0.0,
        seconds(*TIMEOUT_RANGE_SECONDS, zero="no timeout"),
        "Timeout for jobs that give none; 0 means no timeout.",
    ),
    Setting(
        "MAX_BODY_BYTES",
        1_048_576,
        whole(1024, 1 << 30),
        "Largest request body the API accepts (413 above it).",
    ),
    Setting(
        "MAX_PAYLOAD_BYTES",
        262_144,
        whole(1, 1 << 30),
        "Largest job payload, as compact JSON (422 above it).",
    ),
    Setting("MAX_JSON_DEPTH", 32, whole(1, 200), "Deepest nesting of JSON the API accepts."),
    Setting(
        "MAX_RESULT_BYTES",
        1_048_576,
        whole(1, 1 << 30),
        "Largest result a handler may return, as JSON; a larger one fails the job for good.",
    ),
    Setting(
        "IDEMPOTENCY_SECONDS",
        DAY_SECONDS,
        seconds(1.0, 365 * DAY_SECONDS),
        "How long an enqueue's Idempotency-Key is remembered (even after its job is gone); "
        "a key older than this may create a new job.",
    ),
    Setting("MAX_BATCH_JOBS", 1000, whole(1, 100_000), "Most jobs one POST /jobs/batch may carry."),
    Setting(
        "TRACEBACK_BYTES",
        8192,
        whole(1, 1 << 20),
        "How much of a failed attempt's traceback is kept with the job.",
    ),
    Setting(
        "RATE_LIMIT_PER_SECOND",
        50.0,
        seconds(0.0, 1e6, unit="requests per second"),
        "Requests per second one API token may make, per API process (429 above it); "
        "0 turns the limit off.",
    ),
    Setting(
        "RATE_LIMIT_BURST",
        100,
        whole(1, 1_000_000),
        "Requests one API token may make at once before the per-second rate applies.",
    ),
    Setting(
        "MAX_READY_PER_QUEUE",
        0,
        whole(1, 1_000_000_000, zero="no cap"),
        "Most PENDING jobs a queue may hold before enqueues to it answer 503 with "
        "Retry-After; 0 means no cap.",
    ),
    Setting(
        "POOL_TIMEOUT_SECONDS",
        5.0,
        seconds(0.01, 300.0),
        "How long a request waits for a free database connection before it answers 503 "
        "with Retry-After.",
    ),
    Setting(
        "PG_STATEMENT_TIMEOUT_SECONDS",
        30.0,
        seconds(0.001, DAY_SECONDS, zero="no timeout"),
        "PostgreSQL: the server cancels a statement that runs longer (statement_timeout); "
        "the API then answers 503 with Retry-After, a worker retries.",
    ),
    Setting(
        "PG_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS",
        60.0,
        seconds(0.001, DAY_SECONDS, zero="no timeout"),
        "PostgreSQL: the server ends a session left idle inside a transaction this long "
        "(idle_in_transaction_session_timeout), so a stalled process cannot hold row locks.",
    ),
    Setting(
        "PG_CONNECT_TIMEOUT_SECONDS",
        10,
        whole(2, 3600),
        "PostgreSQL: how long opening a connection may take (libpq connect_timeout).",
    ),
    Setting(
        "PG_KEEPALIVES_IDLE_SECONDS",
        10,
        whole(1, 7200),
        "PostgreSQL: TCP keepalive probes start after a connection is this long silent.",
    ),
    Setting(
        "PG_KEEPALIVES_INTERVAL_SECONDS",
        5,
        whole(1, 600),
        "PostgreSQL: seconds between TCP keepalive probes.",
    ),
    Setting(
        "PG_KEEPALIVES_COUNT",
        3,
        whole(1, 100),
        "PostgreSQL: unanswered keepalive probes before a connection counts as dead. Idle + "
        "interval x count (25 s by default) is also the TCP user timeout: data unacknowledged "
        "that long (the peer silently gone) fails the connection instead of hanging on it.",
    ),
    Setting(
        "PG_TRANSACTION_POOLER",
        False,
        _bool,
        "PostgreSQL: DATABASE_URL reaches the server through a pooler in transaction mode "
        "(PgBouncer pool_mode=transaction): no prepared statements, no session settings in "
        "the startup packet (set the timeouts on the role), and workers LISTEN only through "
        "JOBSVC_LISTEN_DATABASE_URL, else they poll.",
    ),
    Setting(
        "LISTEN_DATABASE_URL",
        "",
        _listen_url,
        "PostgreSQL: where workers LISTEN for new and cancelled jobs (a session connection, "
        "e.g. around PgBouncer); empty means DATABASE_URL, or polling when "
        "JOBSVC_PG_TRANSACTION_POOLER is on.",
    ),
    Setting(
        "METRICS_MAX_QUEUES",
        100,
        whole(1, 10_000),
        "Queues /metrics reports one by one (the largest); the rest are summed under "
        'queue="(other)".',
    ),
    Setting(
        "SECRET_KEY",
        "",
        _secret_key,
        "Signs the dashboard's session cookies; give every API process the same one. Unset: a "
        "random key per process (sessions end on restart and hold on that process only).",
    ),
    Setting(
        "MAX_WAIT_SECONDS",
        60.0,
        seconds(0.0, 3600.0),
        "Longest GET /jobs/{id}?wait=N may wait for the job to end (422 above it).",
    ),
    Setting(
        "MAX_WAITERS",
        256,
        whole(0, 10_000),
        "Requests one API process lets wait at once (?wait=); python -m jobsvc.serve adds "
        "this many request threads. A request past it answers at once with the current state.",
    ),
    Setting(
        "WEBHOOK_SECRET",
        "",
        _webhook_secret,
        "The Standard Webhooks signing secret (whsec_ + base64 of 24 to 64 random bytes); "
        "callback_url is refused (422) while it is empty.",
    ),
    Setting(
        "WEBHOOK_ALLOWED_HOSTS",
        (),
        _host_list,
        "Comma-separated hosts a callback_url may name (example.com, *.example.com, or an "
        "address); none by default, so callback_url is refused (422).",
    ),
    Setting(
        "WEBHOOK_ALLOW_PRIVATE",
        False,
        _bool,
        "Allow callback hosts that resolve to loopback, private, link-local or other "
        "non-public addresses (refused by default, at enqueue and again at delivery).",
    ),
    Setting(
        "WEBHOOK_MAX_ATTEMPTS",
        8,
        whole(1, 100),
        "POSTs a completion webhook gets before it is marked failed (backoff between them).",
    ),
    Setting(
        "WEBHOOK_TIMEOUT_SECONDS",
        10.0,
        seconds(0.1, 300.0),
        "How long one webhook POST may take (connect, send, answer) before it counts as failed.",
    ),
    Setting(
        "PRIORITY_AGING_SECONDS",
        0.0,
        seconds(0.1, 365 * DAY_SECONDS, zero="off"),
        "Priority aging: each this many seconds a job waits ready counts as one priority step "
        "more (workers raise the stored priority; original_priority keeps the asked one); "
        "0 turns it off.",
    ),
    Setting(
        "RETAIN_DONE_SECONDS",
        7 * DAY_SECONDS,
        seconds(1.0, 3650 * DAY_SECONDS, zero="keep forever"),
        "How long a DONE job is kept after it finished before the workers delete it; "
        "0 keeps it forever.",
    ),
    Setting(
        "RETAIN_FAILED_SECONDS",
        30 * DAY_SECONDS,
        seconds(1.0, 3650 * DAY_SECONDS, zero="keep forever"),
        "How long a FAILED job is kept after it finished before the workers delete it; "
        "0 keeps it forever.",
    ),
    Setting(
        "RETAIN_CANCELLED_SECONDS",
        7 * DAY_SECONDS,
        seconds(1.0, 3650 * DAY_SECONDS, zero="keep forever"),
        "How long a CANCELLED job is kept after it was cancelled before the workers delete "
        "it; 0 keeps it forever.",
    ),
    Setting("LOG_LEVEL", "INFO", _log_level, "Log level of the API and the worker."),
    Setting(
        "LOG_FORMAT",
        "text",
        choice(*LOG_FORMATS),
        "How the API and the worker write their logs: text (readable lines) or json (one JSON "
        "object per line, with the fields: event, job_id, type, queue, attempt, worker, "
        "duration; the API's request lines: method, path, status, duration, token).",
    ),
)
_BY_KEY = {ENV_PREFIX + setting.name: setting for setting in SETTINGS}


def default_of(key: str) -> Any:
    """Return the default of setting ``key`` (``JOBSVC_...``)."""
    return _BY_KEY[key].default


def _fail(key: str, value: Any, reason: str) -> ConfigError:
    shown = _hidden(value) if isinstance(value, str) else repr(value)
    return ConfigError(f"{key}={shown!r} is refused: {reason}")


def parse_setting(key: str, value: Any) -> Any:
    """Return ``value`` (environment text or a typed value) for ``key``, range-checked."""
    try:
        return _BY_KEY[key].parse(value)
    except ValueError as exc:
        raise _fail(key, value, str(exc)) from None


def check(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return every setting of ``config`` parsed and range-checked, the cross-setting rules too.

    Raises ``ConfigError`` naming the variable, its value and what is accepted.
    """
    checked = {key: parse_setting(key, config[key]) for key in _BY_KEY if key in config}
    if "SQLALCHEMY_DATABASE_URI" in config:
        checked["SQLALCHEMY_DATABASE_URI"] = check_database_url(
            str(config["SQLALCHEMY_DATABASE_URI"])
        )
    lease, heartbeat = (
        checked.get(ENV_PREFIX + "LEASE_SECONDS"),
        checked.get(ENV_PREFIX + "HEARTBEAT_SECONDS"),
    )
    if lease is not None and heartbeat is not None and not heartbeat < lease / 2:
        raise ConfigError(
            f"JOBSVC_HEARTBEAT_SECONDS={heartbeat:g} is refused: it must be below half of "
            f"JOBSVC_LEASE_SECONDS={lease:g} (below {lease / 2:g}), or every lease expires "
            "before its heartbeat"
        )
    base, cap = (
        checked.get(ENV_PREFIX + "RETRY_BASE_SECONDS"),
        checked.get(ENV_PREFIX + "RETRY_MAX_SECONDS"),
    )
    if base is not None and cap is not None and cap < base:
        raise ConfigError(
            f"JOBSVC_RETRY_MAX_SECONDS={cap:g} is refused: it must be at least "
            f"JOBSVC_RETRY_BASE_SECONDS={base:g}"
        )
    return checked


def check_database_url(url: str) -> str:
    """Return ``url`` normalized, or raise ``ConfigError`` if jobsvc cannot use it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(normalize_database_url(url))
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL={_hidden(url)!r} is refused: expected a URL such "
            "as sqlite:////abs/path.sqlite3 or postgresql://user@host/db"
        ) from None
    kind = parsed.get_backend_name()
    if kind not in DATABASE_KINDS:
        raise ConfigError(
            f"DATABASE_URL={_hidden(url)!r} is refused: expected a sqlite:// or postgresql:// URL"
        )
    path = (parsed.database or "").removeprefix("file:")  # file: for a URI (?mode=ro&uri=true)
    if kind == "sqlite" and not os.path.isabs(path):
        raise ConfigError(
            f"DATABASE_URL={_hidden(url)!r} is refused: a SQLite URL needs an "
            "absolute file path (sqlite:////abs/path.sqlite3), so every "
            "process opens the same file"
        )
    return parsed.render_as_string(hide_password=False)


def _hidden(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def shown_database(url: str) -> str:
    """Return ``url`` fit for a log line: its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def instance_path(environ: Mapping[str, str] | None = None) -> str:
    """Return the folder of the default SQLite file, the same for every process of this user.

    ``JOBSVC_INSTANCE_PATH`` if set, else ``$XDG_DATA_HOME/jobsvc`` (``~/.local/share/jobsvc``):
    never a folder found from where the package is installed or the working directory, so
    the CLI, the API and every worker open one file whatever the install mode.
    """
    environ = os.environ if environ is None else environ
    key = ENV_PREFIX + "INSTANCE_PATH"
    chosen = parse_setting(key, environ.get(key, ""))
    if chosen:
        return os.path.abspath(chosen)
    data_home = environ.get("XDG_DATA_HOME", "").strip()
    if not os.path.isabs(data_home):  # the XDG spec: a relative value is to be ignored
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "jobsvc")


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
    """Return config keys (Flask's names) from the defaults and the environment, checked.

    Raises ``ConfigError`` for the first value out of range or cross-setting rule broken.
    """
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        key = ENV_PREFIX + setting.name
        raw = environ.get(key)
        config[key] = setting.default if raw is None else parse_setting(key, raw)
    config["SQLALCHEMY_DATABASE_URI"] = environ.get(
        "DATABASE_URL", ""
    ).strip() or default_database_url(instance_path)
    config.update(check(config))
    config["MAX_CONTENT_LENGTH"] = config["JOBSVC_MAX_BODY_BYTES"]
    return config
