"""Dashboard sign-in: operator sessions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ms = sa.BigInteger()
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operator_id", sa.String(40),
                  sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_digest", sa.String(80), nullable=False, unique=True),
        sa.Column("expire_at", ms, nullable=False),
        sa.Column("last_active_at", ms, nullable=False),
        sa.Column("ended_at", ms),
        sa.Column("created_at", ms, nullable=False),
    )
    op.create_index("ix_operator_sessions_operator_id", "operator_sessions", ["operator_id"])
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["type", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_occurred_at", "audit_events")
    op.drop_table("operator_sessions")
