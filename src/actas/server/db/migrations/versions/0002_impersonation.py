"""Impersonation: actor tokens, operators, the audit chain, webhooks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ms = sa.BigInteger()
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("protected", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("sessions") as sessions:
        sessions.add_column(sa.Column("actor_sub", sa.String(256)))
        sessions.add_column(sa.Column("actor_token_id", sa.String(40)))
        sessions.add_column(sa.Column("return_to_session_id", sa.String(40)))
    op.create_index("ix_sessions_actor_sub", "sessions", ["actor_sub", "id"])
    op.create_table(
        "actor_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("token_digest", sa.String(80), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("actor_sub", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(1000)),
        sa.Column("expires_at", ms, nullable=False),
        sa.Column("session_max_duration", ms, nullable=False),
        sa.Column("session_id", sa.String(40)),
        sa.Column("accepted_at", ms),
        sa.Column("revoked_at", ms),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_index("ix_actor_tokens_user_id", "actor_tokens", ["user_id", "id"])
    op.create_index("ix_actor_tokens_actor_sub", "actor_tokens", ["actor_sub", "id"])
    op.create_table(
        "operators",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email_address", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(256)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", ms, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("occurred_at", ms, nullable=False),
        sa.Column("actor_sub", sa.String(256)),
        sa.Column("user_id", sa.String(40)),
        sa.Column("session_id", sa.String(40)),
        sa.Column("actor_token_id", sa.String(40)),
        sa.Column("reason", sa.String(1000)),
        sa.Column("ip_address", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_actor_sub", "audit_events", ["actor_sub", "seq"])
    op.create_index("ix_audit_events_user_id", "audit_events", ["user_id", "seq"])
    op.create_index("ix_audit_events_type", "audit_events", ["type", "seq"])
    op.create_table(
        "audit_chain_head",
        sa.Column("id", ms, primary_key=True, autoincrement=False),
        sa.Column("last_seq", ms, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("endpoint_id", sa.String(40),
                  sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", ms, nullable=False),
        sa.Column("next_attempt_at", ms, nullable=False),
        sa.Column("last_error", sa.String(512)),
        sa.Column("created_at", ms, nullable=False),
        sa.Column("updated_at", ms, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhook_endpoints", "audit_chain_head",
                  "audit_events", "operators", "actor_tokens"):
        op.drop_table(table)
    op.drop_index("ix_sessions_actor_sub", "sessions")
    with op.batch_alter_table("sessions") as sessions:
        for column in ("return_to_session_id", "actor_token_id", "actor_sub"):
            sessions.drop_column(column)
    with op.batch_alter_table("users") as users:
        users.drop_column("protected")
