"""Every statement that reads or writes API tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from ..errors import TokenNameTaken
from ..models import ApiToken
from ..timestamps import db_now
from .execute import Executor, translate_errors
from .records import TokenRecord

tokens = ApiToken.__table__

_COLUMNS = (tokens.c.id, tokens.c.name, tokens.c.token_hash, tokens.c.scopes, tokens.c.created_at)
_LIVE = tokens.c.revoked_at.is_(None)


def _record(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        token_hash=row.token_hash,
        scopes=frozenset(row.scopes.split(",")),
        created_at=row.created_at,
    )


class TokenStore:
    """Reads and writes API tokens; one method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = Executor(engine)

    @translate_errors
    def create(self, name: str, token_hash: str, scopes: str) -> TokenRecord:
        """Store a live token's hash under ``name``."""
        statement = (
            insert(tokens)
            .values(name=name, token_hash=token_hash, scopes=scopes, created_at=db_now())
            .returning(*_COLUMNS)
        )
        try:
            with self._sql.write() as transaction:
                return _record(transaction.execute(statement).one())
        except IntegrityError:
            raise TokenNameTaken(f"a live token is already named {name!r}") from None

    @translate_errors
    def revoke(self, name: str) -> bool:
        """End the live token named ``name`` now; return False when there is none."""
        statement = update(tokens).where(tokens.c.name == name, _LIVE).values(revoked_at=db_now())
        with self._sql.write() as transaction:
            return transaction.execute(statement).rowcount > 0

    @translate_errors
    def find_live(self, token_hash: str) -> TokenRecord | None:
        """Return the live token with this hash, or None (one unique-index lookup)."""
        statement = select(*_COLUMNS).where(tokens.c.token_hash == token_hash, _LIVE)
        with self._sql.read() as transaction:
            row = transaction.execute(statement).first()
        return None if row is None else _record(row)

    @translate_errors
    def any_live(self) -> bool:
        """Return True when at least one token is live."""
        with self._sql.read() as transaction:
            live = transaction.execute(select(tokens.c.id).where(_LIVE).limit(1)).first()
        return live is not None

    @translate_errors
    def list_live(self) -> list[TokenRecord]:
        """Return the live tokens, oldest first."""
        statement = select(*_COLUMNS).where(_LIVE).order_by(tokens.c.id)
        with self._sql.read() as transaction:
            return [_record(row) for row in transaction.execute(statement)]
