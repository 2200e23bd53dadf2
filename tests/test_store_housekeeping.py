"""The schedule, aging and retention statements on both backends: one job per tick, bounded
batches, the priority a client asked for kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from jobsvc.models import JobStatus
from jobsvc.schedules import ScheduleSpec
from jobsvc.store import NewJob
from jobsvc.store.housekeeping import HousekeepingStore
from jobsvc.store.schedules import ScheduleStore

EVERY_SECOND = ScheduleSpec("test.echo", None, 1, "UTC", "default", {"from": "schedule"})


def _tick_job(tick_at):
    return NewJob(
        type="test.echo", payload={}, queue="default", priority=0, max_attempts=3, run_at=tick_at
    )


def _enqueue(job_store, count, **fields):
    base = {"type": "test.echo", "payload": {}, "queue": "default", "max_attempts": 3}
    return job_store.enqueue([NewJob(**{"priority": 0, **base, **fields}) for _ in range(count)])


def test_a_tick_makes_one_job_however_often_it_is_enqueued(engine, job_store):
    store = ScheduleStore(engine)
    store.register([EVERY_SECOND])
    tick = datetime(2030, 1, 1, tzinfo=UTC)
    first = store.enqueue_tick(EVERY_SECOND, tick, _tick_job(tick))
    assert first is not None
    assert store.enqueue_tick(EVERY_SECOND, tick, _tick_job(tick)) is None
    assert [job.id for job in job_store.list()] == [first]
    (listed,) = store.list()
    assert listed.last_tick_at == tick and listed.payload == {"from": "schedule"}


def test_registering_again_keeps_the_last_tick_and_a_changed_spec_starts_afresh(engine):
    store = ScheduleStore(engine)
    registered = store.register([EVERY_SECOND])["test.echo"]
    tick = registered + timedelta(seconds=1)
    store.enqueue_tick(EVERY_SECOND, tick, _tick_job(tick))
    assert store.register([EVERY_SECOND])["test.echo"] == tick
    changed = ScheduleSpec("test.echo", "0 3 * * *", None, "Europe/Berlin")
    assert store.register([changed])["test.echo"] < tick
    (listed,) = store.list()
    assert listed.cron == "0 3 * * *" and listed.next_run_at.astimezone(UTC).hour in (1, 2)


def test_aging_raises_old_ready_jobs_by_one_step_per_period_and_keeps_the_asked_one(
    engine, job_store
):
    old = _enqueue(job_store, 3, priority=2, run_at=datetime.now(UTC) - timedelta(seconds=25))
    new = _enqueue(job_store, 1, priority=2)
    store = HousekeepingStore(engine)
    assert store.age_priorities(10.0, batch=2) == 2  # bounded
    assert store.age_priorities(10.0, batch=2) == 1
    assert store.age_priorities(10.0, batch=2) == 0  # none behind any more
    for job_id in old:
        assert _priorities(engine, job_id) == (4, 2)
    assert _priorities(engine, new[0]) == (2, None)


def _priorities(engine, job_id):
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT priority, original_priority FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    return tuple(row)


def test_prune_deletes_only_old_finished_jobs_of_the_status_in_batches(engine, job_store):
    ids = _enqueue(job_store, 5)
    _finish(engine, ids[:4], JobStatus.DONE)
    store = HousekeepingStore(engine)
    assert store.count_prunable(JobStatus.DONE, 0.0) == 4
    assert store.count_prunable(JobStatus.DONE, 3600.0) == 0
    assert store.count_prunable(JobStatus.FAILED, 0.0) == 0
    assert store.prune(JobStatus.DONE, 0.0, batch=3) == 3
    assert store.prune(JobStatus.DONE, 0.0, batch=3) == 1
    assert [job.id for job in job_store.list()] == [ids[4]]  # the PENDING one stays


def _finish(engine, job_ids, status):
    with engine.begin() as connection:
        for job_id in job_ids:
            connection.execute(
                text("UPDATE jobs SET status = :s, finished_at = created_at WHERE id = :id"),
                {"s": status.value, "id": job_id},
            )
