"""Stored JSON read back safely: a value too large or too deep to decode is a placeholder.

A worker stores what a handler returns; a result nested thousands deep or of many megabytes
must not make every read of its job (and every page that lists it) fail.
"""

from __future__ import annotations

import json
from typing import Any

MAX_STORED_JSON_CHARS = 16 * 1024 * 1024  # larger stored JSON is not decoded for a reader
OMITTED_KEY = "jobsvc_omitted"


def placeholder(reason: str, detail: str) -> dict[str, str]:
    """Return the object shown instead of a stored value that cannot be shown."""
    return {OMITTED_KEY: reason, "detail": detail}


def load_json(text: str | bytes) -> Any:
    """Return stored JSON text decoded, or a placeholder if it is too large or too deep."""
    if len(text) > MAX_STORED_JSON_CHARS:
        return placeholder(
            "too_large",
            f"The stored value is {len(text)} characters of JSON; "
            f"more than {MAX_STORED_JSON_CHARS} are not shown.",
        )
    try:
        return json.loads(text)
    except RecursionError:
        return placeholder("too_deep", "The stored value is nested too deep to decode.")
