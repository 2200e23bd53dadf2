"""The dashboard in real headless Chromium, against the API under waitress and a real worker."""

from __future__ import annotations

import re
import time

import requests

from jobsvc.services import new_engine
from jobsvc.store import TokenStore
from jobsvc.store.queues import QUEUE_SETTINGS_SECONDS
from jobsvc.tokens import hash_token, new_token
from tests.support.browser import browser, chromium_path, screenshot
from tests.support.settings import slow_e2e_backends
from tests.support.waiting import poll_until, wait_until

TIMEOUT_MS = 30_000


def _token(database_url: str, name: str, scopes: str) -> str:
    token = new_token()
    engine = new_engine(database_url)
    try:
        TokenStore(engine).create(name, hash_token(token), scopes)
    finally:
        engine.dispose()
    return token


def _api_count(base_url: str, token: str, queue: str, status: str) -> int:
    response = requests.get(
        f"{base_url}/jobs",
        params={"queue": queue, "status": status, "limit": 500},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return len(response.json()["jobs"])


def _log_in(page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/dashboard/")
    assert "/dashboard/login" in page.url  # tokens exist: no session, no dashboard
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_selector("#queue-counts")


@slow_e2e_backends("sqlite")
def test_an_operator_logs_in_reads_the_overview_and_retries_a_failed_job(
    service, migrated_database_url, tmp_path
):
    chromium_path()  # skip before starting anything when there is no browser
    base_url = service.start_api()
    service.start_worker("--concurrency", "4")
    fixed = tmp_path / "fixed"
    done_ids = [
        service.post({"type": "test.echo", "queue": "mail", "payload": {"n": n}}) for n in range(3)
    ]
    failing = service.post(
        {
            "type": "test.fails_until_fixed",
            "queue": "reports",
            "max_attempts": 1,
            "payload": {"fixed": str(fixed)},
        }
    )
    service.wait_terminal([*done_ids, failing])
    admin = _token(migrated_database_url, "ops-admin", "admin,read")
    reader = _token(migrated_database_url, "ops-reader", "read")

    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        _log_in(page, base_url, admin)
        assert page.text_content("#viewer-name") == "ops-admin"
        cookie = next(c for c in page.context.cookies() if c["name"] == "jobsvc_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]

        # The overview's counts are the API's.
        for queue, status in [("mail", "DONE"), ("reports", "FAILED"), ("mail", "FAILED")]:
            cell = page.locator(f'tr[data-queue="{queue}"] a[data-status="{status}"]')
            assert int(cell.text_content()) == _api_count(base_url, admin, queue, status)
        page.wait_for_selector("#throughput-chart[data-drawn] canvas")
        assert int(page.text_content("#done-hour")) == 3
        assert int(page.text_content("#failed-hour")) == 1
        screenshot(page, tmp_path, "dashboard-overview")

        # The list, filtered as the API filters.
        page.click("header nav a:text-is('Jobs')")
        page.select_option("#filter-status", "FAILED")
        page.click("#apply-filters")
        page.wait_for_url(re.compile(r"status=FAILED"))
        rows = page.locator("#job-list tbody tr[data-job-id]")
        assert [int(rows.nth(i).get_attribute("data-job-id")) for i in range(rows.count())] == [
            failing
        ]
        screenshot(page, tmp_path, "dashboard-jobs")

        # The failed job's page: its error and traceback; retry asks first, then runs it.
        page.click(f'tr[data-job-id="{failing}"] a')
        assert page.text_content("#job-status") == "FAILED"
        assert "report service is down" in page.text_content("#last-error")
        assert "RuntimeError" in page.text_content("#traceback")
        screenshot(page, tmp_path, "dashboard-job-failed")
        fixed.write_text("yes")
        questions: list[str] = []

        def accept(dialog) -> None:
            questions.append(dialog.message)
            dialog.accept()

        page.on("dialog", accept)
        page.click("#retry")
        page.wait_for_selector("#notice")
        assert questions and f"Retry job {failing}?" in questions[0]
        # The page refreshes itself (htmx) while the job is PENDING or RUNNING.
        page.wait_for_selector('#job-status:text-is("DONE")')
        assert '"report": "sent"' in page.text_content("#result")
        screenshot(page, tmp_path, "dashboard-job-done")

        # Pausing a queue from the overview holds its new jobs; resuming lets them run.
        page.goto(f"{base_url}/dashboard/")
        page.click('button.queue-pause[data-queue="mail"]')
        page.wait_for_selector('tr[data-queue="mail"] td.queue-state[data-paused="yes"]')
        assert any("Pause queue mail?" in question for question in questions)
        # The bound under test: a worker re-reads paused queues at most this long after.
        time.sleep(QUEUE_SETTINGS_SECONDS + 0.5)
        auth = {"Authorization": f"Bearer {admin}"}
        held = requests.post(
            f"{base_url}/jobs",
            json={"type": "test.echo", "queue": "mail"},
            headers=auth,
            timeout=10,
        ).json()["id"]

        def status() -> str:
            return requests.get(f"{base_url}/jobs/{held}", headers=auth, timeout=10).json()[
                "status"
            ]

        assert not poll_until(lambda: status() != "PENDING", timeout=2.0), status()
        page.reload()  # the held job, shown waiting on the paused queue
        assert page.text_content('tr[data-queue="mail"] a[data-status="PENDING"]') == "1"
        screenshot(page, tmp_path, "dashboard-queue-paused")
        page.click('button.queue-resume[data-queue="mail"]')
        page.wait_for_selector('tr[data-queue="mail"] td.queue-state[data-paused="no"]')
        wait_until(lambda: status() == "DONE", timeout=30, message="the held job did not run")
        # A read-only token sees no buttons, and a forged POST with its CSRF token is refused.
        reading = chromium.new_context().new_page()
        reading.set_default_timeout(TIMEOUT_MS)
        _log_in(reading, base_url, reader)
        reading.goto(f"{base_url}/dashboard/jobs/{done_ids[0]}")
        assert reading.locator("#retry, #cancel").count() == 0
        csrf = reading.get_attribute('input[name="csrf_token"]', "value")
        refused = reading.request.post(
            f"{base_url}/dashboard/jobs/{done_ids[0]}/cancel", form={"csrf_token": csrf}
        )
        assert refused.status == 403
        assert "admin scope" in refused.text()

    wait_until(
        lambda: _api_count(base_url, admin, "reports", "DONE") == 1,
        timeout=10,
        message="the retried job is not DONE in the API",
    )
