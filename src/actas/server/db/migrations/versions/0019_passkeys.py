"""Operators' passkeys; one-time values already spent; machine clients that prove
themselves with a signed assertion (private_key_jwt) instead of a secret.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_passkeys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operator_id", sa.String(40),
                  sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_operator_passkeys_operator_id", "operator_passkeys", ["operator_id"])
    op.create_table(
        "spent_nonces",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("expire_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_spent_nonces_expire_at", "spent_nonces", ["expire_at"])
    with op.batch_alter_table("machine_clients") as batch:
        batch.alter_column("secret_digest", existing_type=sa.String(80), nullable=True)
        batch.add_column(sa.Column("public_key_pem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("machine_clients") as batch:
        batch.drop_column("public_key_pem")
        batch.alter_column("secret_digest", existing_type=sa.String(80), nullable=False)
    op.drop_table("spent_nonces")
    op.drop_table("operator_passkeys")
