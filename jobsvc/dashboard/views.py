"""The dashboard's pages and actions; each reads or writes through the API's own stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import ValidationError

from ..api.jobs import _parse_job_id as parse_job_id
from ..api.problems import status_of
from ..api.schemas import ListQuerySchema
from ..api.state import state
from ..errors import JobsvcError, ValidationFailed
from ..models import JobStatus
from ..store import JobRecord, JobSelection
from . import access
from .access import NeedsLogin, Refused, Viewer

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

CHART_MINUTES = 60
POLL_SECONDS = 5  # the overview's refresh
JOB_POLL_SECONDS = 2  # a PENDING or RUNNING job's page: what the operator waits on
# What an action tells the next page, by code: nothing from the query string is shown as is.
NOTICES = {
    "retried": "Sent back to PENDING: a worker will run it again.",
    "cancelled": "Cancelled.",
    "logged-out": "Logged out.",
    "paused": "Paused: its jobs wait; running ones finish.",
    "resumed": "Resumed.",
    "bulk-retried": "Failed jobs sent back to PENDING.",
}
_list_query = ListQuerySchema()
# Pages whose content security policy lets nothing in from elsewhere: no inline script either.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@bp.before_request
def _identify() -> Response | None:
    if request.endpoint == "dashboard.static":
        return None
    login_page = request.endpoint == "dashboard.login"
    try:
        g.viewer = access.identify(login_page=login_page)
    except NeedsLogin as exc:
        return _to_login(exc.reason)
    if request.method == "POST":
        session = access.read_session()
        expected = g.get("viewer").csrf if g.get("viewer") else (session.csrf if session else "")
        access.check_csrf(expected or access.new_csrf())  # no session: nothing matches
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    if request.endpoint != "dashboard.static":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
    to_write = g.pop("session_to_write", None)
    if to_write is not None:
        access.write_session(response, to_write)
    return response


def _to_login(reason: str | None) -> Response:
    target = url_for("dashboard.login", next=request.path if request.method == "GET" else None)
    if request.headers.get("HX-Request"):  # a poll: have htmx move the whole page
        response = make_response("", 401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


@bp.errorhandler(Refused)
def _refused(error: Refused) -> tuple[str, int]:
    return render_template("dashboard/refused.html", message=error.message), error.status


@bp.errorhandler(JobsvcError)
def _domain_error(error: JobsvcError) -> Response:
    status = status_of(error)
    response = make_response(
        render_template("dashboard/refused.html", message=error.message), status
    )
    retry_after = getattr(error, "retry_after_seconds", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _viewer() -> Viewer:
    return g.viewer


@bp.app_template_filter("when")
def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("pretty_json")
def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@bp.app_template_filter("age")
def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@bp.context_processor
def _common() -> dict[str, Any]:
    return {
        "viewer": g.get("viewer"),
        "statuses": [status.value for status in JobStatus],
        "poll_seconds": POLL_SECONDS,
        "job_poll_seconds": JOB_POLL_SECONDS,
        "csrf_field": access.CSRF_FIELD,
    }


# -- log in and out ----------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """The login form: an API token in, a session cookie out."""
    if g.viewer is not None and request.method == "GET":
        return redirect(url_for("dashboard.overview"))
    if request.method == "GET":
        return render_template("dashboard/login.html", error=None, session_csrf=_login_csrf())
    session, error = access.login_token(request.form.get("token", ""))
    if session is None:
        return render_template("dashboard/login.html", error=error, session_csrf=_login_csrf()), 401
    target = request.args.get("next", "")
    # Only a path of this dashboard: never an open redirect to another site.
    if not target.startswith("/dashboard") or target.startswith("//"):
        target = url_for("dashboard.overview")
    g.session_to_write = session
    return redirect(target)


def _login_csrf() -> str:
    pending = g.get("session_to_write")
    if pending is not None:
        return pending.csrf
    session = access.read_session()
    return session.csrf if session else ""


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """End the session (the token itself stays valid)."""
    g.session_to_write = access.Session(None, access.new_csrf())
    return redirect(url_for("dashboard.login", notice="logged-out"))


# -- the overview ------------------------------------------------------------------------------


def overview_context() -> dict[str, Any]:
    """Everything the overview shows, each queue's paused state included."""
    services = state().services
    paused = {queue.name for queue in services.queues.list() if queue.paused}
    counts = services.jobs.counts()
    queues = sorted({queue for queue, _ in counts}) or ["default"]
    table = [
        {
            "queue": queue,
            "counts": {status.value: counts.get((queue, status), 0) for status in JobStatus},
        }
        for queue in queues
    ]
    totals = {
        status.value: sum(row["counts"][status.value] for row in table) for status in JobStatus
    }
    ready = services.overview.ready_queues()
    now_minute, minutes = services.overview.finished_per_minute(CHART_MINUTES)
    by_minute = {m.minute: m for m in minutes}
    first = now_minute - CHART_MINUTES + 1
    series = {
        "minutes": [(first + i) * 60 for i in range(CHART_MINUTES)],
        "done": [by_minute[m].done if m in by_minute else 0 for m in range(first, now_minute + 1)],
        "failed": [
            by_minute[m].failed if m in by_minute else 0 for m in range(first, now_minute + 1)
        ],
    }
    return {
        "table": table,
        "totals": totals,
        "running": totals[JobStatus.RUNNING.value],
        "ready": ready,
        "ready_by_queue": {q.queue: q for q in ready},
        "oldest_ready": max((q.oldest_age_seconds for q in ready), default=None),
        "workers": services.overview.busy_workers(),
        "series_json": json.dumps(series),
        "finished_last_hour": sum(series["done"]),
        "failed_last_hour": sum(series["failed"]),
        "paused": paused,
        "notice": NOTICES.get(request.args.get("notice", "")),
    }


@bp.route("/")
def overview() -> str:
    """Counts per queue and status, running now, the oldest ready job, the last hour's chart."""
    return render_template("dashboard/overview.html", **overview_context())


@bp.route("/overview")
def overview_fragment() -> str:
    """The overview's live part, which the page polls (htmx) and swaps in."""
    return render_template("dashboard/_overview.html", **overview_context())


# -- jobs --------------------------------------------------------------------------------------


def _filters() -> dict[str, str]:
    return {
        name: request.args[name]
        for name in ("status", "queue", "type", "limit", "before")
        if request.args.get(name)
    }


@bp.route("/jobs")
def jobs() -> tuple[str, int] | str:
    """The job list, with the API's filters (status, queue, type) and its cursor paging."""
    filters = _filters()
    try:
        query = _list_query.load(filters)
    except ValidationError as exc:
        errors = exc.normalized_messages()
        return render_template(
            "dashboard/jobs.html", jobs=[], filters=filters, errors=errors, next_url=None
        ), 422
    query.pop("shown", None)  # GET /jobs's fields=: these show every field
    records = state().services.jobs.list(**query)
    next_url = None
    if len(records) == query["limit"]:
        next_url = url_for("dashboard.jobs", **{**filters, "before": records[-1].id})
    return render_template(
        "dashboard/jobs.html",
        jobs=records,
        filters=filters,
        errors={},
        next_url=next_url,
        notice=NOTICES.get(request.args.get("notice", "")),
    )


def job_context(record: JobRecord) -> dict[str, Any]:
    """What the job page shows: the job, every ended attempt, its webhook's delivery state."""
    return {
        "job": record,
        "attempts": state().services.jobs.attempts(record.id),
        "can_retry": record.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        "can_cancel": record.status in (JobStatus.PENDING, JobStatus.RUNNING),
        "notice": NOTICES.get(request.args.get("notice", "")),
    }


@bp.route("/jobs/<jobid:job_id>")
def job(job_id: str) -> str:
    """One job: payload, result, last error and traceback, and the actions it allows."""
    record = state().services.jobs.get(_job_id(job_id))
    return render_template("dashboard/job.html", **job_context(record))


@bp.route("/jobs/<jobid:job_id>/retry", methods=["POST"])
def retry(job_id: str) -> Response:
    """Send a FAILED or CANCELLED job back to PENDING (admin; the page asked first)."""
    access.require_admin(_viewer())
    record = state().services.jobs.retry(_job_id(job_id))
    return redirect(url_for("dashboard.job", job_id=record.id, notice="retried"))


@bp.route("/jobs/<jobid:job_id>/cancel", methods=["POST"])
def cancel(job_id: str) -> Response:
    """Cancel a PENDING or RUNNING job (admin; the page asked first)."""
    access.require_admin(_viewer())
    record = state().services.jobs.cancel(_job_id(job_id))
    return redirect(url_for("dashboard.job", job_id=record.id, notice="cancelled"))


@bp.route("/jobs/retry-failed", methods=["POST"])
def retry_failed() -> Response:
    """Send the FAILED jobs of the list's queue and type filters back to PENDING (admin; at
    most one bulk batch per press, as ``POST /jobs/retry``)."""
    access.require_admin(_viewer())
    queue = request.form.get("queue") or None
    job_type = request.form.get("type") or None
    try:  # the list's own filter rules: the same 422 for the same bad name
        chosen = _list_query.load({k: v for k, v in (("queue", queue), ("type", job_type)) if v})
    except ValidationError as exc:
        raise ValidationFailed(exc.normalized_messages()) from None
    selection = JobSelection(
        status=JobStatus.FAILED, queue=chosen.get("queue"), job_type=chosen.get("job_type")
    )
    state().services.jobs.retry_many(selection)
    return redirect(url_for("dashboard.jobs", notice="bulk-retried", status="PENDING"))


@bp.route("/queues/<name>/<any(pause, resume):action>", methods=["POST"])
def pause_or_resume(name: str, action: str) -> Response:
    """Pause a queue (its jobs wait; running ones finish) or resume it (admin)."""
    access.require_admin(_viewer())
    state().services.queues.set_paused(name, action == "pause")
    return redirect(
        url_for("dashboard.overview", notice="paused" if action == "pause" else "resumed")
    )


def _job_id(raw: str) -> int:
    return parse_job_id(raw)  # the API's own parsing: the same 404 for the same id
