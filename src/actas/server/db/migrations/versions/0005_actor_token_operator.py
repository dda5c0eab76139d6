"""Remember which operator asked for an actor token, to re-check them at every step.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null: issued through the Backend API (the secret key), not by an operator.
    with op.batch_alter_table("actor_tokens") as batch:
        batch.add_column(sa.Column("operator_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actor_tokens") as batch:
        batch.drop_column("operator_id")
