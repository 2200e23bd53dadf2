"""Who may call the API: one ``before_request`` hook, the only place access is decided.

No live token: loopback clients only (a fresh install works from the same host, nothing else).
Any live token: every endpoint but ``/health`` needs ``Authorization: Bearer <token>`` with the
scope the endpoint needs. Tokens are looked up on every request, so a revocation holds at once
in every API process.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import g, request
from sqlalchemy.exc import SQLAlchemyError

from ..errors import DatabaseUnavailable, Forbidden, RateLimited, Unauthorized
from ..store import TokenRecord, TokenStore
from ..tokens import SCOPE_ADMIN, grants, hash_token
from .endpoints import BROWSER_BLUEPRINTS, OPEN_TO_ALL
from .presence import TOKENS_EXIST_CACHE_SECONDS
from .state import state

__all__ = [
    "TOKENS_EXIST_CACHE_SECONDS",
    "authorize",
    "caller_scope",
    "is_loopback",
    "warn_when_open",
]

logger = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 256  # ours are 50; anything far longer is not worth hashing
LOOPBACK_ONLY_REFUSAL = (
    "No API token exists yet, so this API only serves clients on its own host (loopback). "
    "Create a token there with `flask --app jobsvc jobs token create --name NAME "
    "--scopes enqueue,read,admin` and send it as `Authorization: Bearer <token>`."
)


def warn_when_open(tokens: TokenStore) -> None:
    """Warn when no token exists, so the API serves loopback clients without authentication."""
    try:
        open_to_loopback = not tokens.any_live()
    except (DatabaseUnavailable, SQLAlchemyError):
        # Starting must not need the database (it may come up later, or be mid-migration).
        logger.warning("could not tell whether API tokens exist; the database did not answer")
        return
    if open_to_loopback:
        logger.warning(
            "no API token exists: the API serves loopback clients only, without "
            "authentication; create one with `flask --app jobsvc jobs token create "
            "--name NAME --scopes enqueue,read,admin`"
        )


def is_loopback(address: str | None) -> bool:
    """Return True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def authorize() -> None:
    """Let the request through, or raise 401/403/429 saying why not."""
    if request.blueprint in BROWSER_BLUEPRINTS:
        return  # the dashboard checks its session itself (jobsvc.dashboard.access)
    api = state()
    # Endpoints not declared with @endpoint need admin: a new view is closed until someone
    # decides its scope.
    needed = api.scopes.get(request.endpoint or "", SCOPE_ADMIN)
    if needed == OPEN_TO_ALL:
        return
    header = request.headers.get("Authorization")
    if header is None:
        if not api.token_presence.any_live():
            if is_loopback(request.remote_addr):
                return
            raise Unauthorized(LOOPBACK_ONLY_REFUSAL)
        raise Unauthorized()
    record = _authenticate(api.services.tokens, header)
    g.jobsvc_token_id = record.id  # what idempotency keys are scoped to
    # An unrouted request (404, 405) needs any valid token, so strangers cannot map the API.
    if request.endpoint is not None and not grants(record.scopes, needed):
        raise Forbidden(
            f"this endpoint needs the {needed!r} scope; the token "
            f"{record.name!r} has {', '.join(sorted(record.scopes))}"
        )
    wait_seconds = api.rate_limiter.acquire(record.id)
    if wait_seconds:
        raise RateLimited(wait_seconds)


def caller_scope() -> str:
    """Return whose keys this request's are: its token's, or everyone's while none exists."""
    token_id = g.get("jobsvc_token_id")
    return "open" if token_id is None else f"token:{token_id}"


def _authenticate(tokens: TokenStore, header: str) -> TokenRecord:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("send the token as `Authorization: Bearer <token>`")
    token_hash = hash_token(token)
    record = tokens.find_live(token_hash)
    # The lookup is by hash, so timing tells nothing about the token; compare_digest keeps the
    # final check constant-time as well.
    if record is None or not hmac.compare_digest(record.token_hash, token_hash):
        # Name the client, never the token: a mistyped token is often one character off a real one.
        logger.info("rejected an unknown or revoked API token from %s", request.remote_addr)
        raise _invalid("the API token is unknown or revoked")
    g.token_name = record.name  # for the request's log line (requestlog)
    return record


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, credentials_rejected=True)
