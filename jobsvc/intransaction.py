"""``jobsvc.enqueue``: a job stored in the caller's own SQLAlchemy transaction.

For applications that share jobsvc's database: the job commits with the caller's own rows, or
rolls back with them. It is validated as ``POST /jobs`` validates (the same 422 messages, as
``ValidationFailed``), takes the same defaults from the same settings, and wakes workers the
same way: on PostgreSQL the insert trigger's NOTIFY, which is delivered at commit and never on
rollback; on SQLite idle workers see the commit itself (PRAGMA data_version).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from . import config as settings
from .api.quickload import quick_load
from .api.schemas import CreateJobSchema
from .callbacks import CallbackPolicy, check_callback_url
from .errors import ValidationFailed
from .newjobs import new_job
from .registry import load_handler_modules
from .store import Enqueued, JobStore
from .store.execute import Transaction

_STORES: weakref.WeakKeyDictionary[Engine, JobStore] = weakref.WeakKeyDictionary()
_STORES_GUARD = threading.Lock()


@lru_cache(maxsize=1)
def _environment_settings() -> Mapping[str, Any]:
    return settings.load(settings.instance_path())


@lru_cache(maxsize=8)
def _schema(handlers: tuple[str, ...]) -> tuple[CreateJobSchema, frozenset[str] | None]:
    # With JOBSVC_HANDLERS set the API refuses types no handler serves; so does this.
    known = load_handler_modules(handlers) if handlers else None
    return CreateJobSchema(known_types=known), known


def _store(engine: Engine) -> JobStore:
    with _STORES_GUARD:
        store = _STORES.get(engine)
        if store is None:
            store = _STORES[engine] = JobStore(engine)
        return store


def enqueue(
    connection: Connection | Session,
    job_type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    **options: Any,
) -> Enqueued:
    """Store a job in ``connection``'s transaction (a Connection or a Session); it commits or
    rolls back with the caller's. ``options`` are POST /jobs's fields (queue, priority,
    run_at, delay_seconds, max_attempts, timeout_seconds, unique_key, depends_on,
    callback_url, checked by the same SSRF rules); ``config`` overrides the settings read
    from the environment. Raises ``ValidationFailed`` (``.errors`` by field) as POST /jobs
    answers 422."""
    conn = connection.connection() if isinstance(connection, Session) else connection
    config = _environment_settings() if config is None else {**_environment_settings(), **config}
    schema, known = _schema(tuple(config["JOBSVC_HANDLERS"]))
    item = {"type": job_type, "payload": {} if payload is None else dict(payload), **options}
    fields = quick_load(item, known)
    if fields is None:
        try:
            fields = schema.load(item)
        except ValidationError as exc:
            raise ValidationFailed(exc.normalized_messages()) from None
    if fields.get("callback_url") is not None:
        check_callback_url(fields["callback_url"], config, CallbackPolicy.from_config(config))
    (enqueued,) = _store(conn.engine).enqueue_in(Transaction(conn), [new_job(fields, config)])
    return enqueued
