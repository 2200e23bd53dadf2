"""``flask --app jobsvc jobs ...``: operator commands (API tokens, pruning)."""

from __future__ import annotations

import re

import click
from flask import Flask
from flask.cli import AppGroup

from .api.state import state
from .errors import DatabaseUnavailable, JobsvcError
from .models import JobStatus
from .store import TokenStore
from .store.housekeeping import HousekeepingStore
from .tokens import SCOPES, TOKEN_NAME_PATTERN, format_scopes, hash_token, new_token, parse_scopes

jobs_cli = AppGroup("jobs", help="Operate jobsvc.")
token_cli = AppGroup("token", help="Create, list and revoke API tokens.")
jobs_cli.add_command(token_cli)


def _tokens() -> TokenStore:
    return state().services.tokens


def _scopes(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return format_scopes(parse_scopes(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not TOKEN_NAME_PATTERN.fullmatch(value):
        raise click.BadParameter("must be 1 to 64 letters, digits or _ . : -")
    return value


@token_cli.command("create")
@click.option("--name", required=True, callback=_name, help="A name to revoke the token by.")
# No default: what a token may do is a choice to make each time (least privilege).
@click.option(
    "--scopes",
    required=True,
    callback=_scopes,
    help=f"Comma-separated, some of {', '.join(SCOPES)} (admin may do everything).",
)
def create_token(name: str, scopes: str) -> None:
    """Create a token and print it once, alone on the last line."""
    token = new_token()
    try:
        _tokens().create(name, hash_token(token), scopes)
    except JobsvcError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created API token {name!r} with scopes {scopes}.")
    click.echo(
        "It is shown only this once; jobsvc keeps only its hash. Send it as "
        "`Authorization: Bearer <token>`:"
    )
    click.echo(token)


@token_cli.command("revoke")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke the live token NAME; it stops working at once."""
    if not _tokens().revoke(name):
        raise click.ClickException(f"no live token is named {name!r}")
    click.echo(f"Revoked API token {name!r}.")


@token_cli.command("list")
def list_tokens() -> None:
    """List the live tokens: name, scopes, creation time (never the tokens)."""
    for record in _tokens().list_live():
        scopes = format_scopes(record.scopes)
        click.echo(f"{record.name}\t{scopes}\t{record.created_at.isoformat()}")


PRUNE_BATCH = 1_000  # jobs deleted per transaction
PRUNABLE = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
RETENTION_SETTINGS = {status: f"JOBSVC_RETAIN_{status.value}_SECONDS" for status in PRUNABLE}
DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$")
DURATION_UNITS_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    match = DURATION.fullmatch(value.lower())
    if match is None:
        raise click.BadParameter("expected a number with an optional unit s, m, h, d or w (7d)")
    return float(match.group(1)) * DURATION_UNITS_SECONDS[match.group(2)]


@jobs_cli.command("prune")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([status.value for status in PRUNABLE], case_sensitive=False),
    help="Prune only jobs of this status (repeatable; default: DONE, FAILED and CANCELLED).",
)
@click.option(
    "--older-than",
    callback=_duration,
    help="Delete jobs finished longer ago than this (90s, 30m, 12h, 7d, 2w); default: each "
    "status's JOBSVC_RETAIN_*_SECONDS (a status kept forever is then skipped).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def prune(statuses: tuple[str, ...], older_than: float | None, dry_run: bool) -> None:
    """Delete finished jobs past their retention now, in batches, with a progress bar.

    Exits 0 when done (also when nothing was due), 1 if the database failed.
    """
    services = state().services
    chosen = [JobStatus(value.upper()) for value in statuses] or list(PRUNABLE)
    try:
        for status in chosen:
            kept = services.config[RETENTION_SETTINGS[status]] if older_than is None else older_than
            if older_than is None and not kept:
                click.echo(f"{status.value}: kept forever ({RETENTION_SETTINGS[status]}=0)")
                continue
            _prune_status(services.housekeeping, status, kept, dry_run)
    except DatabaseUnavailable as exc:
        raise click.ClickException(f"database unavailable: {exc.message}") from None


def _prune_status(store: HousekeepingStore, status: JobStatus, kept: float, dry_run: bool) -> None:
    total = store.count_prunable(status, kept)
    if dry_run or not total:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{status.value}: {verb} {total} jobs finished more than {kept:g}s ago")
        return
    deleted = 0
    with click.progressbar(length=total, label=f"Pruning {status.value}", file=None) as bar:
        while True:
            count = store.prune(status, kept, PRUNE_BATCH, wait=True) or 0
            deleted += count
            bar.update(count)
            if count < PRUNE_BATCH:
                break
    click.echo(f"{status.value}: deleted {deleted} jobs finished more than {kept:g}s ago")


def init_app(app: Flask) -> None:
    """Register the ``jobs`` commands on ``app``."""
    app.cli.add_command(jobs_cli)
