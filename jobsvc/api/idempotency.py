"""Idempotency keys as the API reads them: the header (or batch field), and the request's hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import ValidationFailed
from ..store import IdempotencyClaim
from .auth import caller_scope
from .schemas import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Send one per distinct job, the same one on retries: the same key and body "
    "again answer the job it created (200, Idempotent-Replayed: true), with another body 409. "
    "Kept per token for JOBSVC_IDEMPOTENCY_SECONDS.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
REPLAYED_RESPONSE_HEADER = {
    REPLAYED_HEADER: {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "Present when this Idempotency-Key created the job before.",
    }
}
BATCH_KEY_FIELD = "idempotency_key"
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(body: Any) -> str:
    """Return the SHA-256 of ``body`` as canonical JSON: the same request, the same digest."""
    return hashlib.sha256(_CANONICAL_JSON.encode(body).encode()).hexdigest()


def check_key(key: Any, field: str) -> str:
    """Return ``key`` if it is a valid idempotency key, else raise 422 naming ``field``."""
    if type(key) is not str or not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise ValidationFailed({field: [IDEMPOTENCY_KEY_RULE]})
    return key


def claim(key: str, body: Any) -> IdempotencyClaim:
    """Return the claim of ``key`` by this request's caller for ``body``."""
    return IdempotencyClaim(caller_scope(), key, fingerprint(body))


def header_claim(headers: Any, body: Any) -> IdempotencyClaim | None:
    """Return the claim of the request's Idempotency-Key header, or None if it has none."""
    key = headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    return claim(check_key(key.strip(), IDEMPOTENCY_HEADER), body)
