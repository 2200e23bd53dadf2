"""Periodic jobs with real workers: four workers on one every-second schedule make exactly one
job per tick, none twice and none missing; after an outage the missed ticks make one job."""

from __future__ import annotations

import time
from datetime import datetime

import requests

from jobsvc.schedules import CATCH_UP_SECONDS
from tests.schedule_handlers import TICK_TYPE
from tests.support.settings import slow_e2e_backends

from .scenario import wait_for
from .service import FULL, FaultService, size

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

WORKERS = 4
RUN_SECONDS = size(4, 10)
HANDLERS = ("--handlers", "tests.handlers,tests.schedule_handlers")


def _ticks(faulty: FaultService) -> list[float]:
    response = requests.get(
        f"{faulty.base_url}/jobs", params={"type": TICK_TYPE, "limit": 500}, timeout=10
    )
    return sorted(
        datetime.fromisoformat(job["run_at"]).timestamp() for job in response.json()["jobs"]
    )


def test_four_workers_make_one_job_per_tick_and_one_for_an_outage(faulty: FaultService) -> None:
    faulty.start_api()
    workers = [faulty.start_worker(*HANDLERS) for _ in range(WORKERS)]
    wait_for(lambda: len(_ticks(faulty)) >= 1, timeout=30)
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started >= RUN_SECONDS, timeout=RUN_SECONDS + 5)
    ticks = _ticks(faulty)
    assert len(ticks) == len(set(ticks)), "a tick was enqueued twice"
    assert all(tick == int(tick) for tick in ticks), "every tick is on a whole second"
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert set(gaps) <= {1.0}, f"ticks missing in the middle: {ticks}"
    assert len(ticks) >= RUN_SECONDS - 1
    if not FULL:
        return
    # An outage longer than the catch-up window: its ticks make one job, not one each.
    for worker in workers:
        faulty.terminate(worker)
    for worker in workers:
        worker.wait(30)
    before = _ticks(faulty)
    outage_end = time.monotonic() + CATCH_UP_SECONDS + 3
    wait_for(lambda: time.monotonic() >= outage_end, timeout=CATCH_UP_SECONDS + 10)
    faulty.start_worker(*HANDLERS)
    wait_for(lambda: len(_ticks(faulty)) >= len(before) + 3, timeout=30)
    after = _ticks(faulty)[len(before) :]
    assert after[0] - before[-1] > CATCH_UP_SECONDS, "the outage's ticks were each enqueued"
    assert set(b - a for a, b in zip(after, after[1:], strict=False)) == {1.0}
