"""The common ``POST /jobs`` item validated without marshmallow, for the same result.

Marshmallow's per-item machinery was half the cost of a 1,000-job batch. An item of the usual
shape (no ``run_at``, every field of its expected JSON type and in range) is accepted here;
anything else, including every invalid item, goes to ``CreateJobSchema``, which stays the one
source of error messages. Both read their rules from ``jobsvc.jobfields.ENQUEUE_FIELDS``;
``tests/test_api_quickload.py`` checks that both agree on every item.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..jobfields import ENQUEUE_FIELD_NAMES, ENQUEUE_FIELDS, EXCLUSIVE_FIELDS, JobField

_KNOWN_KEYS = frozenset(ENQUEUE_FIELD_NAMES)
_UNDECIDED = object()  # a value the quick path leaves to the schema

Check = Callable[[Any], Any]  # returns the loaded value, or _UNDECIDED


def _string_check(field: JobField) -> Check:
    pattern = field.pattern

    def check(value: Any) -> Any:
        if type(value) is not str or (pattern is not None and not pattern.fullmatch(value)):
            return _UNDECIDED
        return value

    return check


def _object_check(field: JobField) -> Check:
    return lambda value: value if type(value) is dict else _UNDECIDED


def _integer_check(field: JobField) -> Check:
    low, high = field.bounds or (-math.inf, math.inf)
    return lambda value: value if type(value) is int and low <= value <= high else _UNDECIDED


def _number_check(field: JobField) -> Check:
    low, high = field.bounds or (-math.inf, math.inf)

    def check(value: Any) -> Any:
        kind = type(value)
        # An int compares with the bounds exactly, before float() could overflow (10**310).
        if not (
            (kind is int and low <= value <= high)
            or (kind is float and math.isfinite(value) and low <= value <= high)
        ):
            return _UNDECIDED
        return float(value)

    return check


def _schema_decides(field: JobField) -> Check:
    return lambda value: _UNDECIDED  # dates: marshmallow parses them


_CHECKS: dict[str, Callable[[JobField], Check]] = {
    "string": _string_check,
    "object": _object_check,
    "integer": _integer_check,
    "number": _number_check,
    "date-time": _schema_decides,
}
# (name, required, nullable, default field, check) per field, built once.
_RULES = tuple(
    (field.name, field.required, field.nullable, field, _CHECKS[field.kind](field))
    for field in ENQUEUE_FIELDS
)


def quick_load(item: Any, known_types: frozenset[str] | None) -> dict[str, Any] | None:
    """Return what ``CreateJobSchema().load(item)`` returns, or None to let it decide."""
    if type(item) is not dict or not _KNOWN_KEYS.issuperset(item):
        return None
    loaded: dict[str, Any] = {}
    for name, required, nullable, field, check in _RULES:
        value = item.get(name, _UNDECIDED)
        if value is _UNDECIDED:
            if required:
                return None
            loaded[name] = field.default_value()
        elif value is None and nullable:
            loaded[name] = None
        else:
            value = check(value)
            if value is _UNDECIDED:
                return None
            loaded[name] = value
    if known_types is not None and loaded["type"] not in known_types:
        return None
    for first, second in EXCLUSIVE_FIELDS:  # both given: the schema says why not
        if loaded[first] is not None and loaded[second] is not None:
            return None
    return loaded
