"""Indexes for the dashboard's prefix search on first and last names.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_first_name_lower", "users", [sa.text("lower(first_name)")])
    op.create_index("ix_users_last_name_lower", "users", [sa.text("lower(last_name)")])


def downgrade() -> None:
    op.drop_index("ix_users_last_name_lower", "users")
    op.drop_index("ix_users_first_name_lower", "users")
