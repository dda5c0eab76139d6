"""What impersonators did in the application, as its SDK reports it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impersonation_activity",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("session_id", sa.String(40),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("status", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_impersonation_activity_session", "impersonation_activity",
                    ["session_id", "occurred_at"])
    op.create_index("ix_impersonation_activity_occurred", "impersonation_activity",
                    ["occurred_at"])


def downgrade() -> None:
    op.drop_table("impersonation_activity")
