"""Marshmallow fields stricter than the stock ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, floats and numeric strings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


QUERY_INTEGER_PATTERN = re.compile(r"[0-9]{1,19}")


class QueryInteger(fields.Integer):
    """A whole number in a query string: ASCII digits only.

    int() alone would also take " 5", "+5", "5_000" and non-ASCII digits such as "٣".
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not QUERY_INTEGER_PATTERN.fullmatch(value):
            raise ValidationError("Not a valid integer (1 to 19 ASCII digits).")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictNumber(fields.Float):
    """A finite number that refuses booleans and numeric strings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a valid number.")
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except OverflowError:
            raise ValidationError("Number too large.") from None


class StrictString(fields.String):
    """A string that must match ``pattern``, explained by ``description`` when it does not."""

    def __init__(self, *, pattern: Any, description: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pattern = pattern
        self.description = description

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        # fullmatch: with match, "$" also matches before a trailing newline ("default\n").
        if not self.pattern.fullmatch(text):
            raise ValidationError(self.description)
        return text


class JSONObject(fields.Raw):
    """A JSON object (a dict), not any JSON value."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("Must be a JSON object.")
        return value


class BoundedDateTime(fields.AwareDateTime):
    """An ISO-8601 time with an offset, between ``earliest`` and ``latest`` once in UTC.

    Both databases and Python's datetime end at year 9999 (and start at year 1): a time near
    either end can overflow when its offset is applied, so the bounds keep well inside them.
    """

    def __init__(self, *, earliest: datetime, latest: datetime, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)
        self.earliest = earliest
        self.latest = latest

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            moment = None
        if moment is None or not self.earliest <= moment <= self.latest:
            raise ValidationError(
                f"Must be between {self.earliest.isoformat()} and {self.latest.isoformat()}."
            )
        return moment


class IdList(fields.List):
    """A JSON array of job ids, without repeats: the first of each id is kept, in order."""

    def __init__(self, *, bounds: tuple[int, int], max_items: int, **kwargs: Any) -> None:
        low, high = bounds
        self.max_items = max_items
        super().__init__(
            StrictInteger(validate=validate.Range(low, high)),
            validate=validate.Length(max=max_items),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if type(value) is not list:
            raise ValidationError("Not a valid list of job ids.")
        # The limit counts the ids as sent, repeats included (Length below only documents it).
        if len(value) > self.max_items:
            raise ValidationError(f"Holds {len(value)} ids; the limit is {self.max_items}.")
        return tuple(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))
