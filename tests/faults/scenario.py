"""Small helpers the scenarios share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.support.waiting import poll_until, wait_until

if TYPE_CHECKING:
    from .service import FaultService

WAIT_INTERVAL_SECONDS = 0.05
BYSTANDERS = 5  # jobs per enqueue of poison_amid_bystanders


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Return ``predicate()``'s first truthy value; fail after ``timeout`` seconds."""
    return wait_until(predicate, timeout=timeout, interval=WAIT_INTERVAL_SECONDS)


def starts(executions: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """Return the execution log's start lines whose fields equal ``match``."""
    return [
        e
        for e in executions
        if e["event"] == "start" and all(e.get(k) == v for k, v in match.items())
    ]


def epoch(value: float | datetime) -> float:
    """Return a stored time as epoch seconds (SQLite stores them; PostgreSQL returns datetimes)."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


def poison_amid_bystanders(
    faulty: FaultService, poison: int, *, every_seconds: float, timeout: float
) -> tuple[dict[str, Any], list[int], list[int]]:
    """Enqueue short bystander jobs every ``every_seconds`` until the ``poison`` job FAILED,
    then let everything settle. Return the poison job's row, every bystander's id, and those
    that finished while the poison job was still being retried."""
    stop = threading.Event()

    def stream() -> None:
        while not stop.wait(every_seconds):
            faulty.enqueue([{"type": "test.work", "payload": {"seconds": 0.02}}] * BYSTANDERS)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        poll_until(lambda: faulty.row(poison)["status"] == "FAILED", timeout=timeout, interval=0.1)
    finally:
        stop.set()
        streamer.join()
    faulty.wait_settled(timeout)
    row = faulty.row(poison)
    bystanders = [i for i in faulty.accepted if i != poison]
    failed_at = epoch(row["finished_at"])
    flowed = [i for i in bystanders if epoch(faulty.row(i)["finished_at"]) < failed_at]
    return row, bystanders, flowed
