"""The worker's batched log lines: held briefly, never lost, warnings at once."""

from __future__ import annotations

import io
import logging

import pytest

from worker.context import JobContext
from worker.logs import BatchedStreamHandler, SecondCachedFormatter, _cached_time


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
    logger.info("first")  # the first line goes out at once: nothing was written for a while
    logger.info("done job_id=1")
    logger.info("done job_id=2")
    assert stream.getvalue() == "INFO first\n"
    handler.flush()
    assert stream.getvalue() == "INFO first\nINFO done job_id=1\nINFO done job_id=2\n"


def test_a_warning_is_written_at_once_with_the_lines_held_before_it():
    stream = io.StringIO()
    logger, _ = _logger(stream)
    logger.info("first")
    logger.info("claimed job_id=1")
    logger.warning("lease lost job_id=1")
    assert stream.getvalue().splitlines() == ["INFO first", "INFO claimed job_id=1",
                                              "WARNING lease lost job_id=1"]


@pytest.mark.parametrize("created", [
    [1_700_000_000.001, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_001.5, 1_699_999_999.25],
])
def test_the_cached_time_renders_every_record_as_the_stock_formatter_does(created):
    stock = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    cached = _cached_time(stock)
    assert isinstance(cached, SecondCachedFormatter)
    for when in created:  # across second boundaries, and back in time (a clock step)
        record = logging.LogRecord("worker", logging.INFO, __file__, 1, "done job_id=%s", (7,),
                                   None)
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
