"""``POST /v1/client/sign_ins``: sign in with an identifier and a password."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from actas.server import sessions, users
from actas.server.frontend_api.responses import Envelope, client_or_new, render_client
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin, trusted_origin

router = APIRouter(tags=["Frontend API"])


class SignInBody(RequestBody):
    strategy: Literal["password"] = "password"
    identifier: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(max_length=1024)]


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
    identifier: str
    user_data: None = None
    created_session_id: str
    abandon_at: int


@router.post("/v1/client/sign_ins", response_model=Envelope[SignInObject],
             summary="Sign in with a password")
def sign_in(request: Request, response: Response, body: SignInBody,
            _origin: str = Depends(trusted_origin)) -> Envelope[SignInObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        user = users.find_by_identifier(db, body.identifier)
        # Verified even when the user does not exist (against a dummy hash),
        # so the answer's timing does not reveal which accounts exist.
        instance.passwords.verify(user.password_hash if user else None, body.password)
        assert user is not None  # verify() raised otherwise
        users.require_not_banned(user)
        client = client_or_new(db, instance, request, response)
        session = sessions.create(db, instance, user=user, client=client,
                                  origin=request_origin(request))
        attempt = SignInObject(id=session.id.replace("sess_", "sia_"),
                               identifier=body.identifier, created_session_id=session.id,
                               abandon_at=session.abandon_at)
        return Envelope(response=attempt,
                        client=render_client(db, client, instance.now_ms()))
