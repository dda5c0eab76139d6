"""The user's say: an impersonation preference per user, access requests and grants,
and on each actor token why the preference let it through.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("impersonation_preference", sa.String(8), nullable=True))
    with op.batch_alter_table("actor_tokens") as batch:
        batch.add_column(sa.Column("consent", sa.String(16), nullable=False,
                                   server_default="not_needed"))
        batch.add_column(sa.Column("access_request_id", sa.String(40), nullable=True))
    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by_sub", sa.String(256), nullable=True),
        sa.Column("requested_by", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("session_max_duration", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("granted_until", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_access_requests_user_id", "access_requests", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_access_requests_user_id", table_name="access_requests")
    op.drop_table("access_requests")
    with op.batch_alter_table("actor_tokens") as batch:
        batch.drop_column("access_request_id")
        batch.drop_column("consent")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("impersonation_preference")
