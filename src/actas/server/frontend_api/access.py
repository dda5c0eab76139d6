"""``/v1/me/access…``: the signed-in user's say in impersonations of their account.

Their preference (allowed, ask, never), the access requests waiting for their
answer, and the grants they gave: grant, deny, revoke, or offer access unasked.
None of it is open to an impersonation of any mode: an impersonator must not
answer for the user (each refusal is audited).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from actas.server.frontend_api.me import own_account
from actas.server.frontend_api.responses import Envelope
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin, trusted_origin
from actas.server.impersonation import access_requests, consent, preferences
from actas.server.resources import AccessRequestObject, access_request_object

router = APIRouter(tags=["Frontend API"])
HOUR = 3600


class AccessObject(BaseModel):
    object: Literal["impersonation_access"] = "impersonation_access"
    # What applies now (the user's own, or the instance's default when they set none).
    impersonation_preference: Literal["allowed", "ask", "never"]
    default_preference: Literal["allowed", "ask", "never"]
    requests: list[AccessRequestObject]  # newest first: waiting, granted, answered


def _access(request: Request) -> AccessObject:
    instance = instance_of(request)
    now = instance.now_ms()
    with own_account(instance, request, "read the access requests") as (db, _session, user):
        rows = access_requests.of_user(db, user.id)
        return AccessObject(
            impersonation_preference=consent.preference_of(user, instance.settings),
            default_preference=consent.parse_preference(
                instance.settings.impersonation_preference_default),
            requests=[access_request_object(r, now) for r in rows])


@router.get("/v1/me/access", response_model=Envelope[AccessObject],
            summary="My impersonation preference, the access requests waiting for my answer, "
            "and the grants I gave")
def get_access(request: Request) -> Envelope[AccessObject]:
    return Envelope(response=_access(request), client=None)


class PreferenceBody(RequestBody):
    impersonation_preference: Literal["allowed", "ask", "never"] | None = Field(
        description="allowed, ask or never; null goes back to the instance's default")


@router.patch("/v1/me/access", response_model=Envelope[AccessObject],
              summary="Set my impersonation preference (not while impersonated)")
def set_preference(request: Request, body: PreferenceBody,
                   _origin: str = Depends(trusted_origin)) -> Envelope[AccessObject]:
    instance = instance_of(request)
    with own_account(instance, request, "change the impersonation preference") as (
            db, _session, user):
        preferences.set_preference(db, instance, user, body.impersonation_preference,
                                   origin=request_origin(request), by="user")
    return Envelope(response=_access(request), client=None)


class GrantBody(RequestBody):
    duration_in_seconds: Annotated[int, Field(ge=60, le=366 * 24 * HOUR)] = 24 * HOUR


class OfferBody(GrantBody):
    mode: Literal["read_only", "full"] = "read_only"
    note: Annotated[str, Field(max_length=1000)] | None = None


def _answer(request: Request, action: str, request_id: str,
            seconds: int | None = None) -> Envelope[AccessRequestObject]:
    instance = instance_of(request)
    origin = request_origin(request)
    with own_account(instance, request, f"{action} an access request") as (db, _session, user):
        if action == "grant":
            assert seconds is not None
            row = access_requests.grant(db, instance, user=user, request_id=request_id,
                                        seconds=seconds, origin=origin)
        elif action == "deny":
            row = access_requests.deny(db, instance, user=user, request_id=request_id,
                                       origin=origin)
        else:
            row = access_requests.revoke(db, instance, user=user, request_id=request_id,
                                         origin=origin)
        return Envelope(response=access_request_object(row, instance.now_ms()), client=None)


@router.post("/v1/me/access_requests/{request_id}/grant",
             response_model=Envelope[AccessRequestObject],
             summary="Grant an access request for a window of time")
def grant(request: Request, request_id: str, body: GrantBody,
          _origin: str = Depends(trusted_origin)) -> Envelope[AccessRequestObject]:
    return _answer(request, "grant", request_id, body.duration_in_seconds)


@router.post("/v1/me/access_requests/{request_id}/deny",
             response_model=Envelope[AccessRequestObject], summary="Deny an access request")
def deny(request: Request, request_id: str,
         _origin: str = Depends(trusted_origin)) -> Envelope[AccessRequestObject]:
    return _answer(request, "deny", request_id)


@router.post("/v1/me/access_requests/{request_id}/revoke",
             response_model=Envelope[AccessRequestObject],
             summary="Revoke a grant; a live impersonation under it ends now")
def revoke(request: Request, request_id: str,
           _origin: str = Depends(trusted_origin)) -> Envelope[AccessRequestObject]:
    return _answer(request, "revoke", request_id)


@router.post("/v1/me/access_grants", response_model=Envelope[AccessRequestObject],
             summary="Let any operator impersonate me for a while, unasked")
def offer(request: Request, body: OfferBody,
          _origin: str = Depends(trusted_origin)) -> Envelope[AccessRequestObject]:
    instance = instance_of(request)
    with own_account(instance, request, "offer access") as (db, _session, user):
        row = access_requests.offer(db, instance, user=user, seconds=body.duration_in_seconds,
                                    mode=body.mode, note=body.note,
                                    origin=request_origin(request))
        return Envelope(response=access_request_object(row, instance.now_ms()), client=None)
