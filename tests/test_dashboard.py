"""The dashboard's access rules, actions and figures, through the Flask test client."""

from __future__ import annotations

import re

import pytest

from jobsvc.models import JobStatus
from jobsvc.store import NewJob, Succeeded, outcomes
from tests.support.tokens import make_token
from tests.support.waiting import wait_until

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _job(**fields) -> NewJob:
    return NewJob(
        **{
            "type": "t.x",
            "queue": "default",
            "payload": {"k": 1},
            "max_attempts": 3,
            "priority": 0,
            **fields,
        }
    )


def _csrf(page: bytes) -> str:
    return CSRF.search(page.decode()).group(1)


def _log_in(client, token: str):
    login = client.get("/dashboard/login", environ_base=REMOTE)
    return client.post(
        "/dashboard/login",
        data={"token": token, "csrf_token": _csrf(login.data)},
        environ_base=REMOTE,
    )


def test_without_tokens_loopback_may_act_and_others_are_refused(client, job_store):
    (job_id,) = job_store.enqueue([_job()])
    page = client.get(f"/dashboard/jobs/{job_id}")
    assert page.status_code == 200 and b'id="cancel"' in page.data
    assert client.get("/dashboard/", environ_base=REMOTE).status_code == 401
    assert client.get("/docs", environ_base=REMOTE).status_code == 401
    assert client.get("/docs").status_code == 200


def test_a_post_without_the_csrf_token_is_refused(client, job_store):
    (job_id,) = job_store.enqueue([_job()])
    page = client.get(f"/dashboard/jobs/{job_id}")
    assert client.post(f"/dashboard/jobs/{job_id}/cancel").status_code == 403
    assert (
        client.post(f"/dashboard/jobs/{job_id}/cancel", data={"csrf_token": "x"}).status_code == 403
    )
    assert job_store.get(job_id).status == JobStatus.PENDING
    done = client.post(f"/dashboard/jobs/{job_id}/cancel", data={"csrf_token": _csrf(page.data)})
    assert done.status_code == 302
    assert job_store.get(job_id).status == JobStatus.CANCELLED


def test_login_sets_a_strict_httponly_cookie_secure_over_https(app, client):
    token = make_token(app, "ops", "read")
    assert client.get("/dashboard/", environ_base=REMOTE).status_code == 302  # to the login
    answer = _log_in(client, token)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/dashboard/")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert token not in cookie
    assert client.get("/dashboard/", environ_base=REMOTE).status_code == 200
    secure = app.test_client()
    login = secure.get("/dashboard/login", base_url="https://jobs.example", environ_base=REMOTE)
    answer = secure.post(
        "/dashboard/login",
        base_url="https://jobs.example",
        data={"token": token, "csrf_token": _csrf(login.data)},
        environ_base=REMOTE,
    )
    assert "Secure" in answer.headers["Set-Cookie"]


def test_a_wrong_or_unscoped_token_does_not_log_in(app, client):
    make_token(app, "ops", "read")
    enqueuer = make_token(app, "producer", "enqueue")
    assert _log_in(client, "jobsvc_wrong").status_code == 401
    refused = _log_in(client, enqueuer)
    assert refused.status_code == 401 and b"lacks the read scope" in refused.data


def test_a_read_only_token_sees_no_buttons_and_is_refused_them(app, client, job_store):
    (job_id,) = job_store.enqueue([_job()])
    _log_in(client, make_token(app, "viewer", "read"))
    page = client.get(f"/dashboard/jobs/{job_id}", environ_base=REMOTE)
    assert page.status_code == 200 and b'id="cancel"' not in page.data
    refused = client.post(
        f"/dashboard/jobs/{job_id}/cancel",
        data={"csrf_token": _csrf(page.data)},
        environ_base=REMOTE,
    )
    assert refused.status_code == 403
    assert job_store.get(job_id).status == JobStatus.PENDING


def test_revoking_the_token_ends_its_session(app, client):
    _log_in(client, make_token(app, "ops", "read,admin"))
    assert client.get("/dashboard/", environ_base=REMOTE).status_code == 200
    app.extensions["jobsvc"].services.tokens.revoke("ops")
    make_token(app, "other", "read")  # tokens still exist: no open mode
    assert client.get("/dashboard/", environ_base=REMOTE).status_code == 302
    polled = client.get("/dashboard/overview", headers={"HX-Request": "true"}, environ_base=REMOTE)
    assert polled.status_code == 401 and "/dashboard/login" in polled.headers["HX-Redirect"]


def test_the_overview_counts_queues_ready_age_and_the_last_hour(client, job_store, lease_store):
    job_store.enqueue([_job(queue="mail"), _job(queue="mail"), _job(queue="sms")])
    (claimed,) = lease_store.claim(["sms"], 1, "w1", 30.0)
    lease_store.finish([Succeeded(claimed.lease, {"ok": True})])
    page = client.get("/dashboard/overview").data.decode()
    assert re.search(r'data-queue="mail".*?data-status="PENDING"[^>]*>2<', page, re.S)
    assert re.search(r'data-queue="sms".*?data-status="DONE"[^>]*>1<', page, re.S)
    assert re.search(r'id="done-hour">1<', page)
    assert "none ready" not in page  # mail's two jobs are ready


def test_the_job_list_filters_and_pages_like_the_api(client, job_store):
    ids = job_store.enqueue([_job(queue="a") for _ in range(5)] + [_job(queue="b")])
    first = client.get("/dashboard/jobs?queue=a&limit=2").data.decode()
    shown = [int(i) for i in re.findall(r'data-job-id="(\d+)"', first)]
    assert shown == sorted(ids[:5], reverse=True)[:2]
    next_url = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).data.decode()
    assert [int(i) for i in re.findall(r'data-job-id="(\d+)"', second)] == sorted(ids[:5])[1:3][
        ::-1
    ]
    bad = client.get("/dashboard/jobs?status=NOPE")
    assert bad.status_code == 422 and b"status" in bad.data


def test_a_missing_job_is_a_404_page(client):
    assert client.get("/dashboard/jobs/999999").status_code == 404


@pytest.mark.parametrize(
    "path", ["/dashboard/static/htmx.min.js", "/docs/swagger-ui/swagger-ui-bundle.js"]
)
def test_assets_are_served_from_the_package(client, path):
    with client.get(path) as response:
        assert response.status_code == 200


def test_the_docs_page_reads_the_apis_openapi_document(client):
    page = client.get("/docs").data.decode()
    assert "swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page  # nothing from another site
    assert client.get("/docs/openapi.json").json == client.get("/openapi.json").json


def test_a_queue_is_paused_and_resumed_from_the_overview(client, job_store, lease_store):
    job_store.enqueue([_job(queue="mail")])
    page = client.get("/dashboard/")
    assert b'class="queue-pause" data-queue="mail"' in page.data
    paused = client.post("/dashboard/queues/mail/pause", data={"csrf_token": _csrf(page.data)})
    assert paused.status_code == 302
    assert lease_store.claim(["mail"], 1, "w1", 30.0) == []  # a paused queue's job waits
    page = client.get("/dashboard/overview").data.decode()
    assert re.search(r'data-queue="mail".*?data-paused="yes"', page, re.S)
    client.post("/dashboard/queues/mail/resume", data={"csrf_token": _csrf(page.encode())})
    # Workers re-read paused queues at most a second later (QueueLimitsCache).
    wait_until(lambda: lease_store.claim(["mail"], 1, "w1", 30.0), timeout=10)


def test_failed_jobs_are_retried_in_bulk_by_filter_and_attempts_are_shown(
    client, job_store, lease_store
):
    ids = job_store.enqueue([_job(queue="mail", max_attempts=1), _job(queue="sms", max_attempts=1)])
    for claimed in lease_store.claim(["mail", "sms"], 2, "w1", 30.0):
        failure = outcomes.failed(
            claimed, RuntimeError("smtp down"), permanent=False, traceback_limit=5
        )
        lease_store.finish([failure])
    assert {job_store.get(i).status for i in ids} == {JobStatus.FAILED}
    job_page = client.get(f"/dashboard/jobs/{ids[0]}").data.decode()
    assert re.search(r'id="attempts".*?failed.*?smtp down', job_page, re.S)
    page = client.get("/dashboard/jobs?queue=mail")
    done = client.post(
        "/dashboard/jobs/retry-failed", data={"csrf_token": _csrf(page.data), "queue": "mail"}
    )
    assert done.status_code == 302
    assert job_store.get(ids[0]).status == JobStatus.PENDING
    assert job_store.get(ids[1]).status == JobStatus.FAILED  # another queue: not selected
