"""The worker's batched log lines: held briefly, never lost, warnings at once."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from datetime import UTC, datetime

import pytest

from jobsvc.store import ClaimedJob, outcomes
from tests.support.waiting import wait_until
from worker.context import JobContext
from worker.events import Events
from worker.events import logger as events_logger
from worker.logs import (
    BatchedStreamHandler,
    JsonFormatter,
    SecondCachedFormatter,
    _cached_time,
    batch_stream_handlers,
)

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # jobsvc's basicConfig
JOB = ClaimedJob(41, "mail.send", "emails", {"to": "a@example.com"}, 2, 3, None, "tok")


def _logger(stream: io.StringIO) -> tuple[logging.Logger, BatchedStreamHandler]:
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test.worker.logs.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_info_lines_wait_for_a_batch_and_flush_writes_them_in_order():
    stream = io.StringIO()
    logger, handler = _logger(stream)
    logger.info("first")
    logger.info("done job_id=1")
    logger.info("done job_id=2")
    handler.flush()
    assert stream.getvalue() == "INFO first\nINFO done job_id=1\nINFO done job_id=2\n"
    handler.close()


def test_a_warning_is_written_at_once_with_the_lines_held_before_it():
    stream = io.StringIO()
    logger, handler = _logger(stream)
    logger.info("first")
    logger.info("claimed job_id=1")
    logger.warning("lease lost job_id=1")
    wait_until(lambda: "WARNING" in stream.getvalue(), timeout=5, message="no warning written")
    assert stream.getvalue().splitlines() == [
        "INFO first",
        "INFO claimed job_id=1",
        "WARNING lease lost job_id=1",
    ]
    handler.close()


class _BlockedSink(io.StringIO):
    """A stream whose writes block until it is opened, then fail while it is broken."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.broken = False

    def write(self, text: str) -> int:
        self.open.wait()
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_a_blocked_sink_never_blocks_the_logger_and_the_drop_count_is_written_later():
    stream = _BlockedSink()
    handler = BatchedStreamHandler(stream, capacity=10)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test.worker.logs.blocked.{id(stream)}")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    logger.warning("first")  # the writer takes it and blocks in the write
    wait_until(lambda: handler.dropped() == 0 and not handler._lines, timeout=5)
    for n in range(25):  # returns at once although nothing can be written
        logger.info("line %d", n)
    assert handler.dropped() == 15
    stream.open.set()
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "WARNING first"
    assert "WARNING logging: 15 lines dropped" in lines[1]
    assert lines[2:] == [f"INFO line {n}" for n in range(10)]
    stream.broken = True
    logger.info("lost")
    handler.flush()
    assert handler.dropped() == 1
    stream.broken = False
    logger.info("back")
    handler.flush()
    assert stream.getvalue().splitlines()[-2:] == [
        "WARNING logging: 1 lines dropped while the log output was blocked or broken",
        "INFO back",
    ]
    handler.close()


@pytest.mark.parametrize(
    "created",
    [
        [1_700_000_000.001, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_001.5, 1_699_999_999.25],
    ],
)
def test_the_cached_time_renders_every_record_as_the_stock_formatter_does(created):
    stock = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    cached = _cached_time(stock)
    assert isinstance(cached, SecondCachedFormatter)
    for when in created:  # across second boundaries, and back in time (a clock step)
        record = logging.LogRecord(
            "worker", logging.INFO, __file__, 1, "done job_id=%s", (7,), None
        )
        record.created, record.msecs = when, (when - int(when)) * 1000
        assert cached.format(record) == stock.format(record)


def test_a_custom_date_format_or_formatter_class_is_kept():
    dated = logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M")
    record = logging.LogRecord("worker", logging.INFO, __file__, 1, "m", (), None)
    assert _cached_time(dated).format(record) == dated.format(record)

    class Own(logging.Formatter):
        pass

    own = Own()
    assert _cached_time(own) is own
    assert _cached_time(None) is None


def test_the_stop_event_is_made_once_and_shared():
    context = JobContext(job_id=1, attempt=1, max_attempts=3, queue="q", type="t", worker_id="w")
    event = context.stop_requested
    assert not event.is_set()
    context.stop_requested.set()  # as the runner does to stop the handler
    assert event.is_set() and context.stop_requested is event


def _write_events(formatter: logging.Formatter) -> list[str]:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(formatter)
    events_logger.addHandler(handler)
    level, events_logger.level = events_logger.level, logging.INFO
    try:
        events = Events("host:12:abc")
        events.claimed(JOB)
        events.recorded(
            JOB,
            outcomes.failed(JOB, RuntimeError("smtp down"), permanent=False, traceback_limit=100),
            0.25,
            lost=False,
        )
        events.recorded(JOB, outcomes.succeeded(JOB, None), 0.5, lost=True)
        handler.flush()
    finally:
        events_logger.setLevel(level)
        events_logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_json_lines_parse_and_carry_the_event_fields():
    lines = _write_events(JsonFormatter())
    claimed, retry, dropped = (json.loads(line) for line in lines)
    assert {
        k: claimed[k] for k in ("event", "job_id", "type", "queue", "attempt", "worker", "level")
    } == {
        "event": "claimed",
        "job_id": 41,
        "type": "mail.send",
        "queue": "emails",
        "attempt": 2,
        "worker": "host:12:abc",
        "level": "INFO",
    }
    assert claimed["message"] == "claimed job_id=41 type=mail.send attempt=2"
    assert (retry["event"], retry["error_type"], retry["error"], retry["duration"]) == (
        "retry_scheduled",
        "RuntimeError",
        "RuntimeError: smtp down",
        0.25,
    )
    assert (dropped["event"], dropped["level"]) == ("outcome_dropped", "WARNING")
    when = datetime.fromisoformat(claimed["time"])
    assert when.tzinfo is not None and abs(datetime.now(UTC) - when).total_seconds() < 60
    assert all("a@example.com" not in line for line in lines)  # never the payload


def test_text_lines_keep_their_wording():
    lines = _write_events(_cached_time(logging.Formatter(DEFAULT_FORMAT)))
    assert [line.split(" ", 2)[2] for line in lines] == [
        "INFO worker.events: claimed job_id=41 type=mail.send attempt=2",
        "INFO worker.events: retry scheduled job_id=41 type=mail.send attempt=2: "
        "RuntimeError: smtp down",
        "WARNING worker.events: lease lost job_id=41 type=mail.send attempt=2: outcome dropped",
    ]


@pytest.mark.parametrize(
    "created", [1_700_000_000.001, 1_700_000_000.999, 1_700_000_001.5, 1_699_999_999.25]
)
def test_the_json_time_is_the_records_time_in_utc(created):
    formatter = JsonFormatter()
    record = logging.LogRecord("worker", logging.INFO, __file__, 1, "m", (), None)
    record.created, record.msecs = created, int((created - int(created)) * 1000)
    when = datetime.fromisoformat(json.loads(formatter.format(record))["time"])
    assert abs(when.timestamp() - created) < 0.001


def test_a_json_line_holds_the_exception_of_a_logged_error():
    record = logging.LogRecord("worker", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    try:
        raise ValueError("bad")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed x" and "ValueError: bad" in line["exception"]
    assert "event" not in line  # not an event: a plain log line


@pytest.fixture
def root_handlers():
    root = logging.getLogger()
    saved = list(root.handlers)
    flags = {
        name: getattr(logging, name)
        for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    }
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)
    plain.setFormatter(logging.Formatter(DEFAULT_FORMAT))
    root.handlers[:] = [plain]
    yield root, stream
    root.handlers[:] = saved
    for name, value in flags.items():
        setattr(logging, name, value)


@pytest.mark.parametrize(
    ("log_format", "formatter"), [("text", SecondCachedFormatter), ("json", JsonFormatter)]
)
def test_the_batched_handler_takes_the_configured_format(root_handlers, log_format, formatter):
    root, stream = root_handlers
    batch_stream_handlers(log_format)
    (handler,) = [h for h in root.handlers if getattr(h, "stream", None) is stream]
    assert type(handler) is BatchedStreamHandler and type(handler.formatter) is formatter


def test_an_unknown_log_format_is_refused(root_handlers):
    with pytest.raises(ValueError, match="JOBSVC_LOG_FORMAT must be one of text, json"):
        batch_stream_handlers("xml")
