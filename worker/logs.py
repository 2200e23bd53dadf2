"""Cheap log lines for a busy worker: one line per job event, written to stderr in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TextIO

from jobsvc.config import LOG_FORMATS
from jobsvc.logjson import EVENT_FIELDS, JsonFormatter

__all__ = ["EVENT_FIELDS", "BatchedStreamHandler", "JsonFormatter", "SecondCachedFormatter"]

FLUSH_INTERVAL_SECONDS = 0.1  # the longest an INFO line waits in memory while jobs flow
FLUSH_LINES_MAX = 500  # lines held before a write, whatever the time
BUFFER_LINES_MAX = 20_000  # lines held while the sink blocks; past it they are dropped
FLUSH_WAIT_SECONDS = 1.0  # the longest a flush waits for a sink that blocks
DROPPED_MESSAGE = "logging: %d lines dropped while the log output was blocked or broken"


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes many lines per system call, on a writer thread of its own.

    The stock handler writes and flushes every record: at thousands of jobs a second that was
    the biggest cost of the worker's loop. And a write blocks the thread that logs: a stderr
    pipe nobody reads stopped the worker's heartbeats. So ``emit`` only formats the line and
    appends it to a bounded buffer; the writer thread writes WARNING and above at once and INFO
    lines at most ``FLUSH_INTERVAL_SECONDS`` later (or once ``FLUSH_LINES_MAX`` are held). When
    the sink blocks or fails, lines past ``capacity`` are dropped and counted, and the count is
    written once the sink takes lines again.
    """

    def __init__(self, stream: TextIO, capacity: int = BUFFER_LINES_MAX) -> None:
        super().__init__(stream)
        self._lines: deque[str | threading.Event] = deque()  # appends are atomic: no lock
        self._capacity = capacity
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._wanted = threading.Event()  # write now: a warning, a full batch, a flush, close
        self._closing = False
        self._writer = threading.Thread(target=self._serve, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            lines = self._lines
            if len(lines) >= self._capacity:
                self._count_dropped(1)
                return
            lines.append(line)
            if record.levelno >= logging.WARNING or len(lines) == FLUSH_LINES_MAX:
                self._wanted.set()
        except Exception:  # the logging module's own contract: report, never raise
            self.handleError(record)

    def flush(self, wait_seconds: float = FLUSH_WAIT_SECONDS) -> None:
        """Have the writer write every held line; wait at most ``wait_seconds`` for it."""
        written = threading.Event()
        self._lines.append(written)  # a marker past the buffer's bound: it is tiny
        self._wanted.set()
        if wait_seconds > 0 and self._writer.is_alive():
            written.wait(wait_seconds)

    def close(self) -> None:
        """Write what is held (waiting at most ``FLUSH_WAIT_SECONDS``), then stop the writer."""
        self.flush()
        self._closing = True
        self._wanted.set()
        super().close()

    def dropped(self) -> int:
        """Return how many lines were dropped and not yet reported."""
        return self._dropped

    def _serve(self) -> None:
        while not self._closing:
            self._wanted.wait(FLUSH_INTERVAL_SECONDS)
            self._wanted.clear()
            try:
                self._write_held()
            except Exception:  # noqa: S112 - the writer outlives any failure of its sink
                continue

    def _write_held(self) -> None:
        lines: list[str] = []
        markers: list[threading.Event] = []
        take = self._lines.popleft
        while self._lines:
            item = take()
            if type(item) is str:
                lines.append(item)
            else:
                markers.append(item)  # type: ignore[arg-type]
        if lines or self._dropped:
            self._deliver(lines)
        for marker in markers:
            marker.set()

    def _deliver(self, lines: list[str]) -> None:
        with self._dropped_lock:
            dropped, self._dropped = self._dropped, 0
        text = "".join(lines)
        if dropped:
            text = self._dropped_line(dropped) + text
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # a broken or closed sink: count what it lost, keep the jobs going
            self._count_dropped(dropped + len(lines))

    def _count_dropped(self, count: int) -> None:
        with self._dropped_lock:
            self._dropped += count

    def _dropped_line(self, count: int) -> str:
        record = logging.LogRecord(
            __name__, logging.WARNING, "", 0, DROPPED_MESSAGE, (count,), None
        )
        return self.format(record) + self.terminator


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


def flush_logs(wait_seconds: float = 0.0) -> None:
    """Have the root logger's handlers write every line they hold (before idling or exiting),
    waiting at most ``wait_seconds`` for a batched handler's writer."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, BatchedStreamHandler):
            handler.flush(wait_seconds)
        else:
            handler.flush()
