"""Who may see the dashboard and press its buttons: the API's tokens, through a session cookie.

A login form takes an API token once and answers with a signed session cookie holding the token's
hash (never the token) and a CSRF token. Every request looks the hash up again, so a revoked token
ends its sessions at once, and its scopes decide what the page shows: ``read`` to see, ``admin``
to act. While no token exists, loopback clients may do everything without logging in, as the API
lets them. The cookie is ``HttpOnly`` and ``SameSite=Strict``, and ``Secure`` when the request
came over HTTPS (behind a proxy: when ``python -m jobsvc.serve --trusted-proxy`` believes its
``X-Forwarded-Proto``). Every POST carries the session's CSRF token in a form field or header.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..api.auth import LOOPBACK_ONLY_REFUSAL, is_loopback
from ..api.state import state
from ..errors import Forbidden, RateLimited
from ..tokens import SCOPE_ADMIN, SCOPE_READ, grants, hash_token

logger = logging.getLogger(__name__)

COOKIE_NAME = "jobsvc_session"
SESSION_MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SIGNER_KEY = "jobsvc.dashboard.signer"
RANDOM_KEY_WARNING = "jobsvc.dashboard.random_key_warning"
SALT = "jobsvc-dashboard-session"


class NeedsLogin(Exception):
    """No session, or one whose token is gone: the browser goes to the login form."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(Exception):
    """The request may not be served at all (not loopback while no token exists)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Session:
    """What the signed cookie holds."""

    token_hash: str | None  # None: not logged in (the login form's CSRF only), or open mode
    csrf: str


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the page, and what they may do."""

    name: str | None  # the token's name; None while no token exists (open to loopback)
    scopes: frozenset[str]
    csrf: str

    @property
    def can_act(self) -> bool:
        return grants(self.scopes, SCOPE_ADMIN)


def init_app(app: Flask) -> None:
    """Make the cookie signer from JOBSVC_SECRET_KEY, or a random key for this process alone."""
    secret = app.config.get("JOBSVC_SECRET_KEY") or ""
    app.extensions[RANDOM_KEY_WARNING] = not secret and not app.testing
    app.extensions[SIGNER_KEY] = URLSafeTimedSerializer(
        secret or secrets.token_urlsafe(32), salt=SALT
    )


def _warn_once_of_random_key() -> None:
    # Said when the first session is made, not at start-up: CLI commands build the app too.
    if current_app.extensions.get(RANDOM_KEY_WARNING):
        current_app.extensions[RANDOM_KEY_WARNING] = False
        logger.warning(
            "JOBSVC_SECRET_KEY is not set: dashboard sessions are signed with a random key of "
            "this process, so they end when it restarts and work on this process only; set one "
            "key for every API process"
        )


def _signer() -> URLSafeTimedSerializer:
    return current_app.extensions[SIGNER_KEY]


def read_session() -> Session | None:
    """Return the request's session, or None when it has none (or a forged or stale one)."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        data = _signer().loads(raw, max_age=SESSION_MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    token_hash = data.get("t")
    return Session(token_hash if isinstance(token_hash, str) else None, data["c"])


def write_session(response: Response, session: Session | None) -> Response:
    """Set (or, with None, clear) the session cookie on ``response``."""
    if session is None:
        response.delete_cookie(COOKIE_NAME, path="/", samesite="Strict", httponly=True)
        return response
    _warn_once_of_random_key()
    value = _signer().dumps({"t": session.token_hash, "c": session.csrf})
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=SESSION_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )
    return response


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def identify(*, login_page: bool = False) -> Viewer | None:
    """Return who is asking, or raise ``NeedsLogin`` / ``Refused``; None on the login page
    when nobody is logged in yet. Sets ``g.session_to_write`` when the cookie must change."""
    api = state()
    session = read_session()
    if not api.token_presence.any_live():
        if not is_loopback(request.remote_addr):
            raise Refused(401, LOOPBACK_ONLY_REFUSAL)
        if session is None:
            session = Session(None, new_csrf())
            g.session_to_write = session
        return Viewer(None, frozenset({SCOPE_ADMIN}), session.csrf)
    if session is None or session.token_hash is None:
        if login_page:
            if session is None:
                g.session_to_write = Session(None, new_csrf())
            return None
        raise NeedsLogin()
    record = api.services.tokens.find_live(session.token_hash)
    if record is None:
        g.session_to_write = Session(None, new_csrf())
        if login_page:
            return None
        raise NeedsLogin("The token of this session was revoked; log in again.")
    if not grants(record.scopes, SCOPE_READ):
        raise Refused(403, f"The token {record.name!r} lacks the read scope the dashboard needs.")
    g.token_name = record.name  # for the request's log line
    wait_seconds = api.rate_limiter.acquire(record.id)
    if wait_seconds:
        raise RateLimited(wait_seconds)
    return Viewer(record.name, record.scopes, session.csrf)


def check_csrf(expected: str) -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong."""
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page and try again")


def require_admin(viewer: Viewer) -> None:
    if not viewer.can_act:
        raise Forbidden(
            f"the token {viewer.name!r} may only read; retry and cancel need the admin scope"
        )


def login_token(token: str) -> tuple[Session | None, str | None]:
    """Return the session a token opens, or None and why not."""
    token = token.strip()
    if not token or len(token) > 256:
        return None, "Paste an API token."
    record = state().services.tokens.find_live(hash_token(token))
    if record is None:
        logger.info("dashboard: rejected an unknown or revoked token from %s", request.remote_addr)
        return None, "That token is unknown or revoked."
    if not grants(record.scopes, SCOPE_READ):
        return None, f"The token {record.name!r} lacks the read scope the dashboard needs."
    return Session(hash_token(token), new_csrf()), None
