"""Scenario 8: a Hypothesis state machine drives the store (enqueue, claim, heartbeat, complete,
fail, release, cancel, retry, lease expiry, rescue, clock advance) and checks after every step
that the database agrees with a model of the lifecycle and keeps its invariants."""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.engine import Engine

from jobsvc.errors import InvalidTransition
from jobsvc.models import Job
from jobsvc.retry import RetryPolicy
from jobsvc.store import Failed, JobStore, Lease, LeaseStore, NewJob, Released, Succeeded
from jobsvc.timestamps import db_now, db_now_plus

from .service import FULL, record, size

jobs_table = Job.__table__

BACKOFF_SECONDS = 1000.0  # every retry waits exactly this: readiness is then known to the model
LEASE_SECONDS = 60.0
CLOCK_STEP_SECONDS = 3 * BACKOFF_SECONDS  # past any backoff, delayed run_at and lease
MAX_EXAMPLES = size(40, 500)
STEPS = size(40, 80)
JOBS_MAX = 3  # few jobs, many steps: the same job is claimed, lost and claimed again often


class _LongestDelay(random.Random):
    """Full jitter's upper end, always: the model needs to know when a retry is ready."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _counted(rule_method: Callable[..., None]) -> Callable[..., None]:
    """Count each run of a rule, so the test can show every rule was exercised."""

    @functools.wraps(rule_method)
    def counting(self: LifecycleMachine, *args: object, **kwargs: object) -> None:
        LifecycleMachine.tally[rule_method.__name__] += 1
        rule_method(self, *args, **kwargs)

    return counting


@dataclass
class ModelJob:
    status: str
    attempts: int
    max_attempts: int
    ready: bool
    token: str | None = None
    expired: bool = False
    kept_token: str | None = None  # a cancelled attempt's lease, kept until its stop is confirmed
    kept_live: bool = False  # ... and not expired yet: a retry waits for it


def _shift_clock(engine: Engine) -> None:
    # Moving every stored time back is moving the database's clock forward.
    if engine.dialect.name == "sqlite":
        shift = f"- {CLOCK_STEP_SECONDS}"
    else:
        shift = f"- interval '{int(CLOCK_STEP_SECONDS)} seconds'"
    with engine.begin() as connection:
        connection.execute(
            text(
                f"UPDATE jobs SET run_at = run_at {shift}, "  # noqa: S608
                f"lease_expires_at = lease_expires_at {shift}"
            )
        )


class LifecycleMachine(RuleBasedStateMachine):
    engine: Engine  # set by the test before it runs the machine
    tally: Counter[str] = Counter()  # rule name -> runs, and "checks": invariant evaluations

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as connection:
            connection.execute(delete(jobs_table))
        self.jobs = JobStore(self.engine)
        self.leases = LeaseStore(
            self.engine, RetryPolicy(BACKOFF_SECONDS, BACKOFF_SECONDS, _LongestDelay())
        )
        self.model: dict[int, ModelJob] = {}
        self.issued: list[Lease] = []  # every lease ever claimed, live or not
        self.attempt_of: dict[Lease, int] = {}  # the attempt each lease was claimed for

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.model) < JOBS_MAX)
    @rule(max_attempts=st.integers(1, 3), delayed=st.booleans())
    @_counted
    def enqueue(self, max_attempts: int, delayed: bool) -> None:
        run_at = datetime.now(UTC) + timedelta(seconds=BACKOFF_SECONDS) if delayed else None
        (job_id,) = self.jobs.enqueue(
            [
                NewJob(
                    type="t",
                    payload={},
                    queue="default",
                    priority=0,
                    max_attempts=max_attempts,
                    run_at=run_at,
                )
            ]
        )
        self.model[job_id] = ModelJob("PENDING", 0, max_attempts, ready=not delayed)

    @rule(limit=st.integers(1, 3))
    @_counted
    def claim(self, limit: int) -> None:
        ready = {i for i, job in self.model.items() if job.status == "PENDING" and job.ready}
        claimed = self.leases.claim(None, limit, "model-worker", LEASE_SECONDS)
        assert {job.id for job in claimed} <= ready
        assert len(claimed) == min(limit, len(ready))
        for job in claimed:
            model = self.model[job.id]
            assert job.attempt == model.attempts + 1
            model.status, model.attempts, model.token = "RUNNING", job.attempt, job.lease_token
            model.expired, model.kept_token, model.kept_live = False, None, False
            self.issued.append(job.lease)
            self.attempt_of[job.lease] = job.attempt

    @precondition(lambda self: self.issued)
    @rule(data=st.data())
    @_counted
    def heartbeat(self, data: st.DataObject) -> None:
        lease = data.draw(st.sampled_from(self.issued))
        lost = self.leases.heartbeat([lease], LEASE_SECONDS)
        assert (lease.job_id in lost) == (not self._live(lease))
        if self._live(lease):
            self.model[lease.job_id].expired = False

    @precondition(lambda self: self.issued)
    @rule(data=st.data())
    @_counted
    def complete(self, data: st.DataObject) -> None:
        lease = data.draw(st.sampled_from(self.issued))
        live = self._live(lease)
        assert (self.leases.finish([Succeeded(lease, {"ok": True})]) == []) == live
        if live:
            self._settle(lease.job_id, "DONE")

    @precondition(lambda self: self.issued)
    @rule(data=st.data(), permanent=st.booleans())
    @_counted
    def fail(self, data: st.DataObject, permanent: bool) -> None:
        lease = data.draw(st.sampled_from(self.issued))
        model = self.model[lease.job_id]
        live = self._live(lease)
        # A worker reports the attempt it was leased, whatever happened to the row since.
        failure = Failed(
            lease,
            attempt=self.attempt_of[lease],
            max_attempts=model.max_attempts,
            message="boom",
            error_type="RuntimeError",
            permanent=permanent,
        )
        assert (self.leases.finish([failure]) == []) == live
        if live and (permanent or model.attempts >= model.max_attempts):
            self._settle(lease.job_id, "FAILED")
        elif live:
            self._settle(lease.job_id, "PENDING", ready=False)

    @precondition(lambda self: self.issued)
    @rule(data=st.data())
    @_counted
    def release(self, data: st.DataObject) -> None:
        lease = data.draw(st.sampled_from(self.issued))
        live = self._live(lease)
        assert (self.leases.finish([Released(lease)]) == []) == live
        if live:
            self._settle(lease.job_id, "PENDING", ready=True)
            self.model[lease.job_id].attempts -= 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    @_counted
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.model)))
        model = self.model[job_id]
        if model.status in ("PENDING", "RUNNING"):
            assert self.jobs.cancel(job_id).status == "CANCELLED"
            if model.status == "RUNNING":
                model.kept_token, model.kept_live = model.token, not model.expired
            self._settle(job_id, "CANCELLED")
        else:
            with pytest.raises(InvalidTransition):
                self.jobs.cancel(job_id)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    @_counted
    def retry(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.model)))
        model = self.model[job_id]
        if model.status in ("FAILED", "CANCELLED"):
            assert self.jobs.retry(job_id).status == "PENDING"
            # Not before the cancelled attempt's lease expires, unless its stop was confirmed.
            self._settle(job_id, "PENDING", ready=not (model.kept_token and model.kept_live))
            model.attempts = 0
        else:
            with pytest.raises(InvalidTransition):
                self.jobs.retry(job_id)

    @precondition(lambda self: any(j.status == "RUNNING" for j in self.model.values()))
    @rule(data=st.data())
    @_counted
    def expire_lease(self, data: st.DataObject) -> None:
        running = sorted(i for i, job in self.model.items() if job.status == "RUNNING")
        job_id = data.draw(st.sampled_from(running))
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id)
                .values(lease_expires_at=db_now_plus(bindparam("s", -1.0)))
            )
        self.model[job_id].expired = True

    @rule()
    @_counted
    def rescue(self) -> None:
        expired = {i for i, job in self.model.items() if job.status == "RUNNING" and job.expired}
        rescued = self.leases.rescue_expired()
        assert {r.job_id for r in rescued} == expired
        for job_id in expired:
            model = self.model[job_id]
            if model.attempts >= model.max_attempts:
                self._settle(job_id, "FAILED")
            else:
                self._settle(job_id, "PENDING", ready=False)

    # No precondition and one draw whatever the state: which attempts are stopping depends on
    # the database clock (which backoffs were due at a claim), and a rule enabled or drawing only
    # in some replays of the same choices makes Hypothesis report a flaky strategy.
    @rule(pick=st.integers(0, 2**16))
    def confirm_stop(self, pick: int) -> None:
        stopping = sorted(i for i, job in self.model.items() if job.kept_token)
        if not stopping:
            return
        LifecycleMachine.tally["confirm_stop"] += 1
        job_id = stopping[pick % len(stopping)]
        model = self.model[job_id]
        assert self.leases.confirm_stopped(Lease(job_id, model.kept_token))
        assert not self.leases.confirm_stopped(Lease(job_id, model.kept_token))  # once only
        model.kept_token, model.kept_live = None, False
        if model.status == "PENDING":
            model.ready = True

    @rule()
    @_counted
    def advance_clock(self) -> None:
        _shift_clock(self.engine)
        for job in self.model.values():
            job.ready = True  # every delay and backoff is shorter than the step
            job.expired = job.status == "RUNNING"  # and so is every lease
            job.kept_live = False

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        LifecycleMachine.tally["checks"] += 1
        columns = jobs_table.c
        query = select(
            columns.id,
            columns.status,
            columns.attempts,
            columns.max_attempts,
            columns.lease_token,
            columns.lease_expires_at,
            columns.finished_at,
            (columns.run_at <= db_now()).label("ready"),
        )
        with self.engine.connect() as connection:
            rows = {row.id: row for row in connection.execute(query)}
        assert set(rows) == set(self.model)
        for job_id, row in rows.items():
            model = self.model[job_id]
            assert (row.status, row.attempts) == (model.status, model.attempts), job_id
            assert 0 <= row.attempts <= row.max_attempts
            # A cancelled attempt's lease stays until its stop is confirmed (or a claim).
            expected_token = model.token if row.status == "RUNNING" else model.kept_token
            assert row.lease_token == expected_token, job_id
            assert (row.lease_expires_at is not None) == (expected_token is not None), job_id
            if row.status == "PENDING":
                assert bool(row.ready) == model.ready, job_id
            assert (row.finished_at is not None) == (row.status in ("DONE", "FAILED", "CANCELLED"))

    # -- helpers -------------------------------------------------------------------------

    def _live(self, lease: Lease) -> bool:
        model = self.model[lease.job_id]
        return model.status == "RUNNING" and model.token == lease.token

    def _settle(self, job_id: int, status: str, *, ready: bool = False) -> None:
        model = self.model[job_id]
        model.status, model.token, model.expired, model.ready = status, None, False, ready


RULES = {
    "enqueue",
    "claim",
    "heartbeat",
    "complete",
    "fail",
    "release",
    "cancel",
    "retry",
    "confirm_stop",
    "expire_lease",
    "rescue",
    "advance_clock",
}


def test_store_keeps_lifecycle_invariants_under_any_sequence(engine: Engine) -> None:
    LifecycleMachine.engine = engine
    LifecycleMachine.tally = Counter()
    name = f"model[{engine.dialect.name}]"
    violations = 0
    try:
        run_state_machine_as_test(
            LifecycleMachine,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    except Exception:
        violations = 1  # Hypothesis stops at the first sequence that breaks an invariant
        raise
    finally:
        tally = LifecycleMachine.tally
        print(
            f"[faults] {name}: examples={MAX_EXAMPLES} steps<={STEPS} "
            f"checks={tally['checks']} violations={violations}"
        )
        record(
            name, examples=MAX_EXAMPLES, steps=STEPS, checks=tally["checks"], violations=violations
        )
    # A run that never compared the database with the model proves little; at full size every
    # rule must have run as well (the small size's 40 examples may miss a rare one, such as
    # confirm_stop, which needs a cancelled attempt still holding its token).
    if FULL:
        assert {rule for rule in RULES if tally[rule] == 0} == set()
    assert tally["checks"] >= MAX_EXAMPLES
