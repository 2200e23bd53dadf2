"""GET /schedules and ``flask jobs prune`` as an operator sees them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from jobsvc.models import JobStatus
from jobsvc.schedules import ScheduleSpec
from jobsvc.store.schedules import ScheduleStore

NIGHTLY = ScheduleSpec("test.echo", "0 3 * * *", None, "Europe/Berlin", "reports", {"k": 1})
EVERY = ScheduleSpec("test.flaky", None, 5, "UTC")


def test_schedules_list_each_with_its_next_run_time(client, engine):
    assert client.get("/schedules").json == {"schedules": []}
    ScheduleStore(engine).register([NIGHTLY, EVERY])
    listed = client.get("/schedules").json["schedules"]
    assert [s["name"] for s in listed] == ["test.echo", "test.flaky"]
    nightly, every = listed
    assert (nightly["cron"], nightly["timezone"], nightly["every_seconds"]) == (
        "0 3 * * *",
        "Europe/Berlin",
        None,
    )
    assert (nightly["queue"], nightly["payload"]) == ("reports", {"k": 1})
    next_run = datetime.fromisoformat(nightly["next_run_at"])
    assert next_run > datetime.now(UTC)
    assert next_run.astimezone(NIGHTLY._zone).hour == 3  # type: ignore[attr-defined]
    assert every["every_seconds"] == 5
    assert datetime.fromisoformat(every["next_run_at"]).timestamp() % 5 == 0


def _finished(client, engine, count, status):
    ids = [client.post("/jobs", json={"type": "test.echo"}).json["id"] for _ in range(count)]
    with engine.begin() as connection:
        for job_id in ids:
            connection.execute(
                text("UPDATE jobs SET status = :s, finished_at = created_at WHERE id = :id"),
                {"s": status.value, "id": job_id},
            )
    return ids


def test_prune_dry_run_counts_and_prune_deletes_with_a_progress_bar(app, client, engine):
    _finished(client, engine, 3, JobStatus.DONE)
    _finished(client, engine, 2, JobStatus.FAILED)
    pending = client.post("/jobs", json={"type": "test.echo"}).json["id"]
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["jobs", "prune", "--older-than", "0s", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "DONE: would delete 3 jobs" in dry.output
    assert "FAILED: would delete 2 jobs" in dry.output
    assert len(client.get("/jobs").json["jobs"]) == 6
    done = runner.invoke(args=["jobs", "prune", "--status", "done", "--older-than", "0"])
    assert done.exit_code == 0, done.output
    assert "DONE: deleted 3 jobs" in done.output
    left = {job["id"]: job["status"] for job in client.get("/jobs").json["jobs"]}
    assert sorted(left.values()) == ["FAILED", "FAILED", "PENDING"] and pending in left


def test_prune_by_the_retention_settings_keeps_recent_jobs(app, client, engine):
    _finished(client, engine, 2, JobStatus.DONE)
    result = app.test_cli_runner().invoke(args=["jobs", "prune"])
    assert result.exit_code == 0, result.output
    assert "DONE: deleted 0 jobs finished more than 604800s ago" in result.output
    assert len(client.get("/jobs").json["jobs"]) == 2


def test_prune_refuses_a_bad_duration_with_usage_exit_code(app):
    result = app.test_cli_runner().invoke(args=["jobs", "prune", "--older-than", "soon"])
    assert result.exit_code == 2
    assert "--older-than" in result.output
