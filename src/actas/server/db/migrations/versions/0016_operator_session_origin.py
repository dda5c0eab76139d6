"""Where each operator session was signed in from (address, browser), so that an operator
can tell their sessions apart and end the ones they do not recognise.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operator_sessions") as batch:
        batch.add_column(sa.Column("ip_address", sa.String(64), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operator_sessions") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("ip_address")
