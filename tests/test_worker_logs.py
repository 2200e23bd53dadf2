"""The worker's batched log lines: held briefly, never lost, warnings at once."""

from __future__ import annotations

import io
import logging

from worker.logs import BatchedStreamHandler


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
