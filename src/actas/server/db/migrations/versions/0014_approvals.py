"""Four eyes: impersonations that policy sends to a second operator for approval.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impersonation_approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("requested_by", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("session_max_duration", sa.BigInteger(), nullable=False),
        sa.Column("why", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(40), nullable=True),
        sa.Column("decision_reason", sa.String(1000), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("actor_token_id", sa.String(40), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_impersonation_approvals_status", "impersonation_approvals",
                    ["status", "id"])
    with op.batch_alter_table("actor_tokens") as batch:
        batch.add_column(sa.Column("approval_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actor_tokens") as batch:
        batch.drop_column("approval_id")
    op.drop_index("ix_impersonation_approvals_status", table_name="impersonation_approvals")
    op.drop_table("impersonation_approvals")
