"""``flask jobs enqueue|show|list|retry|cancel|stats``: the store's calls, the API's rules."""

from __future__ import annotations

import json

import pytest

from jobsvc.cli_jobs import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from jobsvc.models import JobStatus


@pytest.fixture
def jobs(app):
    runner = app.test_cli_runner()

    def run(*args: str):
        return runner.invoke(args=["jobs", *args], catch_exceptions=False)

    return run


def _enqueue(jobs, *args: str) -> int:
    result = jobs("enqueue", "test.echo", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["id"]


def test_enqueue_stores_the_job_the_api_would(jobs, job_store):
    job_id = _enqueue(jobs, "--payload", '{"to": "a@example.com"}', "--queue", "mail")
    record = job_store.get(job_id)
    assert (record.type, record.queue, record.payload) == (
        "test.echo",
        "mail",
        {"to": "a@example.com"},
    )
    human = jobs("enqueue", "test.echo", "--priority", "3")
    assert human.exit_code == 0 and "Enqueued job" in human.output


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--priority", "99999999"], "priority"),
        (["--queue", "no spaces"], "queue"),
        (["--run-at", "tomorrow"], "run_at"),
        (["--delay", "-1"], "delay_seconds"),
        (["--delay", "5", "--run-at", "2030-01-01T00:00:00Z"], "delay_seconds"),
    ],
)
def test_an_invalid_job_is_refused_naming_the_field(jobs, args, field):
    result = jobs("enqueue", "test.echo", *args)
    assert result.exit_code == EXIT_INVALID
    assert field in result.output


def test_delay_runs_the_job_that_many_seconds_from_now(jobs, job_store):
    record = job_store.get(_enqueue(jobs, "--delay", "3600"))
    waited = (record.run_at - record.created_at).total_seconds()
    assert 3599 <= waited <= 3601


def test_an_unknown_type_is_refused_as_the_api_refuses_it(jobs):
    result = jobs("enqueue", "no.such.type")
    assert result.exit_code == EXIT_INVALID and "Unknown job type" in result.output


def test_a_payload_that_is_not_json_is_a_usage_error(jobs):
    assert jobs("enqueue", "test.echo", "--payload", "[1").exit_code == EXIT_USAGE


def test_show_and_list_print_tables_or_json(jobs):
    first = _enqueue(jobs, "--queue", "a")
    second = _enqueue(jobs, "--queue", "b")
    shown = jobs("show", str(first))
    assert shown.exit_code == 0 and "PENDING" in shown.output
    assert json.loads(jobs("show", str(first), "--json").output)["id"] == first
    listed = json.loads(jobs("list", "--queue", "b", "--json").output)
    assert [job["id"] for job in listed["jobs"]] == [second]
    table = jobs("list").output.splitlines()
    assert table[0].split()[:4] == ["ID", "TYPE", "QUEUE", "STATUS"]
    assert [int(line.split()[0]) for line in table[2:]] == [second, first]
    paged = jobs("list", "--limit", "1", "--json")
    assert json.loads(paged.output)["next_before"] == second
    assert jobs("show", "999999").exit_code == EXIT_NOT_FOUND
    assert jobs("list", "--limit", "0").exit_code == EXIT_INVALID


def test_cancel_then_retry_with_exit_codes_that_say_what_happened(jobs, job_store):
    ids = [_enqueue(jobs) for _ in range(3)]
    assert jobs("retry", str(ids[0])).exit_code == EXIT_CONFLICT  # PENDING: nothing to retry
    cancelled = jobs("cancel", *map(str, ids), "--json")
    assert cancelled.exit_code == 0
    assert {job["status"] for job in json.loads(cancelled.output)["jobs"]} == {"CANCELLED"}
    mixed = jobs("retry", str(ids[0]), "999999")
    assert mixed.exit_code == EXIT_NOT_FOUND  # the worst of the two
    assert job_store.get(ids[0]).status == JobStatus.PENDING


def test_many_ids_show_a_progress_bar_on_stderr(app, jobs):
    ids = [_enqueue(jobs) for _ in range(12)]
    runner = app.test_cli_runner(mix_stderr=False) if _has_mix_stderr() else app.test_cli_runner()
    result = runner.invoke(args=["jobs", "cancel", *map(str, ids)])
    assert result.exit_code == 0
    assert "Cancelling" in result.stderr


def _has_mix_stderr() -> bool:
    import inspect

    from click.testing import CliRunner

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def test_stats_counts_queues_statuses_and_the_ready_backlog(jobs):
    _enqueue(jobs, "--queue", "mail")
    _enqueue(jobs, "--queue", "mail")
    stats = json.loads(jobs("stats", "--json").output)
    assert stats["queues"]["mail"]["PENDING"] == 2
    assert stats["queues"]["mail"]["ready"] == 2
    assert stats["queues"]["mail"]["oldest_ready_seconds"] >= 0
    assert stats["last_hour"] == {"done": 0, "failed": 0}
    assert "mail" in jobs("stats").output
