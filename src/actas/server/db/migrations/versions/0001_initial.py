"""Users, email addresses, clients, sessions, signing keys, secret keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ms = sa.BigInteger()
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("username", sa.String(64), unique=True),
        sa.Column("first_name", sa.String(256)),
        sa.Column("last_name", sa.String(256)),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("primary_email_address_id", sa.String(40)),
        sa.Column("external_id", sa.String(256)),
        sa.Column("public_metadata", sa.JSON(), nullable=False),
        sa.Column("private_metadata", sa.JSON(), nullable=False),
        sa.Column("unsafe_metadata", sa.JSON(), nullable=False),
        sa.Column("banned", sa.Boolean(), nullable=False),
        sa.Column("last_sign_in_at", ms),
        sa.Column("last_active_at", ms),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_index("ix_users_created_at", "users", ["created_at", "id"])
    op.create_table(
        "email_addresses",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("email_address", sa.String(320), nullable=False, unique=True),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_index("ix_email_addresses_user_id", "email_addresses", ["user_id"])
    op.create_table(
        "clients",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("token_digest", sa.String(80), nullable=False, unique=True),
        sa.Column("last_active_session_id", sa.String(40)),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "client_id", sa.String(40), sa.ForeignKey("clients.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.JSON()),
        sa.Column("last_active_at", ms, nullable=False),
        sa.Column("expire_at", ms, nullable=False),
        sa.Column("abandon_at", ms, nullable=False),
        sa.Column("ended_at", ms),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id", "id"])
    op.create_index("ix_sessions_client_id", "sessions", ["client_id", "id"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(40), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_key_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("signs_from", ms, nullable=False),
        sa.Column("unpublish_at", ms),
        sa.Column("created_at", ms, nullable=False),
    )
    op.create_table(
        "secret_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False, unique=True),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("revoked_at", ms),
    )


def downgrade() -> None:
    for table in ("secret_keys", "signing_keys", "sessions", "clients", "email_addresses", "users"):
        op.drop_table(table)
