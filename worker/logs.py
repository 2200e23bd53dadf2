"""Cheap log lines for a busy worker: one line per job event, written to stderr in batches."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TextIO

from jobsvc.config import LOG_FORMATS

FLUSH_INTERVAL_SECONDS = 0.1  # the longest an INFO line waits in memory while jobs flow
FLUSH_LINES_MAX = 500  # lines held before a write, whatever the time
# The record attributes a JSON line carries when the record has them (worker.events sets them).
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
)


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes many lines per system call.

    The stock handler writes and flushes every record: at thousands of jobs a second that was
    the biggest cost of the worker's loop. WARNING and above are written at once; INFO lines wait
    at most ``FLUSH_INTERVAL_SECONDS``, or until the runner flushes before it idles.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._written_at = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
            now = time.monotonic()
            if (
                record.levelno >= logging.WARNING
                or len(self._pending) >= FLUSH_LINES_MAX
                or now - self._written_at >= FLUSH_INTERVAL_SECONDS
            ):
                self._write(now)
        except Exception:  # the logging module's own contract: report, never raise
            self.handleError(record)

    def flush(self) -> None:
        """Write every held line."""
        with self.lock:  # type: ignore[union-attr]
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        if self._pending:
            self.stream.write("".join(self._pending))
            self._pending.clear()
        self.stream.flush()
        self._written_at = now


class SecondCachedFormatter(logging.Formatter):
    """A Formatter that renders the date and time once per second, not once per record.

    ``time.strftime`` for every line was a tenth of the cost of logging a job; only the
    milliseconds change within a second. A custom ``datefmt`` is rendered as usual.
    """

    _second: tuple[int, str] | None = None

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached is None or cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(second)))
            self._second = cached  # one assignment: threads see the old pair or the new one
        return self.default_msec_format % (cached[1], record.msecs)


class JsonFormatter(logging.Formatter):
    """Renders each record as one JSON object: its event fields, ``level``, ``time``, ``message``.

    ``time`` is UTC ISO-8601 with milliseconds; like ``SecondCachedFormatter`` it renders the
    date and time once per second.
    """

    _second: tuple[int, str] | None = None

    def format(self, record: logging.LogRecord) -> str:
        # An event's fields are its args (see worker.events.EventRecord); others' are extras.
        args = record.args
        fields = args if type(args) is dict and "event" in args else record.__dict__
        line: dict[str, Any] = {name: fields[name] for name in EVENT_FIELDS if name in fields}
        line["level"] = record.levelname
        line["time"] = self._utc_time(record)
        line["logger"] = record.name
        line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)

    def _utc_time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached is None or cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached  # one assignment: threads see the old pair or the new one
        return f"{cached[1]}.{int(record.msecs):03d}Z"


def _cached_time(formatter: logging.Formatter | None) -> logging.Formatter | None:
    if type(formatter) is not logging.Formatter:
        return formatter  # None (the default format has no time) or someone's own class
    cached = SecondCachedFormatter()
    cached.__dict__.update(formatter.__dict__)  # same format, style and date format
    return cached


def batch_stream_handlers(log_format: str = "text") -> None:
    """Swap the root logger's stderr/stdout handlers for batched ones: with the same format
    (``text``), or writing one JSON object per line (``json``).

    Also stop filling in record fields the worker's format never prints (the logging HOWTO's
    "Optimization" section): finding the caller's frame alone cost more than a no-op job.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"JOBSVC_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    logging._srcfile = None  # type: ignore[attr-defined]  # no findCaller: funcName, lineno
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for index, handler in enumerate(list(root.handlers)):
        if type(handler) is logging.StreamHandler:
            batched = BatchedStreamHandler(handler.stream)
            batched.setFormatter(
                JsonFormatter() if log_format == "json" else _cached_time(handler.formatter)
            )
            batched.setLevel(handler.level)
            root.handlers[index] = batched


def flush_logs() -> None:
    """Write every line the root logger's handlers hold (before idling or exiting)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
