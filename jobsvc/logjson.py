"""One JSON object per log line (``JOBSVC_LOG_FORMAT=json``), for the worker and the API alike.

Built on python-json-logger. Only known fields are written: a record's other attributes (and
anything a handler put in ``extra=`` by mistake, a payload say) stay out of the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

# The record attributes a JSON line carries when the record has them (worker.events and
# jobsvc.api.requestlog set them); nothing else of a record is written.
EVENT_FIELDS = (
    "event",
    "job_id",
    "type",
    "queue",
    "attempt",
    "worker",
    "duration",
    "error_type",
    "error",
    "status",
    "queues",
    "concurrency",
    "pid",
    # the API's one line per request (jobsvc.api.requestlog)
    "method",
    "path",
    "token",
)


class JsonFormatter(BaseJsonFormatter):
    """Renders each record as one JSON object (python-json-logger): its event fields, ``level``,
    ``time``, ``logger``, ``message`` and, for a failure, ``exception``.

    The fields are read from the record's ``args`` for the worker's events (see
    ``worker.events.EventRecord``) and from its attributes otherwise (``extra=``), and only those
    in ``EVENT_FIELDS`` are written. ``time`` is UTC ISO-8601 with milliseconds, rendered once per
    second like ``SecondCachedFormatter``.
    """

    _second: tuple[int, str] | None = None

    def __init__(self, fields: tuple[str, ...] = EVENT_FIELDS) -> None:
        super().__init__(json_default=str, json_ensure_ascii=True)
        self._fields = fields

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        args = record.args
        fields = args if type(args) is dict and "event" in args else record.__dict__
        for name in self._fields:
            if name in fields:
                log_data[name] = fields[name]
        log_data["level"] = record.levelname
        log_data["time"] = self._utc_time(record)
        log_data["logger"] = record.name
        log_data["message"] = record.message
        if "exc_info" in message_dict:
            log_data["exception"] = message_dict["exc_info"]

    def _utc_time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached is None or cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached  # one assignment: threads see the old pair or the new one
        return f"{cached[1]}.{int(record.msecs):03d}Z"
