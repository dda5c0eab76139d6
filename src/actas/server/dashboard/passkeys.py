"""Passkeys in the dashboard: adding one (the first one also gives recovery codes),
signing in with one alone, removing one. A passkey also answers the second step of a
password sign-in and the step-up check (``second_factor``).

The browser side is ``dashboard.js`` (``[data-passkey]`` buttons): it fetches the options
from ``/dashboard/passkeys/options``, asks the authenticator, and submits the answer in
an ordinary form, with its CSRF token like every other form.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from actas._errors import FormParamInvalid, InvalidCredentials, PermissionDenied
from actas.server import operator_factors, operator_passkeys
from actas.server.audit import Record
from actas.server.dashboard import operator_sessions, pages
from actas.server.dashboard.sign_in import next_page, sign_in_page
from actas.server.db.schema import Operator
from actas.server.http.origins import instance_of, request_origin

router = APIRouter()
log = logging.getLogger(__name__)
CredentialField = Annotated[str, Form(max_length=operator_passkeys.MAX_RESPONSE_CHARS)]
TokenField = Annotated[str, Form(max_length=400)]
NextField = Annotated[str, Form(alias="next", max_length=2000)]


@router.get("/dashboard/passkeys/options")
def options(request: Request, purpose: str) -> Response:
    """The options for ``navigator.credentials.create`` (``register``) or ``.get``
    (``sign_in``: any passkey of this site; ``check``: the operator's own)."""
    instance = instance_of(request)
    if purpose not in operator_passkeys.PURPOSES:
        raise FormParamInvalid("purpose is register, sign_in or check.", param_name="purpose")
    body: dict[str, Any]
    with instance.transaction() as db:
        if purpose == operator_passkeys.SIGN_IN:
            nonce = request.cookies.get(operator_sessions.SIGN_IN_COOKIE, "")
            if not nonce:
                raise PermissionDenied("Open the sign-in page first.")
            body = operator_passkeys.authentication_options(db, instance, purpose, nonce)
        else:
            signed_in = operator_sessions.current(db, instance, request, allow_pending=True)
            if purpose == operator_passkeys.REGISTER:
                if signed_in.pending == "second_factor":
                    raise PermissionDenied("Finish signing in first.")
                body = operator_passkeys.registration_options(
                    db, instance, signed_in.operator, signed_in.session_id)
            else:
                body = operator_passkeys.authentication_options(
                    db, instance, purpose, signed_in.session_id, signed_in.operator)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/dashboard/account/passkeys")
def add(request: Request, csrf_token: Annotated[str, Form(max_length=128)],
        token: TokenField, credential: CredentialField,
        label: Annotated[str, Form(max_length=200)] = "",
        next_url: NextField = "") -> Response:
    instance = instance_of(request)
    origin = request_origin(request)
    with instance.transaction() as db:
        # Another way in is added only by who just proved an existing one.
        change = operator_sessions.begin_factor_change(db, instance, request, csrf_token,
                                                       back="/dashboard/account")
    signed_in, first = change.signed_in, change.first
    if change.go_first is not None:
        return pages.redirect(request, change.go_first)
    try:
        with instance.transaction() as db:
            operator = signed_in.operator
            operator_passkeys.register(db, instance, operator, signed_in.session_id,
                                       token=token, credential=credential, label=label,
                                       origin=origin)
            if first:  # the first factor completes a sign-in waiting for one
                operator_sessions.second_factor_checked(db, instance, signed_in,
                                                        operator_passkeys.PASSKEY)
            codes = [] if operator_factors.recovery_codes_left(db, operator.id) else \
                operator_factors.new_recovery_codes(db, instance, operator)
    except InvalidCredentials as refused:
        instance.record_alone(Record(type="operator.second_factor_failed",
                                     actor_sub=signed_in.operator.id, origin=origin,
                                     data={"kind": operator_passkeys.PASSKEY}))
        log.info("a passkey was refused: %s", refused.message)
        if signed_in.pending == "enrol":
            return pages.redirect(request, "/dashboard/account/second_factor?passkey=failed")
        return pages.redirect(request, "/dashboard/account?notice=passkey_failed")
    if codes:  # the first factor: the way back in if the passkey is lost
        return pages.render(request, "recovery_codes.html", me=signed_in, codes=codes,
                            next_url=next_page(next_url))
    return pages.redirect(request, next_page(next_url or "/dashboard/account?notice=passkey"))


@router.post("/dashboard/account/passkeys/{passkey_id}/remove")
def remove(request: Request, passkey_id: str,
           csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        if operator_sessions.factor_change_due(db, instance, signed_in):
            return pages.redirect(request, operator_sessions.step_up_page("/dashboard/account"))
        # The operator's row locked: two removals at once cannot both see the other's
        # passkey still there and leave none.
        db.execute(select(Operator.id).where(Operator.id == signed_in.operator.id)
                   .with_for_update())
        operator_passkeys.remove(db, instance, signed_in.operator, passkey_id,
                                 origin=request_origin(request))
        if operator_factors.required_for(signed_in.operator, instance.settings) and \
                not operator_factors.has_any(db, signed_in.operator.id):
            raise PermissionDenied("This is your only second factor, and your role needs "
                                   "one: add another passkey or an authenticator app first.")
    return pages.redirect(request, "/dashboard/account?notice=passkey_removed")


@router.post("/dashboard/sign_in/passkey")
def sign_in_with_passkey(request: Request, token: TokenField, credential: CredentialField,
                         csrf_token: Annotated[str, Form(max_length=128)] = "",
                         next_url: NextField = "") -> Response:
    """Signing in with a passkey alone: it is both factors (the device, and the PIN or
    biometrics that unlock it)."""
    instance = instance_of(request)
    origin = request_origin(request)
    operator_sessions.check_sign_in_csrf(instance, request, csrf_token)
    nonce = request.cookies.get(operator_sessions.SIGN_IN_COOKIE, "")
    try:
        with instance.transaction() as db:
            passkey = operator_passkeys.authenticate(
                db, instance, purpose=operator_passkeys.SIGN_IN, bound_to=nonce, token=token,
                credential=credential)
            operator = db.get(Operator, passkey.operator_id)
            if operator is None or operator.disabled:
                raise InvalidCredentials("That passkey is not registered here.")
            response = pages.redirect(request, next_page(next_url))
            operator_sessions.start(db, instance, operator, response, origin,
                                    second_factor_kind=operator_passkeys.PASSKEY)
            instance.record(db, Record(type="operator.signed_in", actor_sub=operator.id,
                                       origin=origin,
                                       data={"email": operator.email_address,
                                             "with": operator_passkeys.PASSKEY,
                                             "factor_id": passkey.id}))
            return response
    except InvalidCredentials as refused:
        instance.record_alone(Record(type="operator.sign_in_failed", origin=origin,
                                     data={"with": operator_passkeys.PASSKEY}))
        return sign_in_page(request, status_code=401, next_url=next_url,
                            error=refused.message)
