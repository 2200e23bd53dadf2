"""``flask --app jobsvc jobs queues ...``: list queues, pause and resume them."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup, with_appcontext

from .api.queueschemas import QueueSchema
from .api.state import state
from .errors import JobsvcError
from .jobfields import QUEUE_NAME_PATTERN
from .models import JobStatus
from .store import QueueStats, QueueStore

_COLUMNS = ("queue", "paused", "concurrency", "rate limit", "ready", *JobStatus, "oldest ready")


@click.group("queues", cls=AppGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as GET /queues answers.")
@click.pass_context
@with_appcontext
def queues_cli(ctx: click.Context, as_json: bool) -> None:
    """List queues (a table, or --json); pause or resume one."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        found = _queues().list()
    except JobsvcError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps({"queues": QueueSchema().dump(found, many=True)}, indent=2))
    else:
        click.echo(_table([_row(stats) for stats in found]))


def _queues() -> QueueStore:
    return state().services.queues


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not QUEUE_NAME_PATTERN.fullmatch(value):
        raise click.BadParameter("must be 1 to 64 letters, digits or _ . : -")
    return value


def _row(stats: QueueStats) -> list[str]:
    rate = stats.rate_limit
    age = stats.oldest_ready_age_seconds
    return [
        stats.name,
        "yes" if stats.paused else "no",
        "-" if stats.concurrency is None else str(stats.concurrency),
        "-" if rate is None else f"{rate.jobs}/{rate.per_seconds:g}s",
        str(stats.ready),
        *(str(stats.counts[status]) for status in JobStatus),
        "-" if age is None else f"{age:.1f}s",
    ]


def _table(rows: list[list[str]]) -> str:
    header = [str(column) for column in _COLUMNS]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _set_paused(name: str, paused: bool) -> None:
    try:
        _queues().set_paused(name, paused)
    except JobsvcError as exc:
        raise click.ClickException(exc.message) from None


@queues_cli.command("pause")
@click.argument("name", callback=_name)
def pause_queue(name: str) -> None:
    """Pause queue NAME: no new attempt starts; running ones finish; enqueue still works."""
    _set_paused(name, True)
    click.echo(f"Paused queue {name!r}.")


@queues_cli.command("resume")
@click.argument("name", callback=_name)
def resume_queue(name: str) -> None:
    """Resume queue NAME."""
    _set_paused(name, False)
    click.echo(f"Resumed queue {name!r}.")
