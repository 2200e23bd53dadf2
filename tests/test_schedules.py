"""Schedules as specs: validated when registered, and their ticks, across daylight saving too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobsvc.registry import HandlerRegistry
from jobsvc.schedules import CATCH_UP_SECONDS, InvalidSchedule, ScheduleSpec


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _berlin(cron: str) -> ScheduleSpec:
    return ScheduleSpec("report", cron, None, "Europe/Berlin")


# Europe/Berlin: 2026-03-29 02:00 CET becomes 03:00 CEST; 2026-10-25 03:00 CEST becomes 02:00 CET.
# Times run as Debian's cron runs them: a daily time that does not exist runs once when the
# clocks have jumped; a daily time that exists twice runs once (the first); hourly ticks follow
# the real hours, 23 in spring's day and 25 in autumn's.
@pytest.mark.parametrize(
    ("cron", "after", "expected_utc"),
    [
        (
            "0 3 * * *",
            "2026-03-27T12:00",
            ["2026-03-28T02:00", "2026-03-29T01:00", "2026-03-30T01:00"],
        ),
        (
            "30 2 * * *",
            "2026-03-27T12:00",
            ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
        ),
        ("0 * * * *", "2026-03-29T00:30", ["2026-03-29T01:00", "2026-03-29T02:00"]),
        (
            "0 3 * * *",
            "2026-10-23T12:00",
            ["2026-10-24T01:00", "2026-10-25T02:00", "2026-10-26T02:00"],
        ),
        (
            "30 2 * * *",
            "2026-10-23T12:00",
            ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
        ),
        (
            "0 * * * *",
            "2026-10-24T23:30",
            ["2026-10-25T00:00", "2026-10-25T01:00", "2026-10-25T02:00"],
        ),
        (
            "*/30 * * * *",
            "2026-10-25T00:40",
            ["2026-10-25T01:00", "2026-10-25T01:30", "2026-10-25T02:00"],
        ),
    ],
)
def test_cron_ticks_across_daylight_saving_in_berlin(cron, after, expected_utc):
    spec = _berlin(cron)
    start = _utc(after)
    ticks = spec.ticks_after(start, start + timedelta(days=4))[: len(expected_utc)]
    assert ticks == [_utc(text) for text in expected_utc]
    assert spec.next_tick(start) == ticks[0]
    assert spec.latest_tick(ticks[1]) == ticks[1]  # a tick at exactly now is due now
    assert spec.latest_tick(ticks[1] - timedelta(microseconds=1)) == ticks[0]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"cron": "61 * * * *"}, "cron='61 * * * *' is refused"),
        ({"cron": "every day"}, "five fields"),
        ({"cron": "* * * * *", "every_seconds": 5}, "exactly one"),
        ({}, "exactly one"),
        ({"cron": "0 3 * * *", "timezone": "Europe/Atlantis"}, "unknown timezone"),
        ({"every_seconds": 0}, "every_seconds=0 is refused"),
        ({"every_seconds": 1.5}, "whole seconds"),
        ({"every_seconds": True}, "whole seconds"),
        ({"every_seconds": 5, "queue": "no spaces"}, "queue="),
        ({"every_seconds": 5, "payload": [1]}, "payload must be a JSON object"),
    ],
)
def test_a_bad_schedule_is_refused_when_registered_naming_why(options, words):
    registry = HandlerRegistry()
    fields = {"cron": None, "every_seconds": None, "timezone": "UTC", **options}
    with pytest.raises(InvalidSchedule) as refused:
        registry.schedule(ScheduleSpec("report", **fields))
    assert words in str(refused.value) and "'report'" in str(refused.value)


EVERY_2 = ScheduleSpec("t", None, 2, "UTC")
NOW = _utc("2030-01-01T00:00:10.5")


@pytest.mark.parametrize(
    ("last_tick", "expected"),
    [
        (None, []),  # a new schedule starts at its next tick
        ("2030-01-01T00:00:10", []),  # up to date
        ("2030-01-01T00:00:08", ["2030-01-01T00:00:10"]),
        # a worker paused for a few seconds: every tick since, so none is missing
        ("2030-01-01T00:00:06", ["2030-01-01T00:00:08", "2030-01-01T00:00:10"]),
        # an outage longer than the catch-up window: the newest tick only, once
        ("2030-01-01T00:00:00", ["2030-01-01T00:00:10"]),
        ("2029-12-01T00:00:00", ["2030-01-01T00:00:10"]),
    ],
)
def test_due_ticks_fill_short_gaps_and_enqueue_a_long_outage_once(last_tick, expected):
    assert CATCH_UP_SECONDS == 5.0
    last = None if last_tick is None else _utc(last_tick)
    assert EVERY_2.due(last, NOW) == [_utc(text) for text in expected]


def test_every_seconds_ticks_on_multiples_of_the_interval_for_every_worker():
    spec = ScheduleSpec("t", None, 15, "Europe/Berlin")  # the zone does not move intervals
    assert spec.next_tick(_utc("2030-01-01T00:00:07")) == _utc("2030-01-01T00:00:15")
    assert spec.latest_tick(_utc("2030-01-01T00:00:30")) == _utc("2030-01-01T00:00:30")
