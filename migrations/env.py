"""Alembic environment for jobsvc.

Run two ways: by Flask-Migrate (``flask db ...``) inside the app's context, or by
``jobsvc.schema.upgrade`` at start, which passes a connection in ``config.attributes``
and needs no Flask app (the worker has none).
"""

from __future__ import annotations

import logging

from alembic import context

logger = logging.getLogger("alembic.env")
config = context.config


def _migrate():
    from flask import current_app  # only Flask-Migrate's runs have an app

    return current_app.extensions["migrate"]


def _target_db():
    return _migrate().db


def _skip_empty_autogenerate(context_, revision, directives) -> None:
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline() -> None:
    """Emit the migrations as SQL for the configured URL."""
    url = _target_db().engine.url.render_as_string(hide_password=False)
    context.configure(
        url=url, target_metadata=_target_db().metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply the migrations on a connection of the app's engine."""
    # No logging.config.fileConfig here: it would silence the loggers of the process that
    # auto-migrates (the API or a worker).
    conf_args = dict(_migrate().configure_args)
    conf_args.setdefault("process_revision_directives", _skip_empty_autogenerate)
    conf_args.setdefault("render_as_batch", True)  # SQLite alters tables by copying them
    with _target_db().engine.connect() as connection:
        context.configure(connection=connection, target_metadata=_target_db().metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_on_connection(connection) -> None:
    """Apply the migrations on the connection ``jobsvc.schema.upgrade`` passed."""
    from jobsvc.models import Base

    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if config.attributes.get("connection") is not None:
    run_migrations_on_connection(config.attributes["connection"])
elif context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
