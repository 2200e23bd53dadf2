"""Create the api_tokens table: API tokens kept as SHA-256 hashes, with scopes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobsvc.timestamps import UTCDateTime, db_now

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=db_now(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    live = sa.text("revoked_at IS NULL")
    op.create_index(
        "ux_api_tokens_live_name",
        "api_tokens",
        ["name"],
        unique=True,
        postgresql_where=live,
        sqlite_where=live,
    )


def downgrade() -> None:
    op.drop_index("ux_api_tokens_live_name", table_name="api_tokens")
    op.drop_table("api_tokens")
