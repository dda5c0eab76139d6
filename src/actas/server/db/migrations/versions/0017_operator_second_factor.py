"""Operators' second factors (TOTP) and recovery codes; operator sessions remember a
pending step of sign-in and their last second-factor check.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operator_sessions") as batch:
        batch.add_column(sa.Column("pending", sa.String(16), nullable=True))
        batch.add_column(sa.Column("second_factor_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("second_factor_kind", sa.String(16), nullable=True))
    op.create_table(
        "operator_factors",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operator_id", sa.String(40),
                  sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_operator_factors_operator_id", "operator_factors", ["operator_id"])
    op.create_table(
        "operator_recovery_codes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operator_id", sa.String(40),
                  sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_digest", sa.String(80), nullable=False, unique=True),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_operator_recovery_codes_operator_id", "operator_recovery_codes",
                    ["operator_id"])


def downgrade() -> None:
    op.drop_table("operator_recovery_codes")
    op.drop_table("operator_factors")
    with op.batch_alter_table("operator_sessions") as batch:
        batch.drop_column("second_factor_kind")
        batch.drop_column("second_factor_at")
        batch.drop_column("pending")
