"""Webhook delivery per endpoint: a lease (one sender, in order) and a circuit breaker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("lease_until", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(32), nullable=True))
        batch.add_column(sa.Column("consecutive_failures", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("circuit_open_until", sa.BigInteger(), nullable=True))
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries",
                    ["endpoint_id", "status", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_endpoint", "webhook_deliveries")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("circuit_open_until")
        batch.drop_column("consecutive_failures")
        batch.drop_column("lease_owner")
        batch.drop_column("lease_until")
