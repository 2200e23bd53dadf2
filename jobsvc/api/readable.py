"""Jobs shown whatever a worker stored: JSON too deep to encode becomes a placeholder.

A handler may return anything JSON can hold, and the worker stores it; a result nested about a
thousand deep decodes but cannot be encoded again (RecursionError), which made the job and every
page listing it answer 500. The check runs only when encoding fails, so reads stay as cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response

from ..store.dialects.jsontext import placeholder

MAX_SHOWN_DEPTH = 100  # deeper stored JSON is shown as a placeholder
STORED_JSON_FIELDS = ("payload", "result")


def deeper_than(value: Any, limit: int) -> bool:
    """Return True if ``value`` nests containers more than ``limit`` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def readable_job(job: dict[str, Any]) -> dict[str, Any]:
    """Return ``job`` (as dumped) with any stored JSON too deep to encode replaced."""
    shown = dict(job)
    for name in STORED_JSON_FIELDS:
        if deeper_than(shown.get(name), MAX_SHOWN_DEPTH):
            shown[name] = placeholder(
                "too_deep",
                f"The stored {name} is nested deeper than {MAX_SHOWN_DEPTH} levels; "
                "it is not shown.",
            )
    return shown


def encode_jobs(
    jsonify: Callable[[Any], Response], body: Any, jobs: Callable[[Any], list[dict[str, Any]]]
) -> Response:
    """Return ``jsonify(body)``; if stored JSON is too deep, again with it replaced.

    ``jobs(body)`` returns the job dicts inside ``body``, replaced in place.
    """
    try:
        return jsonify(body)
    except RecursionError:
        found = jobs(body)
        found[:] = [readable_job(job) for job in found]
        return jsonify(body)
