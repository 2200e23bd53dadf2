"""The fields a client may set when it enqueues a job, each declared once.

The API's schema (``api/schemas.py``), its quick validator (``api/quickload.py``), the store's
``NewJob`` and the insert's JSON batch (``store/insertion.py``) are all read from
``ENQUEUE_FIELDS``: a new field is one entry here, plus its column and migration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .models import CALLBACK_URL_MAX, QUEUE_NAME_MAX, UNIQUE_KEY_MAX
from .registry import TYPE_NAME_PATTERN

JsonKind = Literal["string", "object", "integer", "number", "date-time", "id-list"]

QUEUE_NAME_PATTERN = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{QUEUE_NAME_MAX}}}$")
PRIORITY_RANGE = (-1_000_000, 1_000_000)
MAX_ATTEMPTS_RANGE = (1, 1000)
TIMEOUT_RANGE_SECONDS = (0.001, 7 * 24 * 3600.0)
JOB_ID_RANGE = (1, 2**63 - 1)
DEPENDS_ON_MAX = 100  # parents one job may wait for
RUN_AT_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
RUN_AT_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
# Printable text without control characters, so a key reads back the same in logs and JSON.
UNIQUE_KEY_PATTERN = re.compile(rf"^[^\x00-\x1f\x7f]{{1,{UNIQUE_KEY_MAX}}}$")
# The shape only; the SSRF rules (jobsvc.callbacks) need the settings and DNS, at enqueue.
CALLBACK_URL_PATTERN = re.compile(rf"^https?://[!-~]{{1,{CALLBACK_URL_MAX - 8}}}$")
# For the OpenAPI document: JSON Schema cannot bound a date-time, but it can bound its year.
RUN_AT_YEAR_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3})-"
DELAY_RANGE_SECONDS = (0.0, 365 * 24 * 3600.0)  # delay_seconds: up to one year from now


class Required:
    """The default of a field a client must send."""


def _same(value: Any) -> Any:
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value)


def _epoch_seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@dataclass(frozen=True)
class JobField:
    """One field of an enqueue request, and how the store carries it.

    ``default`` is what an absent field means (``Required`` if it may not be absent; a callable
    is called for a fresh value). ``nullable`` fields also take an explicit ``null``, meaning
    the same as absent. ``store_optional`` fields may be left unset (None) on ``NewJob``; the
    others the API fills in (from the settings where the client sent null) before the store.
    The insert reads each field into the column of the same name, with that column's type;
    ``encode`` turns the NewJob attribute into the value the insert's JSON batch carries, and
    ``encoded_attribute`` names a NewJob attribute that may hold it already encoded (the API
    encodes payloads once, to measure them). A ``delay_of`` field has no column: the insert
    sets the named time column to the database's now plus it where the client sent no time.
    """

    name: str
    kind: JsonKind
    python_type: Any
    default: Any = Required
    nullable: bool = False
    store_optional: bool = False
    bounds: tuple[Any, Any] | None = None
    pattern: re.Pattern[str] | None = None
    invalid_message: str | None = None  # what a value not matching ``pattern`` is told
    description: str | None = None  # for the OpenAPI document
    openapi_pattern: str | None = None  # published where ``pattern`` cannot say it (dates)
    encode: Callable[[Any], Any] = _same
    encoded_attribute: str | None = None
    column: bool = True
    max_items: int | None = None
    # Seconds from the database's now, folded by the insert into this time column (which must
    # come first), instead of a column of its own: delay_seconds lands in run_at.
    delay_of: str | None = None

    @property
    def required(self) -> bool:
        """Return True when a client must send this field."""
        return self.default is Required

    def default_value(self) -> Any:
        """Return what an absent field means."""
        return self.default() if callable(self.default) else self.default

    def batch_value(self, job: Any) -> Any:
        """Return ``job``'s value of this field as the insert's JSON batch carries it."""
        if self.encoded_attribute is not None:
            encoded = getattr(job, self.encoded_attribute)
            if encoded is not None:
                return encoded
        return self.encode(getattr(job, self.name))


# The order is the schema's and the OpenAPI document's.
ENQUEUE_FIELDS: tuple[JobField, ...] = (
    JobField(
        "type",
        "string",
        str,
        pattern=TYPE_NAME_PATTERN,
        invalid_message="Must start with a letter or _, then up to 127 letters, digits or _ . : -",
    ),
    JobField(
        "payload", "object", Any, default=dict, encode=_json_text, encoded_attribute="payload_json"
    ),
    JobField(
        "queue",
        "string",
        str,
        default="default",
        pattern=QUEUE_NAME_PATTERN,
        invalid_message=f"Must be 1 to {QUEUE_NAME_MAX} letters, digits or _ . : -",
    ),
    JobField("priority", "integer", int, default=0, bounds=PRIORITY_RANGE),
    JobField(
        "run_at",
        "date-time",
        datetime | None,
        default=None,
        nullable=True,
        store_optional=True,
        bounds=(RUN_AT_EARLIEST, RUN_AT_LATEST),
        description="ISO-8601 with an offset, from 1970 to before 9000 (UTC).",
        openapi_pattern=RUN_AT_YEAR_PATTERN,
        encode=_epoch_seconds,
    ),
    JobField(
        "delay_seconds",
        "number",
        float | None,
        default=None,
        nullable=True,
        store_optional=True,
        bounds=DELAY_RANGE_SECONDS,
        description="Run this many seconds from now (the database's clock), 0 to one year; "
        "instead of run_at.",
        delay_of="run_at",
    ),
    JobField(
        "max_attempts", "integer", int, default=None, nullable=True, bounds=MAX_ATTEMPTS_RANGE
    ),
    JobField(
        "timeout_seconds",
        "number",
        float | None,
        default=None,
        nullable=True,
        store_optional=True,
        bounds=TIMEOUT_RANGE_SECONDS,
    ),
    JobField(
        "unique_key",
        "string",
        str | None,
        default=None,
        nullable=True,
        store_optional=True,
        pattern=UNIQUE_KEY_PATTERN,
        invalid_message=f"Must be 1 to {UNIQUE_KEY_MAX} characters, none of them a control "
        "character",
        description="While a PENDING or RUNNING job has this key, enqueueing another with it "
        "returns that job (200, duplicate: true) instead of creating a second.",
    ),
    JobField(
        "depends_on",
        "id-list",
        tuple[int, ...] | None,
        default=tuple,
        store_optional=True,
        bounds=JOB_ID_RANGE,
        max_items=DEPENDS_ON_MAX,
        description=(
            f"Ids of up to {DEPENDS_ON_MAX} stored jobs that must end DONE before this one runs "
            "(duplicates collapse). Unknown ids, or a parent already FAILED or CANCELLED, are "
            "422; a parent that later ends FAILED or CANCELLED cancels this job."
        ),
        column=False,
    ),
    JobField(
        "callback_url",
        "string",
        str | None,
        default=None,
        nullable=True,
        store_optional=True,
        pattern=CALLBACK_URL_PATTERN,
        invalid_message=(
            f"Must be an http:// or https:// URL of at most {CALLBACK_URL_MAX} characters."
        ),
        description=(
            "Where to POST the job's final JSON when it ends (DONE, FAILED, CANCELLED), signed "
            "by the Standard Webhooks scheme; its host must be in JOBSVC_WEBHOOK_ALLOWED_HOSTS."
        ),
    ),
)
ENQUEUE_FIELD_NAMES = tuple(field.name for field in ENQUEUE_FIELDS)
# The fields the insert's JSON batch carries (delay fields fold into their time column).
COLUMN_FIELDS = tuple(field for field in ENQUEUE_FIELDS if field.column)
# Fields that may not both be given: (a time, a delay that would set the same time).
EXCLUSIVE_FIELDS = tuple(
    (field.delay_of, field.name) for field in ENQUEUE_FIELDS if field.delay_of is not None
)


def batch_row(job: Any) -> dict[str, Any]:
    """Return one job of the insert's JSON batch: every column field by name, encoded."""
    return {field.name: field.batch_value(job) for field in COLUMN_FIELDS}


def unique_ids(ids: Any) -> tuple[int, ...]:
    """Return ``ids`` without repeats, in their first order (``depends_on`` collapses them)."""
    return tuple(dict.fromkeys(ids))
