"""Completion webhooks: the signed body of one delivery (Standard Webhooks), built without Flask.

The body is the job's JSON as ``GET /jobs/{id}`` shows it (without its ``webhook`` state,
which the delivery itself is). Signing follows https://www.standardwebhooks.com/: a
``webhook-id`` that stays the same across the tries of one delivery (so a receiver can drop
repeats), ``webhook-timestamp`` in epoch seconds, and ``webhook-signature: v1,<base64
HMAC-SHA256 of "id.timestamp.body">`` keyed by the ``whsec_`` secret.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from .store.records import JobRecord

# In JobDetailSchema's order (api/schemas.py); a test holds the two to the same JSON.
_HIDDEN = {"lease_token", "delivery"}
_ORDER = (
    "id",
    "type",
    "status",
    "attempts",
    "result",
    "last_error",
    "error_type",
    "queue",
    "priority",
    "original_priority",
    "payload",
    "max_attempts",
    "timeout_seconds",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "locked_by",
    "lease_expires_at",
    "unique_key",
    "waiting_on",
    "callback_url",
    "error_traceback",
)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _shown(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def job_document(record: JobRecord) -> dict[str, Any]:
    """Return ``record`` as the API's JSON shows it."""
    known = {f.name for f in fields(record)} - _HIDDEN
    return {name: _shown(getattr(record, name)) for name in _ORDER if name in known}


@dataclass(frozen=True)
class SignedBody:
    """What one POST carries: the body and its Standard Webhooks headers."""

    body: str
    headers: dict[str, str]


class Signer:
    """Signs bodies with the ``whsec_`` secret."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def sign(self, message_id: str, document: dict[str, Any], now: datetime) -> SignedBody:
        """Return ``document`` as a body signed for ``message_id`` at ``now``."""
        body = _ENCODER.encode(document)
        now = now.astimezone(UTC)
        return SignedBody(
            body,
            {
                "webhook-id": message_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": self._webhook.sign(message_id, now, body),
                "content-type": "application/json",
            },
        )
