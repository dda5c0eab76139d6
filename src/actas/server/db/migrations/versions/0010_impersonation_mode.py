"""Impersonation modes: ``read_only`` or ``full``, on actor tokens and their sessions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens and impersonations from before modes existed could do anything: full.
    with op.batch_alter_table("actor_tokens") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False,
                                   server_default="full"))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("impersonation_mode", sa.String(16), nullable=True))
    op.execute("UPDATE sessions SET impersonation_mode = 'full' WHERE actor_sub IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("impersonation_mode")
    with op.batch_alter_table("actor_tokens") as batch:
        batch.drop_column("mode")
