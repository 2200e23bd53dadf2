"""Periodic jobs: a schedule's spec, validated once at registration, and the ticks it makes.

A tick is a moment a schedule's job is due. Every worker computes the same ticks from the same
spec (an every-N-seconds schedule ticks at the multiples of N seconds since the epoch; a cron
schedule at its expression's times in its timezone, as Debian's cron runs them across a
daylight-saving change), so the database's unique key on (schedule, tick) lets exactly one
worker create each tick's job. Pure: no database, no clock of its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .models import QUEUE_NAME_MAX

EVERY_SECONDS_RANGE = (1, 86_400)  # whole seconds: below a minute is what cron cannot say
TICKS_MAX = 1_000  # ticks one call returns at most
CATCH_UP_SECONDS = 5.0  # a tick this recent is enqueued even when newer ones are due too
_ONE_MICROSECOND = timedelta(microseconds=1)
# jobfields.QUEUE_NAME_PATTERN, which cannot be imported here (jobfields imports the registry).
_QUEUE_NAME = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{QUEUE_NAME_MAX}}}$")


class InvalidSchedule(ValueError):
    """A handler's schedule options cannot make a schedule; the message says which and why."""


@dataclass(frozen=True)
class ScheduleSpec:
    """When a job type is enqueued by itself, and with what."""

    name: str  # the job type
    cron: str | None
    every_seconds: int | None
    timezone: str
    queue: str = "default"
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_seconds is None):
            raise InvalidSchedule(
                f"schedule {self.name!r}: give cron or every_seconds, exactly one of them"
            )
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(
                f"schedule {self.name!r}: unknown timezone {self.timezone!r} "
                "(an IANA name such as 'UTC' or 'Europe/Berlin')"
            ) from None
        object.__setattr__(self, "_zone", zone)
        if self.every_seconds is not None:
            low, high = EVERY_SECONDS_RANGE
            value = self.every_seconds
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidSchedule(
                    f"schedule {self.name!r}: every_seconds={value!r} is refused: expected "
                    f"whole seconds from {low} to {high}"
                )
        else:
            try:
                CronSim(str(self.cron), datetime.now(zone))
            except (CronSimError, TypeError, AttributeError) as exc:
                raise InvalidSchedule(
                    f"schedule {self.name!r}: cron={self.cron!r} is refused: {exc} "
                    "(five fields: minute hour day-of-month month day-of-week)"
                ) from None
        if not isinstance(self.queue, str) or not _QUEUE_NAME.fullmatch(self.queue):
            raise InvalidSchedule(
                f"schedule {self.name!r}: queue={self.queue!r} is refused: expected 1 to "
                f"{QUEUE_NAME_MAX} letters, digits or _ . : -"
            )
        if not isinstance(self.payload, dict):
            raise InvalidSchedule(f"schedule {self.name!r}: payload must be a JSON object")

    @property
    def description(self) -> str:
        """Return the spec as a person reads it."""
        if self.cron is not None:
            return f"cron {self.cron!r} in {self.timezone}"
        return f"every {self.every_seconds} s"

    def latest_tick(self, now: datetime) -> datetime:
        """Return the newest tick at or before ``now`` (UTC)."""
        if self.every_seconds is not None:
            count = math.floor(now.timestamp() / self.every_seconds)
            return datetime.fromtimestamp(count * self.every_seconds, UTC)
        # Backwards from just after now: CronSim returns a tick at exactly ``now`` this way.
        moment = (now + _ONE_MICROSECOND).astimezone(self._zone)  # type: ignore[attr-defined]
        return next(CronSim(str(self.cron), moment, reverse=True)).astimezone(UTC)

    def ticks_after(self, start: datetime, end: datetime) -> list[datetime]:
        """Return the ticks after ``start`` up to ``end`` inclusive (UTC), at most TICKS_MAX."""
        ticks: list[datetime] = []
        if self.every_seconds is not None:
            step = self.every_seconds
            first = math.floor(start.timestamp() / step) + 1
            last = math.floor(end.timestamp() / step)
            for count in range(first, min(last, first + TICKS_MAX - 1) + 1):
                ticks.append(datetime.fromtimestamp(count * step, UTC))
            return ticks
        times = CronSim(str(self.cron), start.astimezone(self._zone))  # type: ignore[attr-defined]
        for moment in times:
            tick = moment.astimezone(UTC)
            if tick > end or len(ticks) == TICKS_MAX:
                break
            ticks.append(tick)
        return ticks

    def next_tick(self, now: datetime) -> datetime:
        """Return the first tick after ``now`` (UTC)."""
        if self.every_seconds is not None:
            count = math.floor(now.timestamp() / self.every_seconds) + 1
            return datetime.fromtimestamp(count * self.every_seconds, UTC)
        moment = now.astimezone(self._zone)  # type: ignore[attr-defined]
        return next(CronSim(str(self.cron), moment)).astimezone(UTC)

    def due(self, last_tick: datetime | None, now: datetime) -> list[datetime]:
        """Return the ticks to enqueue now, given the newest one enqueued already.

        Since a ``last_tick`` at most CATCH_UP_SECONDS old: every tick after it (a worker that
        paused for a moment leaves no gap). Since an older one: only the newest tick, once (a
        schedule that no worker ran for an hour gets one job when a worker comes back, not
        one per missed tick). Never enqueued (None): nothing; it starts at its next tick.
        """
        if last_tick is None:
            return []
        if last_tick >= now - timedelta(seconds=CATCH_UP_SECONDS):
            return self.ticks_after(last_tick, now)
        latest = self.latest_tick(now)
        return [latest] if latest > last_tick else []
