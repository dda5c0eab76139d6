"""The database schema, as SQLAlchemy 2 declarative models.

Timestamps are integers in Unix milliseconds, the unit of Clerk's API, so
they serialize without conversion and compare the same on every backend.
Alembic migrations under ``migrations/`` build exactly this schema (a test
compares the two).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Json = dict[str, Any]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {Json: JSON, int: BigInteger}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Stored lower-cased so that uniqueness is case-insensitive on every backend.
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(256))
    last_name: Mapped[str | None] = mapped_column(String(256))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    primary_email_address_id: Mapped[str | None] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(256))
    public_metadata: Mapped[Json] = mapped_column(default=dict)
    private_metadata: Mapped[Json] = mapped_column(default=dict)
    unsafe_metadata: Mapped[Json] = mapped_column(default=dict)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    # Only an actor with impersonate:protected may impersonate a protected user.
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    # allowed | ask | never; null: the instance's default
    # (ACTAS_IMPERSONATION_PREFERENCE_DEFAULT). See actas.server.impersonation.consent.
    impersonation_preference: Mapped[str | None] = mapped_column(String(8))
    # Impersonations that started after this are news to the user (the browser SDK's
    # notice); set when the user dismisses it.
    impersonations_seen_at: Mapped[int | None]
    last_sign_in_at: Mapped[int | None]
    last_active_at: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]

    email_addresses: Mapped[list[EmailAddress]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="EmailAddress.id",
        lazy="selectin",
    )

    __table_args__ = (
        Index("ix_users_created_at", "created_at", "id"),
        # The dashboard's prefix search on names (actas.server.users.search).
        Index("ix_users_first_name_lower", func.lower(first_name)),
        Index("ix_users_last_name_lower", func.lower(last_name)),
    )


class EmailAddress(Base):
    __tablename__ = "email_addresses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Lower-cased; unique across the instance.
    email_address: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[int]
    updated_at: Mapped[int]

    user: Mapped[User] = relationship(back_populates="email_addresses")


class Client(Base):
    """One browser: identified by the ``__client`` cookie, whose secret is stored hashed."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(80), unique=True)
    last_active_session_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[int]
    updated_at: Mapped[int]


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("clients.id", ondelete="CASCADE")
    )
    # The stored status; an "active" row past expire_at/abandon_at is reported
    # as expired/abandoned (see actas.server.sessions.effective_status).
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[Json | None]
    # Denormalised from actor for indexed filtering; null when not impersonated.
    actor_sub: Mapped[str | None] = mapped_column(String(256))
    actor_token_id: Mapped[str | None] = mapped_column(String(40))
    # read_only | full for an impersonation (its actor token's); null for the user's own.
    impersonation_mode: Mapped[str | None] = mapped_column(String(16))
    # The client's session to make active again when the impersonation stops.
    return_to_session_id: Mapped[str | None] = mapped_column(String(40))
    last_active_at: Mapped[int]
    expire_at: Mapped[int]
    abandon_at: Mapped[int]
    ended_at: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]

    __table_args__ = (
        Index("ix_sessions_user_id", "user_id", "id"),
        Index("ix_sessions_client_id", "client_id", "id"),
        Index("ix_sessions_actor_sub", "actor_sub", "id"),
    )


class ImpersonationActivity(Base):
    """One request an impersonator made in the application, as its SDK reported it: the
    route template and status only, never a body, header or query value."""

    __tablename__ = "impersonation_activity"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sessions.id", ondelete="CASCADE"))
    occurred_at: Mapped[int]
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(200))
    status: Mapped[int]
    refused: Mapped[bool] = mapped_column(Boolean, default=False)  # by the SDK, read-only
    received_at: Mapped[int]

    __table_args__ = (
        Index("ix_impersonation_activity_session", "session_id", "occurred_at"),
        Index("ix_impersonation_activity_occurred", "occurred_at"),
    )


class SigningKey(Base):
    """A session-token signing key; the private half is AES-GCM encrypted."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[Json]
    private_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # Published from creation; signs from signs_from; published until unpublish_at.
    signs_from: Mapped[int]
    unpublish_at: Mapped[int | None]
    created_at: Mapped[int]


class SecretKey(Base):
    """A Backend API secret key generated by actas; only its digest is stored."""

    __tablename__ = "secret_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    digest: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[int]
    revoked_at: Mapped[int | None]


class ActorToken(Base):
    """A single-use ticket to sign in as ``user_id`` on behalf of ``actor``."""

    __tablename__ = "actor_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | accepted | revoked
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id", ondelete="CASCADE"))
    actor: Mapped[Json]
    actor_sub: Mapped[str] = mapped_column(String(256))
    # The operator who asked for it (null: the Backend API); re-checked at every step.
    operator_id: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(1000))
    mode: Mapped[str] = mapped_column(String(16), server_default="full")  # read_only | full
    # Why the user's preference let it through: not_needed | granted | override.
    consent: Mapped[str] = mapped_column(String(16), server_default="not_needed")
    access_request_id: Mapped[str | None] = mapped_column(String(40))  # the grant used
    approval_id: Mapped[str | None] = mapped_column(String(40))  # the second operator's yes
    expires_at: Mapped[int]
    session_max_duration: Mapped[int]  # seconds
    session_id: Mapped[str | None] = mapped_column(String(40))
    accepted_at: Mapped[int | None]
    revoked_at: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]

    __table_args__ = (
        Index("ix_actor_tokens_user_id", "user_id", "id"),
        Index("ix_actor_tokens_actor_sub", "actor_sub", "id"),
    )


class AccessRequest(Base):
    """A user's say in an impersonation of their account: an operator's request waiting
    for the user's answer, or a grant (answered yes, or given unasked: then
    ``requested_by_sub`` is null and any operator may use it) for a window of time."""

    __tablename__ = "access_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id", ondelete="CASCADE"))
    # pending | granted | denied | withdrawn | revoked; lapsed and expired are computed.
    status: Mapped[str] = mapped_column(String(16))
    requested_by_sub: Mapped[str | None] = mapped_column(String(256))  # null: offered unasked
    requested_by: Mapped[Json | None]  # the actor object: name, email, for the user to read
    reason: Mapped[str | None] = mapped_column(String(1000))
    mode: Mapped[str] = mapped_column(String(16))  # the most it allows: read_only | full
    session_max_duration: Mapped[int]  # seconds of impersonation asked for
    expires_at: Mapped[int]  # a pending request lapses then
    granted_until: Mapped[int | None]  # the grant's window ends then
    decided_at: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]

    __table_args__ = (Index("ix_access_requests_user_id", "user_id", "id"),)


class ImpersonationApproval(Base):
    """Four eyes: an operator's impersonation that policy sends to a second operator
    first. Approved, it may be used once, soon; the requester can never approve it."""

    __tablename__ = "impersonation_approvals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    requested_by: Mapped[str] = mapped_column(String(40))  # the operator who asks
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(String(1000))
    mode: Mapped[str] = mapped_column(String(16))
    session_max_duration: Mapped[int]
    why: Mapped[Json]  # {"rules": [...]}: which of ACTAS_APPROVAL_REQUIRED_FOR applied
    # pending | approved | refused | used; expired is computed
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(40))
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    expires_at: Mapped[int]  # pending: undecided by then; approved: unused by then
    actor_token_id: Mapped[str | None] = mapped_column(String(40))  # the ticket it became
    decided_at: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]

    __table_args__ = (Index("ix_impersonation_approvals_status", "status", "id"),)


class Operator(Base):
    """A dashboard account (support staff), distinct from application users."""

    __tablename__ = "operators"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email_address: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # owner | admin | support | viewer
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int]
    updated_at: Mapped[int]


class AuditRecord:
    """What an audit event says, the same whether it is chained or still staged."""

    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[int]
    actor_sub: Mapped[str | None] = mapped_column(String(256))
    user_id: Mapped[str | None] = mapped_column(String(40))
    session_id: Mapped[str | None] = mapped_column(String(40))
    actor_token_id: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(1000))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    data: Mapped[Json]


class AuditEvent(AuditRecord, Base):
    """One entry of the append-only, hash-chained audit log.

    ``seq`` has no gaps: it is assigned under the chain head's lock, not by a
    database sequence, so a missing number means a deleted row. Events are
    written to ``audit_staged`` first and chained here in order.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_actor_sub", "actor_sub", "seq"),
        Index("ix_audit_events_user_id", "user_id", "seq"),
        Index("ix_audit_events_type", "type", "seq"),
        Index("ix_audit_events_occurred_at", "type", "occurred_at"),  # events of a type, by time
    )


class AuditStaged(AuditRecord, Base):
    """An audit event written by the transaction that caused it, not yet in the chain.

    Writers only insert here, so they never wait for one another; the chainer
    (``AuditLog.chain_staged``, right after the writer commits, and the worker
    for leftovers) moves rows into ``audit_events`` in ``id`` order under the
    chain head's lock. ``mac`` (keyed from the instance secret) shows a row
    edited or forged while it waits.
    """

    __tablename__ = "audit_staged"

    # A database-assigned order (SQLite: the rowid; PostgreSQL: a sequence).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    mac: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The single row that orders the chain and remembers its end, locked only by the
    chainer (one short transaction per batch of staged events)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_seq: Mapped[int]
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """How far the audit chain is known to verify, sealed with the chain's own key.

    ``verified``: every event up to ``seq`` was verified, and ``hash`` is that
    event's hash. ``full_pass``: where the background re-verification from the
    first event has got to, and when it last completed. ``mac`` is an HMAC over
    the row keyed from the instance secret, so a database writer cannot move a
    checkpoint past an edit.
    """

    __tablename__ = "audit_checkpoints"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[int | None]
    problem: Mapped[str | None] = mapped_column(String(512))
    mac: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[int]


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    # Empty means every event type.
    event_types: Mapped[Json]
    # The signing secret must be usable, so it is encrypted, not hashed.
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # One sender at a time per endpoint (its deliveries go out in order): the
    # lane is held until lease_until by whichever worker, on any replica, took it.
    lease_until: Mapped[int | None]
    lease_owner: Mapped[str | None] = mapped_column(String(32))  # who holds it: a nonce
    # The circuit breaker: open (nothing sent) until circuit_open_until.
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    circuit_open_until: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]


class MailMessage(Base):
    """An email waiting to be sent (the mail outbox): written in the transaction that
    chains the audit event it tells of, sent by the worker, retried, and sent once
    (``dedupe_key`` is unique; a lease names the one sender)."""

    __tablename__ = "mail_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # which notice
    user_id: Mapped[str | None] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    attempts: Mapped[int]
    next_attempt_at: Mapped[int]
    lease_holder: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]

    __table_args__ = (Index("ix_mail_messages_due", "status", "next_attempt_at"),)


class WebhookDelivery(Base):
    """An event waiting to be (re)delivered to one endpoint: the outbox."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[Json]
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int]
    next_attempt_at: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[int]
    updated_at: Mapped[int]

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # An endpoint's queue, oldest first, and its deliveries listed newest first.
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status", "created_at", "id"),
    )


class RateLimitCounter(Base):
    """How often one key of a rate limit was charged in one window (actas.server.rate_limits)."""

    __tablename__ = "rate_limit_counters"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int]
    expires_at: Mapped[int]  # the window's end

    __table_args__ = (Index("ix_rate_limit_counters_expires_at", "scope", "expires_at"),)


class OperatorSession(Base):
    """A signed-in dashboard operator; the cookie's secret is stored only as a digest."""

    __tablename__ = "operator_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(80), unique=True)
    expire_at: Mapped[int]
    last_active_at: Mapped[int]
    ended_at: Mapped[int | None]
    created_at: Mapped[int]
    # Where it was signed in from, for the operator's list of their sessions.
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # Signed in with a password only so far: "second_factor" (to check) or "enrol" (to set
    # one up, required); nothing else is open meanwhile. Null: fully signed in.
    pending: Mapped[str | None] = mapped_column(String(16))
    # The last second-factor check in this session (step-up before impersonating).
    second_factor_at: Mapped[int | None]
    second_factor_kind: Mapped[str | None] = mapped_column(String(16))


class MachineClient(Base):
    """An application's own admin tool, allowed to start impersonations through the token
    endpoint (RFC 8693) without the Backend API's secret key: its secret is stored as a
    digest, its rights are scoped, it can be revoked."""

    __tablename__ = "machine_clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the client_id
    name: Mapped[str] = mapped_column(String(200))
    secret_digest: Mapped[str | None] = mapped_column(String(80))  # client_secret_post/basic
    # private_key_jwt (RFC 7523 §2.2): the public key, PEM, its assertions are checked with
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    may_impersonate_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    may_start_full: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int]
    last_used_at: Mapped[int | None]
    revoked_at: Mapped[int | None]


class OperatorFactor(Base):
    """An operator's second factor. TOTP: the shared secret, sealed with the instance
    secret, and the last time step used (a code is good once)."""

    __tablename__ = "operator_factors"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # totp
    label: Mapped[str] = mapped_column(String(100))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_step: Mapped[int | None]
    created_at: Mapped[int]
    last_used_at: Mapped[int | None]


class OperatorRecoveryCode(Base):
    """A one-time recovery code of an operator, stored as a digest only."""

    __tablename__ = "operator_recovery_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(80), unique=True)
    used_at: Mapped[int | None]
    created_at: Mapped[int]


class OperatorPasskey(Base):
    """A passkey (WebAuthn credential) of an operator: its id and public key as the
    authenticator gave them, and its signature counter (a clone shows as a counter that
    goes back)."""

    __tablename__ = "operator_passkeys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[str] = mapped_column(String(100))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int]
    last_used_at: Mapped[int | None]


class SpentNonce(Base):
    """A one-time value already used (a passkey challenge, a client assertion's ``jti``),
    kept until it would have expired anyway, so that it is accepted once."""

    __tablename__ = "spent_nonces"

    digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    expire_at: Mapped[int] = mapped_column(BigInteger, index=True)
