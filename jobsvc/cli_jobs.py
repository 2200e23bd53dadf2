"""``flask --app jobsvc jobs enqueue|show|list|retry|cancel|stats``: the queue from a shell.

Each verb calls the same store functions as the API, with the API's validation, so a job
enqueued here is the job ``POST /jobs`` would store. Output is a table for people, or JSON
(``--json``, the API's own shapes) for scripts. The exit code says what happened (``EXIT_*``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from flask.cli import with_appcontext
from marshmallow import ValidationError

from .api.jobs import load_job
from .api.schemas import JobDetailSchema, JobSchema, ListQuerySchema
from .api.state import state
from .errors import (
    DatabaseUnavailable,
    InvalidTransition,
    JobNotFound,
    JobsvcError,
    QueueFull,
    ValidationFailed,
)
from .models import JobStatus
from .store import JobRecord

# What the exit code means: the same for every verb, so scripts can branch on it.
EXIT_OK = 0
EXIT_FAILED = 1  # something else went wrong (the message says what)
EXIT_USAGE = 2  # a bad option or argument (click's own code)
EXIT_NOT_FOUND = 3  # no job has that id
EXIT_CONFLICT = 4  # the job's status does not allow it (retry a DONE job, cancel a FAILED one)
EXIT_INVALID = 5  # the job is refused: a field is missing, of the wrong type or out of range
EXIT_UNAVAILABLE = 6  # the database does not answer, or the queue is full: try again later
EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 other error; 2 bad usage; 3 job not found; 4 not allowed in the "
    "job's status; 5 invalid job; 6 database unavailable or queue full (try again later). "
    "With several ids, the code is the worst of them."
)
_EXIT_BY_ERROR: tuple[tuple[type[JobsvcError], int], ...] = (
    (JobNotFound, EXIT_NOT_FOUND),
    (InvalidTransition, EXIT_CONFLICT),
    (ValidationFailed, EXIT_INVALID),
    (QueueFull, EXIT_UNAVAILABLE),
    (DatabaseUnavailable, EXIT_UNAVAILABLE),
)
PROGRESS_FROM = 10  # ids; fewer are done without a progress bar

_job = JobSchema()
_job_detail = JobDetailSchema()
_list_query = ListQuerySchema()
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")


def exit_code_of(error: JobsvcError) -> int:
    for kind, code in _EXIT_BY_ERROR:
        if isinstance(error, kind):
            return code
    return EXIT_FAILED


class JobsvcCliError(click.ClickException):
    """A domain error, told on stderr, with the exit code its kind means."""

    def __init__(self, error: JobsvcError) -> None:
        message = error.message
        if isinstance(error, ValidationFailed):
            message = f"{message} {json.dumps(error.errors, sort_keys=True)}"
        super().__init__(message)
        self.exit_code = exit_code_of(error)


@contextmanager
def domain_errors() -> Iterator[None]:
    try:
        yield
    except JobsvcError as exc:
        raise JobsvcCliError(exc) from None


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Return ``rows`` as a plain text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _when(record: JobRecord, name: str) -> str:
    value = getattr(record, name)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _clip(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("enqueue")
@with_appcontext
@click.argument("job_type", metavar="TYPE")
@click.option("--payload", default="{}", help="The payload, as a JSON object (default: {}).")
@click.option("--queue", default=None, help="Queue name (default: default).")
@click.option("--priority", type=int, default=None, help="Higher runs first (default: 0).")
@click.option("--run-at", default=None, help="Run no sooner than this ISO 8601 time.")
@click.option(
    "--delay", type=float, default=None, help="Run no sooner than this many seconds from now."
)
@click.option("--max-attempts", type=int, default=None, help="Attempts before it fails.")
@click.option("--timeout", type=float, default=None, help="Seconds an attempt may run.")
@json_option
def enqueue(
    job_type: str,
    payload: str,
    queue: str | None,
    priority: int | None,
    run_at: str | None,
    delay: float | None,
    max_attempts: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Enqueue a job of TYPE, validated as POST /jobs validates it; print its id."""
    try:
        decoded = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    body: dict[str, Any] = {"type": job_type, "payload": decoded}
    optional = {
        "queue": queue,
        "priority": priority,
        "run_at": run_at,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout,
        "delay_seconds": delay,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    api = state()
    with domain_errors():
        new_job = load_job(body)
        api.ready_cap.admit([new_job])
        (job_id,) = api.services.jobs.enqueue([new_job])
    if as_json:
        _echo_json({"id": job_id, "status": JobStatus.PENDING.value})
    else:
        click.echo(f"Enqueued job {job_id} ({new_job.type} on queue {new_job.queue}).")


@click.command("show")
@with_appcontext
@click.argument("job_id", type=click.IntRange(1))
@json_option
def show(job_id: int, as_json: bool) -> None:
    """Show one job: its fields, payload, result and last error."""
    with domain_errors():
        record = state().services.jobs.get(job_id)
    if as_json:
        _echo_json(_job_detail.dump(record))
        return
    facts = [
        ("id", record.id),
        ("type", record.type),
        ("queue", record.queue),
        ("status", record.status.value),
        ("priority", record.priority),
        ("attempts", f"{record.attempts} of {record.max_attempts}"),
        ("created", _when(record, "created_at")),
        ("run at", _when(record, "run_at")),
        ("started", _when(record, "started_at")),
        ("finished", _when(record, "finished_at")),
        ("worker", record.locked_by or ""),
        ("payload", json.dumps(record.payload, sort_keys=True)),
        ("result", "" if record.result is None else json.dumps(record.result, sort_keys=True)),
        ("last error", record.last_error or ""),
    ]
    width = max(len(name) for name, _ in facts)
    for name, value in facts:
        click.echo(f"{name.ljust(width)}  {value}")
    if record.error_traceback:
        click.echo("\n" + record.error_traceback.rstrip())


@click.command("list")
@with_appcontext
@click.option("--status", type=click.Choice([s.value for s in JobStatus], case_sensitive=False))
@click.option("--queue", default=None)
@click.option("--type", "job_type", default=None)
@click.option("--limit", type=int, default=50, show_default=True, help="Jobs per page.")
@click.option("--before", type=int, default=None, help="Only jobs older than this id.")
@json_option
def list_jobs(
    status: str | None,
    queue: str | None,
    job_type: str | None,
    limit: int,
    before: int | None,
    as_json: bool,
) -> None:
    """List jobs newest first, filtered as GET /jobs filters them."""
    raw = {"status": status and status.upper(), "queue": queue, "type": job_type}
    raw.update(limit=str(limit), before=None if before is None else str(before))
    try:
        query = _list_query.load({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:  # what GET /jobs answers 422 for
        raise JobsvcCliError(ValidationFailed(exc.normalized_messages())) from None
    with domain_errors():
        query.pop("shown", None)  # GET /jobs's fields=: these show every field
        records = state().services.jobs.list(**query)
    next_before = records[-1].id if len(records) == query["limit"] else None
    if as_json:
        _echo_json({"jobs": _job.dump(records, many=True), "next_before": next_before})
        return
    rows = [
        (
            r.id,
            r.type,
            r.queue,
            r.status.value,
            f"{r.attempts}/{r.max_attempts}",
            _when(r, "created_at"),
            _clip(r.last_error),
        )
        for r in records
    ]
    click.echo(table(rows, ("ID", "TYPE", "QUEUE", "STATUS", "ATTEMPTS", "CREATED", "LAST ERROR")))
    if next_before is not None:
        click.echo(f"(more: --before {next_before})", err=True)


def _each(
    job_ids: Sequence[int], verb: str, act: Callable[[int], JobRecord], as_json: bool
) -> None:
    """Apply ``act`` to every id (a progress bar past ``PROGRESS_FROM``); exit with the worst."""
    done: list[dict[str, Any]] = []
    worst = EXIT_OK
    show_bar = len(job_ids) >= PROGRESS_FROM and not as_json
    with click.progressbar(job_ids, label=verb, file=sys.stderr, hidden=not show_bar) as ids:
        for job_id in ids:
            try:
                record = act(job_id)
            except JobsvcError as exc:
                worst = max(worst, exit_code_of(exc))
                click.echo(f"job {job_id}: {exc.message}", err=True)
                done.append({"id": job_id, "error": exc.message})
                continue
            done.append({"id": record.id, "status": record.status.value})
    if as_json:
        _echo_json({"jobs": done})
    else:
        for entry in done:
            if "status" in entry:
                click.echo(f"job {entry['id']}: now {entry['status']}")
    sys.exit(worst)


@click.command("retry")
@with_appcontext
@click.argument("job_ids", metavar="ID...", type=click.IntRange(1), nargs=-1, required=True)
@json_option
def retry(job_ids: tuple[int, ...], as_json: bool) -> None:
    """Send FAILED or CANCELLED jobs back to PENDING, attempts reset."""
    _each(job_ids, "Retrying", state().services.jobs.retry, as_json)


@click.command("cancel")
@with_appcontext
@click.argument("job_ids", metavar="ID...", type=click.IntRange(1), nargs=-1, required=True)
@json_option
def cancel(job_ids: tuple[int, ...], as_json: bool) -> None:
    """Cancel PENDING or RUNNING jobs."""
    _each(job_ids, "Cancelling", state().services.jobs.cancel, as_json)


@click.command("stats")
@with_appcontext
@json_option
def stats(as_json: bool) -> None:
    """Jobs per queue and status, the ready backlog, the oldest ready job, the last hour."""
    services = state().services
    with domain_errors():
        counts = services.jobs.counts()
        ready = {entry.queue: entry for entry in services.overview.ready_queues()}
        _, minutes = services.overview.finished_per_minute(60)
    queues = sorted({queue for queue, _ in counts} | set(ready))
    per_queue = {
        queue: {
            **{status.value: counts.get((queue, status), 0) for status in JobStatus},
            "ready": ready[queue].ready if queue in ready else 0,
            "oldest_ready_seconds": round(ready[queue].oldest_age_seconds, 3)
            if queue in ready
            else None,
        }
        for queue in queues
    }
    last_hour = {
        "done": sum(m.done for m in minutes),
        "failed": sum(m.failed for m in minutes),
    }
    if as_json:
        _echo_json({"queues": per_queue, "last_hour": last_hour})
        return
    headers = ("QUEUE", *(s.value for s in JobStatus), "READY", "OLDEST READY (s)")
    rows = [
        (
            queue,
            *(row[s.value] for s in JobStatus),
            row["ready"],
            "" if row["oldest_ready_seconds"] is None else f"{row['oldest_ready_seconds']:.1f}",
        )
        for queue, row in per_queue.items()
    ]
    click.echo(table(rows, headers))
    click.echo(f"\nLast hour: {last_hour['done']} done, {last_hour['failed']} failed.")


VERBS = (enqueue, show, list_jobs, retry, cancel, stats)


def register(group: click.Group) -> None:
    """Add the job verbs to ``flask jobs``."""
    for verb in VERBS:
        group.add_command(verb)
