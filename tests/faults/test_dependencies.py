"""Dependencies with real workers: a long chain runs in order, a wide fan-in runs its child last,
and a parent that fails (raised, or timed out) cancels what waits on it, which never runs.

Small sizes in ``make test``; ``JOBSVC_FAULTS_SCALE=full`` runs the chain of 1,000 and the
fan-in of 1,000 parents (10 groups of 100, the most one job may name, under one child).
"""

from __future__ import annotations

from typing import Any

import requests

from tests.support.settings import slow_e2e_backends

from .service import FaultService, size

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

CHAIN_LENGTH = size(20, 1000)
FAN_GROUPS = size(2, 10)
FAN_GROUP_SIZE = size(10, 100)
WORKERS = size(1, 2)
SLOTS = "4"
SETTLE_TIMEOUT_SECONDS = size(120, 600)
ECHO = {"type": "test.echo"}


def _runs(faulty: FaultService, event: str) -> dict[int, float]:
    return {e["job_id"]: e["t"] for e in faulty.executions() if e["event"] == event}


def _start_workers(faulty: FaultService) -> None:
    for _ in range(WORKERS):
        faulty.start_worker("--concurrency", SLOTS)


def _show(faulty: FaultService, job_id: int) -> dict[str, Any]:
    return requests.get(f"{faulty.base_url}/jobs/{job_id}", timeout=10).json()


def test_a_chain_runs_in_order_and_drains(faulty: FaultService) -> None:
    faulty.start_api()
    chain = [faulty.post(ECHO)]
    for _ in range(CHAIN_LENGTH - 1):
        chain.append(faulty.post({**ECHO, "depends_on": [chain[-1]]}))
    assert _show(faulty, chain[-1])["waiting_on"] == [chain[-2]]
    _start_workers(faulty)
    faulty.wait_settled(SETTLE_TIMEOUT_SECONDS)

    statuses = faulty.statuses()
    assert {statuses[job_id] for job_id in chain} == {"DONE"}
    starts, ends = _runs(faulty, "start"), _runs(faulty, "end")
    for parent, child in zip(chain, chain[1:], strict=False):
        assert starts[child] >= ends[parent], (parent, child)
    faulty.check("dependency_chain", length=CHAIN_LENGTH)


def test_a_fan_in_runs_its_child_after_every_parent(faulty: FaultService) -> None:
    faulty.start_api()
    gatherers = []
    for _ in range(FAN_GROUPS):
        parents = faulty.enqueue([ECHO] * FAN_GROUP_SIZE)
        gatherers.append(faulty.post({**ECHO, "depends_on": parents}))
    child = faulty.post({**ECHO, "depends_on": gatherers})
    assert _show(faulty, child)["waiting_on"] == gatherers
    _start_workers(faulty)
    faulty.wait_settled(SETTLE_TIMEOUT_SECONDS)

    statuses = faulty.statuses()
    assert {statuses[job_id] for job_id in faulty.accepted} == {"DONE"}
    starts, ends = _runs(faulty, "start"), _runs(faulty, "end")
    others = [job_id for job_id in faulty.accepted if job_id != child]
    assert starts[child] >= max(ends[job_id] for job_id in others)
    faulty.check("dependency_fan_in", parents=FAN_GROUPS * FAN_GROUP_SIZE)


def test_failed_parents_cancel_their_dependents_with_the_reason(faulty: FaultService) -> None:
    faulty.start_api()
    raises = faulty.post({"type": "test.always_fails", "max_attempts": 1})
    hangs = faulty.post(
        {
            "type": "test.sleep",
            "payload": {"seconds": 30},
            "max_attempts": 1,
            "timeout_seconds": 0.3,
        }
    )
    fine = faulty.post(ECHO)
    child = faulty.post({**ECHO, "depends_on": [fine, raises]})
    grandchild = faulty.post({**ECHO, "depends_on": [child]})
    after_timeout = faulty.post({**ECHO, "depends_on": [hangs]})
    _start_workers(faulty)
    faulty.wait_settled(SETTLE_TIMEOUT_SECONDS)

    assert _show(faulty, fine)["status"] == "DONE"
    for job_id, root in ((child, raises), (grandchild, raises), (after_timeout, hangs)):
        shown = _show(faulty, job_id)
        assert shown["status"] == "CANCELLED", shown
        assert shown["error_type"] == "DependencyFailed"
        assert shown["last_error"] == f"cancelled: job {root}, which it depends on, ended FAILED"
    assert not {child, grandchild, after_timeout} & set(_runs(faulty, "start"))
    faulty.check("dependency_failure")
