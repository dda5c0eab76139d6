"""Machine clients: an application's admin tool, starting impersonations through the
RFC 8693 token endpoint with a scoped, revocable credential.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machine_clients",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_digest", sa.String(80), nullable=False),
        sa.Column("may_impersonate_protected", sa.Boolean(), nullable=False),
        sa.Column("may_start_full", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("machine_clients")
