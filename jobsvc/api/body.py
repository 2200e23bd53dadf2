"""Reading a request body as JSON, strictly: the checks that come before any schema."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request

from ..errors import MalformedBody, UnsupportedMediaType, ValidationFailed


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # the common case costs one C-level dict build
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _is_json_media_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def read_json(request: Request, max_depth: int) -> Any:
    """Return the request's JSON body, or raise a 4xx domain error saying what is wrong."""
    if not _is_json_media_type(request.mimetype):
        raise UnsupportedMediaType()
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise MalformedBody("the body is empty; send a JSON object")
    try:
        document = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys
        )
    except RecursionError:
        raise MalformedBody(f"the JSON is nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    check_json_value(document, max_depth)
    return document


def check_json_value(document: Any, max_depth: int) -> None:
    """Reject JSON too deep to store safely or holding text no database can keep."""
    stack: list[tuple[Any, int, str]] = [(document, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            # 1e400 is valid JSON but no double holds it: Python reads it as inf, which neither
            # database's JSON (nor JSON itself) can store.
            raise ValidationFailed(
                {
                    where or "/": [
                        "is a number beyond the range of a double (about 1.8e308); "
                        "send it as a string"
                    ]
                }
            )
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise MalformedBody(f"the JSON is nested deeper than {max_depth} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                path = f"{where}/{key}"
                if isinstance(key, str):
                    _check_text(key, path)
                stack.append((item, depth + 1, path))


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed(
            {where or "/": ["contains a lone surrogate (\\ud800-\\udfff), which is not text"]}
        ) from None
