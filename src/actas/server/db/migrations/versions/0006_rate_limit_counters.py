"""Rate-limit counters: one row per (scope, key, window), updated atomically.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ms = sa.BigInteger()
    op.create_table(
        "rate_limit_counters",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("window_start", ms, primary_key=True, autoincrement=False),
        sa.Column("hits", ms, nullable=False),
        sa.Column("expires_at", ms, nullable=False),
    )
    op.create_index("ix_rate_limit_counters_expires_at", "rate_limit_counters",
                    ["scope", "expires_at"])


def downgrade() -> None:
    op.drop_table("rate_limit_counters")
