"""``POST /v1/client/sign_ins``: sign in with a password, or with an actor token's ticket."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session as Db

from actas._errors import (
    FormParamInvalid,
    InvalidCredentials,
)
from actas.server import rate_limits, sessions, users
from actas.server.audit import Record
from actas.server.db.schema import Client, User
from actas.server.db.schema import Session as SessionRow
from actas.server.frontend_api import read_only
from actas.server.frontend_api.responses import Envelope, client_or_new, render_client
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin, trusted_origin
from actas.server.impersonation import redemption
from actas.server.instance import Instance

router = APIRouter(tags=["Frontend API"])

SIGN_IN_FAILED = "user.sign_in_failed"


class SignInBody(RequestBody):
    strategy: Literal["password", "ticket"] = "password"
    identifier: Annotated[str, Field(min_length=1, max_length=320)] | None = None
    password: Annotated[str, Field(max_length=1024)] | None = None
    ticket: Annotated[str, Field(max_length=256)] | None = Field(
        None, description="The actor token's `token`, for the ticket strategy.")

    @model_validator(mode="after")
    def _fields_of_the_strategy(self) -> SignInBody:
        needed = ("identifier", "password") if self.strategy == "password" else ("ticket",)
        for name in needed:
            if getattr(self, name) is None:
                raise FormParamInvalid(f"{name} is required for the {self.strategy} strategy.",
                                       code="form_param_missing", param_name=name)
        return self


class SignInObject(BaseModel):
    """A completed sign-in attempt, with Clerk's fields (``null`` where actas has none)."""

    id: str
    object: Literal["sign_in_attempt"] = "sign_in_attempt"
    status: Literal["complete"] = "complete"
    supported_identifiers: list[str] = ["email_address", "username"]
    supported_first_factors: list[dict[str, str]] | None = None
    supported_second_factors: list[dict[str, str]] | None = None
    first_factor_verification: None = None
    second_factor_verification: None = None
    identifier: str | None
    user_data: None = None
    created_session_id: str
    abandon_at: int


@router.post("/v1/client/sign_ins", response_model=Envelope[SignInObject],
             summary="Sign in with a password, or redeem an impersonation ticket")
def sign_in(request: Request, response: Response, body: SignInBody,
            _origin: str = Depends(trusted_origin)) -> Envelope[SignInObject]:
    instance = instance_of(request)
    origin = request_origin(request)
    if body.strategy == "ticket":
        assert body.ticket is not None
        # Rate-limited, and a refusal is audited, by redemption.attempt.
        with redemption.attempt(instance, ticket=body.ticket, origin=origin) as settle, \
                instance.transaction() as db:
            client = client_or_new(db, instance, request, response)
            redeemed = redemption.redeem(db, instance, ticket=body.ticket, client=client,
                                         origin=origin)
            settle(db)
            return _complete(db, instance, client, redeemed.session, redeemed.user,
                             identifier=None)
    assert body.identifier is not None and body.password is not None
    identifier = body.identifier.strip().lower()
    with instance.transaction() as db:
        current = read_only.active_session(db, instance, request)
    read_only.require_writable(instance, request, current, "sign in")
    with instance.transaction() as db:
        # Reserve a failure in the limits first (see rate_limits), counted per
        # account: a username and each email address share one budget.
        user = users.find_by_identifier(db, identifier)
        if user is not None:
            # Before the password, so the answer never confirms a banned user's password.
            users.require_not_banned(user)
        stored_hash = user.password_hash if user else None
        charge = rate_limits.USER_SIGN_IN.spend(
            db, account=user.id if user else identifier, origin=origin,
            now_ms=instance.now_ms())
    try:
        # Outside any transaction. Verified even when the user does not exist
        # (against a dummy hash), so the timing does not reveal which accounts exist.
        instance.passwords.verify(stored_hash, body.password)
    except InvalidCredentials:
        instance.record_alone(Record(
            # Nobody is established as the actor of a failed sign-in: what was tried is data.
            type=SIGN_IN_FAILED, user_id=user.id if user else None, origin=origin,
            data={"identifier": identifier}))
        raise
    with instance.transaction() as db:
        rate_limits.refund(db, charge)  # not a failure; undone if this transaction fails
        user = users.find_by_identifier(db, identifier)
        if user is None or user.password_hash != stored_hash:
            raise InvalidCredentials()  # the password changed while it was being checked
        users.require_not_banned(user)
        client = client_or_new(db, instance, request, response)
        session = sessions.create(db, instance, user=user, client=client, origin=origin)
        return _complete(db, instance, client, session, user, identifier=body.identifier)


def _complete(db: Db, instance: Instance, client: Client, session: SessionRow, user: User,
              identifier: str | None) -> Envelope[SignInObject]:
    attempt = SignInObject(id=session.id.replace("sess_", "sia_"), identifier=identifier,
                           created_session_id=session.id, abandon_at=session.abandon_at)
    return Envelope(response=attempt,
                    client=render_client(db, client, instance.now_ms(), loaded=(user,)))
