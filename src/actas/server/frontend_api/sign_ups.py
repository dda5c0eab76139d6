"""``POST /v1/client/sign_ups``: create an account with a password and sign in."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from actas.server import rate_limits, sessions, users
from actas.server.frontend_api import read_only
from actas.server.frontend_api.responses import Envelope, client_or_new, render_client
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin, trusted_origin

router = APIRouter(tags=["Frontend API"])


class SignUpBody(RequestBody):
    email_address: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=1024)]
    username: Annotated[str, Field(max_length=64)] | None = None
    first_name: Annotated[str, Field(max_length=256)] | None = None
    last_name: Annotated[str, Field(max_length=256)] | None = None
    unsafe_metadata: dict[str, Any] | None = None


class SignUpObject(BaseModel):
    """A completed sign-up attempt, with Clerk's fields (``null`` where actas has none)."""

    id: str
    object: Literal["sign_up_attempt"] = "sign_up_attempt"
    status: Literal["complete"] = "complete"
    required_fields: list[str] = ["email_address", "password"]
    optional_fields: list[str] = ["username", "first_name", "last_name"]
    missing_fields: list[str] = []
    unverified_fields: list[str] = []
    verifications: dict[str, Any] = {}
    username: str | None
    email_address: str
    phone_number: None = None
    web3_wallet: None = None
    password_enabled: bool = True
    first_name: str | None
    last_name: str | None
    custom_action: bool = False
    external_id: None = None
    created_session_id: str
    created_user_id: str
    abandon_at: int
    legal_accepted_at: None = None


@router.post("/v1/client/sign_ups", response_model=Envelope[SignUpObject],
             summary="Sign up with email and password")
def sign_up(request: Request, response: Response, body: SignUpBody,
            _origin: str = Depends(trusted_origin)) -> Envelope[SignUpObject]:
    instance = instance_of(request)
    origin = request_origin(request)
    with instance.transaction() as db:
        current = read_only.active_session(db, instance, request)
    read_only.require_writable(instance, request, current, "sign up")
    with instance.transaction() as db:
        # Every attempt counts: each one hashes a password (64 MiB of argon2id).
        rate_limits.spend(db, [(rate_limits.Budget("sign_up:address",
                                                   instance.settings.sign_ups_per_address),
                                rate_limits.address_of(origin))],
                          now_ms=instance.now_ms(), what="sign-ups from this address")
    password_hash = users.hash_password(instance, body.password)  # outside the write lock
    with instance.transaction() as db:
        user = users.create(
            db, instance,
            email_addresses=[body.email_address],
            username=body.username,
            password_hash=password_hash,
            first_name=body.first_name,
            last_name=body.last_name,
            unsafe_metadata=body.unsafe_metadata,
        )
        client = client_or_new(db, instance, request, response)
        session = sessions.create(db, instance, user=user, client=client, origin=origin)
        attempt = SignUpObject(id=session.id.replace("sess_", "sua_"),
                               email_address=user.email_addresses[0].email_address,
                               username=user.username, first_name=user.first_name,
                               last_name=user.last_name, created_user_id=user.id,
                               created_session_id=session.id, abandon_at=session.abandon_at)
        return Envelope(response=attempt,
                        client=render_client(db, client, instance.now_ms(), loaded=(user,)))
