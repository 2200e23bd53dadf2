"""API tokens for tests, stored the way the CLI stores them."""

from __future__ import annotations

from flask import Flask

from jobsvc.tokens import format_scopes, hash_token, new_token, parse_scopes

ALL_SCOPES = "enqueue,read,admin"


def make_token(app: Flask, name: str = "ci", scopes: str = ALL_SCOPES) -> str:
    """Create a live token named ``name`` with ``scopes`` in ``app``'s database; return it."""
    token = new_token()
    app.extensions["jobsvc"].services.tokens.create(
        name, hash_token(token), format_scopes(parse_scopes(scopes))
    )
    return token


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}
