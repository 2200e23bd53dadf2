"""API tokens: how they are made, hashed and scoped. The SQL lives in ``store.tokens``."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

# Lets secret scanners and people recognise a leaked token; not a secret itself.
TOKEN_PREFIX = "jobsvc_"  # noqa: S105
TOKEN_BYTES = 32  # 256 bits of randomness
TOKEN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

SCOPE_ENQUEUE = "enqueue"
SCOPE_READ = "read"
SCOPE_ADMIN = "admin"
SCOPES = (SCOPE_ENQUEUE, SCOPE_READ, SCOPE_ADMIN)


def new_token() -> str:
    """Return a fresh random token (shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of ``token``: what the database keeps and looks tokens up by.

    A fast hash is enough: the token is 256 random bits, so there is no dictionary to try and a
    slow KDF (bcrypt, argon2) would only add its cost to every request. It also lets the lookup
    be one indexed equality on the hash, which needs no per-user salt.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    """Return the scopes named in a comma-separated list; raise ValueError on an unknown one."""
    scopes = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {text!r}")
    return scopes


def format_scopes(scopes: Iterable[str]) -> str:
    """Return ``scopes`` as the stored comma-separated text, in a stable order."""
    return ",".join(scope for scope in SCOPES if scope in set(scopes))


def grants(scopes: frozenset[str], needed: str) -> bool:
    """Return True when a token with ``scopes`` may do what needs ``needed`` (admin may all)."""
    return needed in scopes or SCOPE_ADMIN in scopes
