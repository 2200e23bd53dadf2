"""``flask --app jobsvc jobs ...``: operator commands. ``token`` lives here; the job verbs
(enqueue, show, list, retry, cancel, stats) in ``cli_jobs``; each helper's verbs register below."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from . import cli_jobs
from .api.state import state
from .errors import JobsvcError
from .store import TokenStore
from .tokens import SCOPES, TOKEN_NAME_PATTERN, format_scopes, hash_token, new_token, parse_scopes

jobs_cli = AppGroup("jobs", help="Operate jobsvc.", epilog=cli_jobs.EXIT_CODES_HELP)
token_cli = AppGroup("token", help="Create, list and revoke API tokens.")
jobs_cli.add_command(token_cli)
cli_jobs.register(jobs_cli)  # enqueue, show, list, retry, cancel, stats
# The queues and prune helpers register their verbs here the same way.


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


def init_app(app: Flask) -> None:
    """Register the ``jobs`` commands on ``app``."""
    app.cli.add_command(jobs_cli)
