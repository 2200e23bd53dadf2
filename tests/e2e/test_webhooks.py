"""End to end: completion webhooks from real worker processes to a real loopback receiver."""

from __future__ import annotations

import signal

import requests
from standardwebhooks.webhooks import Webhook

from tests.support.receiver import TEST_WEBHOOK_SECRET, receiving
from tests.support.settings import slow_e2e_backends
from tests.support.waiting import wait_until

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

HOOK_SETTINGS = {
    "JOBSVC_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
    "JOBSVC_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "JOBSVC_WEBHOOK_TIMEOUT_SECONDS": "1",
}


def _start(service) -> None:
    service.env.update(HOOK_SETTINGS)
    service.start_api()


def _webhook(service, job_id: int) -> dict | None:
    return service.get(job_id)["webhook"]


def test_done_failed_and_cancelled_jobs_post_verifiable_final_json(service):
    with receiving() as receiver:
        _start(service)
        service.start_worker()
        done = service.post({"type": "test.echo", "callback_url": receiver.url("/done")})
        failed = service.post(
            {
                "type": "test.always_fails",
                "max_attempts": 1,
                "callback_url": receiver.url("/failed"),
            }
        )
        later = {"run_at": "2999-01-01T00:00:00+00:00"}
        cancelled = service.post(
            {"type": "test.echo", "callback_url": receiver.url("/cancelled"), **later}
        )
        response = requests.post(f"{service.base_url}/jobs/{cancelled}/cancel", timeout=10)
        assert response.status_code == 200
        ids = {"/done": done, "/failed": failed, "/cancelled": cancelled}
        wait_until(
            lambda: all(receiver.to(path) for path in ids),
            timeout=30,
            message="not every webhook arrived",
        )
        verifier = Webhook(TEST_WEBHOOK_SECRET)
        for path, status in (("/done", "DONE"), ("/failed", "FAILED"), ("/cancelled", "CANCELLED")):
            (posted,) = receiver.to(path)
            document = verifier.verify(posted.body, posted.headers)
            assert document["id"] == ids[path] and document["status"] == status
        wait_until(
            lambda: all(
                (_webhook(service, job_id) or {}).get("status") == "delivered"
                for job_id in ids.values()
            ),
            message="the jobs do not show their webhooks delivered",
        )


def test_a_worker_killed_mid_delivery_loses_no_webhook(service):
    with receiving() as receiver:
        receiver.answer("/hook", "hang")  # the first try never gets an answer
        _start(service)
        first = service.start_worker()
        job_id = service.post({"type": "test.echo", "callback_url": receiver.url()})
        wait_until(lambda: receiver.to("/hook"), timeout=30, message="no delivery was tried")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert _webhook(service, job_id)["status"] == "pending"
        service.start_worker()
        wait_until(
            lambda: len(receiver.to("/hook")) >= 2, timeout=30, message="it was not tried again"
        )
        tries = receiver.to("/hook")
        assert tries[0].headers["webhook-id"] == tries[1].headers["webhook-id"]
        Webhook(TEST_WEBHOOK_SECRET).verify(tries[1].body, tries[1].headers)
        wait_until(
            lambda: (_webhook(service, job_id) or {}).get("status") == "delivered",
            message="the job does not show its webhook delivered",
        )
        webhook = _webhook(service, job_id)
        assert webhook["attempts"] == 2 and webhook["delivered_at"]
