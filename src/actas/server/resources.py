"""The JSON objects of the HTTP APIs, in Clerk's shapes.

Clerk's Backend SDKs validate responses strictly, so every field Clerk's
object has is present: ``[]``, ``false`` or ``null`` where actas has no such
feature. Timestamps are Unix milliseconds. These models are also what the
served OpenAPI document describes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from actas.server.db.schema import (
    AccessRequest,
    ActorToken,
    AuditEvent,
    Client,
    EmailAddress,
    User,
)
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation.consent import grant_status
from actas.server.roles import READ_ONLY, Mode
from actas.server.sessions import Status, effective_status


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Verification(Resource):
    object: Literal["verification_admin"] = "verification_admin"
    status: Literal["verified"]
    strategy: Literal["admin"]
    attempts: int | None = None
    expire_at: int | None = None


class EmailAddressObject(Resource):
    id: str
    object: Literal["email_address"] = "email_address"
    email_address: str
    reserved: bool = False
    verification: Verification
    linked_to: list[dict[str, Any]] = []
    matches_sso_connection: bool = False
    created_at: int
    updated_at: int


class FrontendUserObject(Resource):
    """A user as the browser may see it: everything but ``private_metadata``.

    ``private_metadata`` is for the application's backend only (as in Clerk);
    the Frontend API, read by any script on an allowed origin and by an
    impersonator, never carries it.
    """

    id: str
    object: Literal["user"] = "user"
    external_id: str | None
    primary_email_address_id: str | None
    primary_phone_number_id: None = None
    primary_web3_wallet_id: None = None
    username: str | None
    first_name: str | None
    last_name: str | None
    profile_image_url: str = ""
    image_url: str = ""
    has_image: bool = False
    public_metadata: dict[str, Any]
    unsafe_metadata: dict[str, Any]
    email_addresses: list[EmailAddressObject]
    phone_numbers: list[dict[str, Any]] = []
    web3_wallets: list[dict[str, Any]] = []
    passkeys: list[dict[str, Any]] = []
    password_enabled: bool
    two_factor_enabled: bool = False
    totp_enabled: bool = False
    backup_code_enabled: bool = False
    mfa_enabled_at: int | None = None
    mfa_disabled_at: int | None = None
    external_accounts: list[dict[str, Any]] = []
    saml_accounts: list[dict[str, Any]] = []
    enterprise_accounts: list[dict[str, Any]] = []
    last_sign_in_at: int | None
    banned: bool
    locked: bool = False
    lockout_expires_in_seconds: int | None = None
    verification_attempts_remaining: int | None = None
    delete_self_enabled: bool = True
    create_organization_enabled: bool = False
    create_organizations_limit: int | None = None
    last_active_at: int | None
    legal_accepted_at: int | None = None
    locale: str | None = None
    password_last_updated_at: int | None = None
    organization_memberships: list[dict[str, Any]] = []
    protected: bool = False  # actas: only impersonate:protected may impersonate this user
    # actas: allowed | ask | never; null: the instance's default
    # (ACTAS_IMPERSONATION_PREFERENCE_DEFAULT)
    impersonation_preference: Literal["allowed", "ask", "never"] | None = None
    created_at: int
    updated_at: int


class UserObject(FrontendUserObject):
    """A user as the Backend API shows it (Clerk's ``User``)."""

    private_metadata: dict[str, Any]


class DeletedObject(Resource):
    id: str
    object: str
    deleted: Literal[True] = True


class SessionObject(Resource):
    id: str
    object: Literal["session"] = "session"
    user_id: str
    client_id: str
    actor: dict[str, Any] | None
    # actas: read_only or full for an impersonation (the JWT's act_mode); null otherwise.
    impersonation_mode: Mode | None = None
    status: Status
    last_active_organization_id: None = None
    latest_activity: None = None
    last_active_at: int
    expire_at: int
    abandon_at: int
    created_at: int
    updated_at: int


class ClientSessionObject(SessionObject):
    """A session as the Frontend API shows it: with its user embedded."""

    user: FrontendUserObject
    public_user_data: dict[str, Any]
    last_active_token: None = None
    factor_verification_age: list[int] | None = None
    # actas: why this session is an impersonation (the actor token's reason), for the banner.
    impersonation_reason: str | None = None


class ClientObject(Resource):
    id: str
    object: Literal["client"] = "client"
    sessions: list[ClientSessionObject]
    sign_in: None = None
    sign_up: None = None
    last_active_session_id: str | None
    last_authentication_strategy: str | None = None
    cookie_expires_at: int | None = None
    captcha_bypass: bool = False
    created_at: int
    updated_at: int


class TokenObject(Resource):
    object: Literal["token"] = "token"
    jwt: str


class ActorTokenObject(Resource):
    object: Literal["actor_token"] = "actor_token"
    id: str
    status: Literal["pending", "accepted", "revoked"]
    user_id: str
    actor: dict[str, Any]
    token: str | None = None  # the ticket: only in the response that created it
    url: str | None = None  # the accept link: only in the response that created it
    # actas additions
    mode: Mode
    reason: str | None
    # actas: why the user's impersonation preference let it through, and the grant used
    consent: Literal["not_needed", "granted", "override"] = "not_needed"
    access_request_id: str | None = None
    expires_at: int
    session_max_duration_in_seconds: int
    session_id: str | None
    created_at: int
    updated_at: int


class AuditEventObject(Resource):
    object: Literal["audit_event"] = "audit_event"
    id: str
    seq: int
    type: str
    occurred_at: int
    actor_sub: str | None
    user_id: str | None
    session_id: str | None
    actor_token_id: str | None
    reason: str | None
    ip_address: str | None
    user_agent: str | None
    data: dict[str, Any]
    hash: str
    prev_hash: str


class ErrorObject(Resource):
    code: str
    message: str
    long_message: str
    meta: dict[str, Any]


class ErrorEnvelope(Resource):
    errors: list[ErrorObject]
    clerk_trace_id: str | None = None


def email_address_object(row: EmailAddress) -> EmailAddressObject:
    return EmailAddressObject(
        id=row.id,
        email_address=row.email_address,
        verification=Verification(status="verified", strategy="admin"),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _user_fields(row: User) -> dict[str, Any]:
    return dict(
        id=row.id,
        external_id=row.external_id,
        primary_email_address_id=row.primary_email_address_id,
        username=row.username,
        first_name=row.first_name,
        last_name=row.last_name,
        public_metadata=row.public_metadata,
        unsafe_metadata=row.unsafe_metadata,
        email_addresses=[email_address_object(e) for e in row.email_addresses],
        password_enabled=row.password_hash is not None,
        last_sign_in_at=row.last_sign_in_at,
        banned=row.banned,
        protected=row.protected,
        impersonation_preference=row.impersonation_preference,
        last_active_at=row.last_active_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def user_object(row: User) -> UserObject:
    return UserObject(**_user_fields(row), private_metadata=row.private_metadata)


def frontend_user_object(row: User) -> FrontendUserObject:
    return FrontendUserObject(**_user_fields(row))


def public_user_data(row: User) -> dict[str, Any]:
    primary = next((e.email_address for e in row.email_addresses
                    if e.id == row.primary_email_address_id), None)
    return {
        "first_name": row.first_name,
        "last_name": row.last_name,
        "image_url": "",
        "has_image": False,
        "identifier": primary or row.username or row.id,
        "user_id": row.id,
    }


def _session_fields(row: SessionRow, now_ms: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "user_id": row.user_id,
        "client_id": row.client_id,
        "actor": row.actor,
        "impersonation_mode": (row.impersonation_mode or READ_ONLY) if row.actor_sub is not None
        else None,
        "status": effective_status(row, now_ms),
        "last_active_at": row.last_active_at,
        "expire_at": row.expire_at,
        "abandon_at": row.abandon_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def session_object(row: SessionRow, now_ms: int) -> SessionObject:
    return SessionObject(**_session_fields(row, now_ms))


def client_object(row: Client, sessions: list[tuple[SessionRow, User, str | None]],
                  now_ms: int) -> ClientObject:
    return ClientObject(
        id=row.id,
        sessions=[
            ClientSessionObject(**_session_fields(s, now_ms), user=frontend_user_object(u),
                                public_user_data=public_user_data(u),
                                impersonation_reason=reason)
            for s, u, reason in sessions
        ],
        last_active_session_id=row.last_active_session_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def actor_token_object(row: ActorToken, *, token: str | None = None, url: str | None = None
                       ) -> ActorTokenObject:
    return ActorTokenObject(
        id=row.id, status=row.status, user_id=row.user_id,
        actor=row.actor, token=token, url=url, mode=row.mode, reason=row.reason,
        consent=row.consent, access_request_id=row.access_request_id,
        expires_at=row.expires_at,
        session_max_duration_in_seconds=row.session_max_duration, session_id=row.session_id,
        created_at=row.created_at, updated_at=row.updated_at,
    )


class AccessRequestObject(BaseModel):
    """An access request or grant: what the user is asked, or what they allowed."""

    object: Literal["access_request"] = "access_request"
    id: str
    user_id: str
    # pending | granted | denied | withdrawn | revoked | lapsed (never answered) |
    # expired (the grant's window is over)
    status: str
    requested_by: dict[str, Any] | None  # the actor who asked; null: offered unasked
    reason: str | None
    mode: str  # the most it allows: read_only | full
    session_max_duration_in_seconds: int
    expires_at: int  # a pending request lapses then
    granted_until: int | None
    decided_at: int | None
    created_at: int
    updated_at: int


def access_request_object(row: AccessRequest, now_ms: int) -> AccessRequestObject:
    return AccessRequestObject(
        id=row.id, user_id=row.user_id, status=grant_status(row, now_ms),
        requested_by=row.requested_by, reason=row.reason, mode=row.mode,
        session_max_duration_in_seconds=row.session_max_duration, expires_at=row.expires_at,
        granted_until=row.granted_until, decided_at=row.decided_at, created_at=row.created_at,
        updated_at=row.updated_at)


def audit_event_object(row: AuditEvent) -> AuditEventObject:
    return AuditEventObject(
        id=row.id, seq=row.seq, type=row.type, occurred_at=row.occurred_at,
        actor_sub=row.actor_sub, user_id=row.user_id, session_id=row.session_id,
        actor_token_id=row.actor_token_id, reason=row.reason, ip_address=row.ip_address,
        user_agent=row.user_agent, data=row.data, hash=row.hash, prev_hash=row.prev_hash,
    )
