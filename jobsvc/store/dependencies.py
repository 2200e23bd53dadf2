"""Job dependencies (``depends_on``): the statements that keep children waiting, then free them.

A child names its parents at enqueue; each edge is a ``job_dependencies`` row, and the child's
``waiting_count`` counts its parents not DONE yet. While it is above 0 the child is outside the
ready indexes, so the claim never sees it. Every step here runs inside the transaction that
changes the parent (its completion, its final failure, its cancel), so no parent ends without
its children hearing of it.

Races on PostgreSQL (READ COMMITTED) are closed by the parent's row lock: an enqueue or a retry
takes it with ``lock_parents`` (which also marks the parent ``has_dependents``), and an outcome
takes it by updating the parent. Whichever comes second waits, then reads the first's commit:
an enqueue sees the parent's final status; a completion, whose next statement takes a fresh
snapshot, sees the new child's edges. The hot completion statement skips parents
(``has_dependents``) and the re-check of its WHERE after the wait sees the mark, so a parent
always ends through ``LeaseStore``'s dependency steps.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)

from ..models import Job, JobDependency, JobStatus
from ..timestamps import db_now
from .dialects import Dialect
from .execute import Transaction
from .sql import PENDING

jobs = Job.__table__
edges = JobDependency.__table__

DEPENDENCY_FAILED = "DependencyFailed"  # error_type of a job cancelled because a parent failed
ENDED_BADLY = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
_ID_COLUMNS = (("id", BigInteger()),)
_EDGE_COLUMNS = (("child_id", BigInteger()), ("parent_id", BigInteger()))


def ids_parameter(ids: Iterable[int]) -> str:
    """Return ``ids`` as the JSON batch the statements below unpack."""
    return json.dumps([{"id": job_id} for job_id in ids])


def _ids(dialect: Dialect, name: str = "ids") -> Any:
    rows = dialect.json_rows(name, _ID_COLUMNS)
    return select(rows.columns["id"]).select_from(rows.source)


def lock_parents(
    transaction: Transaction, dialect: Dialect, parent_ids: Collection[int]
) -> dict[int, JobStatus]:
    """Mark ``parent_ids`` as having dependents, under their row locks; return their statuses.

    Ids that name no job are absent from the answer. The locks are taken in id order, so two
    enqueues naming the same parents cannot deadlock each other.
    """
    if not parent_ids:
        return {}
    in_order = (
        select(jobs.c.id)
        .where(jobs.c.id.in_(_ids(dialect).scalar_subquery()))
        .order_by(jobs.c.id)
        .with_for_update()
    )
    statement = (
        update(jobs)
        .where(jobs.c.id.in_(in_order.scalar_subquery()))
        .values(has_dependents=true())
        .returning(jobs.c.id, jobs.c.status)
    )
    rows = transaction.execute(statement, {"ids": ids_parameter(sorted(parent_ids))})
    return {row.id: JobStatus(row.status) for row in rows}


def add_edges(transaction: Transaction, dialect: Dialect, pairs: Sequence[tuple[int, int]]) -> None:
    """Store the edges ``(child_id, parent_id)`` in one statement."""
    if not pairs:
        return
    rows = dialect.json_rows("edges", _EDGE_COLUMNS)
    statement = insert(edges).from_select(
        ["child_id", "parent_id"],
        select(rows.columns["child_id"], rows.columns["parent_id"]).select_from(rows.source),
    )
    batch = [{"child_id": child, "parent_id": parent} for child, parent in pairs]
    transaction.execute(statement, {"edges": json.dumps(batch)})


def parents_of(transaction: Transaction, child_id: int) -> list[int]:
    """Return the ids ``child_id`` depends on."""
    query = select(edges.c.parent_id).where(edges.c.child_id == child_id)
    return sorted(row[0] for row in transaction.execute(query))


def unblock_children(
    transaction: Transaction, dialect: Dialect, parent_ids: Collection[int]
) -> None:
    """Count ``parent_ids`` (just DONE) off their children; wake workers for the ready ones."""
    if not parent_ids:
        return
    finished = (
        select(edges.c.child_id, func.count().label("parents"))
        .where(edges.c.parent_id.in_(_ids(dialect).scalar_subquery()))
        .group_by(edges.c.child_id)
        .subquery("finished")
    )
    statement = (
        update(jobs)
        .where(
            jobs.c.id == finished.c.child_id,
            jobs.c.status == PENDING,
            jobs.c.waiting_count > literal_column("0"),
        )
        .values(waiting_count=jobs.c.waiting_count - finished.c.parents)
        .returning(jobs.c.queue, jobs.c.waiting_count)
    )
    rows = transaction.execute(statement, {"ids": ids_parameter(sorted(parent_ids))})
    dialect.notify(transaction, {row.queue for row in rows if row.waiting_count == 0})


def cancel_dependents(
    transaction: Transaction, dialect: Dialect, root_ids: Collection[int], ended: JobStatus
) -> list[int]:
    """Cancel every waiting descendant of ``root_ids`` (which ended ``ended``); return their ids.

    Each one's ``last_error`` names the failed job it (transitively) depends on.
    """
    if not root_ids:
        return []
    doomed = (
        select(edges.c.child_id.label("id"), edges.c.parent_id.label("root"))
        .where(edges.c.parent_id.in_(_ids(dialect).scalar_subquery()))
        .cte("doomed", recursive=True)
    )
    below = edges.alias("below")
    doomed = doomed.union(
        select(below.c.child_id, doomed.c.root).where(below.c.parent_id == doomed.c.id)
    )
    root = select(func.min(doomed.c.root)).where(doomed.c.id == jobs.c.id).scalar_subquery()
    reason = (
        literal("cancelled: job ")
        + cast(root, String)
        + literal(", which it depends on, ended ")
        + bindparam("ended", ended.value, type_=String)
    )
    statement = (
        update(jobs)
        .where(jobs.c.id.in_(select(doomed.c.id)), jobs.c.status == PENDING)
        .values(
            status=JobStatus.CANCELLED,
            last_error=reason,
            error_type=DEPENDENCY_FAILED,
            error_traceback=None,
            finished_at=db_now(),
            updated_at=db_now(),
        )
        .returning(jobs.c.id)
    )
    rows = transaction.execute(statement, {"ids": ids_parameter(sorted(root_ids))})
    return sorted(row[0] for row in rows)


def waiting_on(transaction: Transaction, child_ids: Collection[int]) -> dict[int, tuple[int, ...]]:
    """Return, for each of ``child_ids``, the ids of its parents that are not DONE yet."""
    if not child_ids:
        return {}
    parent = jobs.alias("parent")
    query = (
        select(edges.c.child_id, edges.c.parent_id)
        .join(parent, parent.c.id == edges.c.parent_id)
        .where(edges.c.child_id.in_(sorted(child_ids)), parent.c.status != JobStatus.DONE)
        .order_by(edges.c.child_id, edges.c.parent_id)
    )
    found: dict[int, list[int]] = {}
    for child_id, parent_id in transaction.execute(query):
        found.setdefault(child_id, []).append(parent_id)
    return {child_id: tuple(parents) for child_id, parents in found.items()}
