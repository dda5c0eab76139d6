"""The operator's second factor in the dashboard: setting up an authenticator app (with
recovery codes), the second step of sign-in, and the step-up check before impersonating.

Every code entry is rate-limited like a password (``rate_limits.OPERATOR_SIGN_IN``,
per operator), and every failure is audited.
"""

from __future__ import annotations

import io
from typing import Annotated
from urllib.parse import quote, urlencode

import segno
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from actas._errors import InvalidCredentials, TooManyRequests
from actas.server import operator_factors, operator_passkeys, rate_limits
from actas.server.audit import Record
from actas.server.dashboard import operator_sessions, pages
from actas.server.dashboard.sign_in import next_page
from actas.server.http.origins import instance_of, request_origin

router = APIRouter()
FAILED = "operator.second_factor_failed"
CodeField = Annotated[str, Form(max_length=64)]
NextField = Annotated[str, Form(alias="next", max_length=2000)]


def _qr_svg_data_uri(text: str) -> str:
    """The otpauth URI as a QR code, an SVG in a data: URI (the dashboard's CSP allows
    images from data:, and nothing is fetched from elsewhere)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=5, border=2, dark="#1b1f24",
                                     light="#ffffff", xmldecl=False)
    return "data:image/svg+xml;charset=utf-8," + quote(out.getvalue().decode())


@router.get("/dashboard/account/second_factor")
def enrol_form(request: Request) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request, allow_pending=True)
        if signed_in.pending == "second_factor":  # prove the current one first
            return pages.redirect(request, "/dashboard/sign_in/second_factor")
        if operator_sessions.factor_change_due(db, instance, signed_in):  # replacing one
            return pages.redirect(request, operator_sessions.step_up_page(
                "/dashboard/account/second_factor"))
        enrolment = operator_factors.start_totp(db, instance, signed_in.operator)
        return pages.render(request, "second_factor_enrol.html", me=_header(signed_in),
                            signed_in=signed_in, enrolment=enrolment,
                            qr=_qr_svg_data_uri(enrolment.uri),
                            next_url=next_page(request.query_params.get("next")),
                            has_factor=bool(operator_factors.confirmed(
                                db, signed_in.operator.id)),
                            passkey_failed=request.query_params.get("passkey") == "failed")


@router.post("/dashboard/account/second_factor")
def enrol(request: Request, csrf_token: Annotated[str, Form(max_length=128)],
          factor_id: Annotated[str, Form(max_length=40)], code: CodeField,
          next_url: NextField = "") -> Response:
    instance = instance_of(request)
    origin = request_origin(request)
    with instance.transaction() as db:
        change = operator_sessions.begin_factor_change(
            db, instance, request, csrf_token, back="/dashboard/account/second_factor")
    signed_in, first = change.signed_in, change.first
    if change.go_first is not None:
        return pages.redirect(request, change.go_first)
    try:
        with instance.transaction() as db:
            codes = operator_factors.confirm_totp(db, instance, signed_in.operator, factor_id,
                                                  code, origin=origin)
            if first:  # the first factor completes a sign-in waiting for one
                operator_sessions.second_factor_checked(db, instance, signed_in,
                                                        operator_factors.TOTP)
    except InvalidCredentials as wrong:
        with instance.transaction() as db:
            enrolment = operator_factors.start_totp(db, instance, signed_in.operator)
            return pages.render(request, "second_factor_enrol.html", status_code=422,
                                me=_header(signed_in), signed_in=signed_in,
                                enrolment=enrolment, qr=_qr_svg_data_uri(enrolment.uri),
                                error=wrong.message, next_url=next_page(next_url),
                                has_factor=False)
    return pages.render(request, "recovery_codes.html", me=signed_in, codes=codes,
                        next_url=next_page(next_url))


def _header(signed_in: operator_sessions.SignedInOperator
            ) -> operator_sessions.SignedInOperator | None:
    """The page header (navigation) only for a fully signed-in operator."""
    return None if signed_in.pending else signed_in


@router.get("/dashboard/sign_in/second_factor")
@router.get("/dashboard/step_up")
def check_form(request: Request) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request, allow_pending=True)
        next_url = next_page(request.query_params.get("next"))
        if signed_in.pending == "enrol" or not operator_factors.has_any(db, signed_in.operator.id):
            # Nothing to check yet (a role that needs a factor, given since signing in):
            # set one up, then carry on.
            return pages.redirect(request, "/dashboard/account/second_factor?"
                                  + urlencode({"next": next_url}))
        passkeys = operator_passkeys.count_of(db, signed_in.operator.id)
        totp = bool(operator_factors.confirmed(db, signed_in.operator.id))
    return pages.render(request, "second_factor_check.html", me=_header(signed_in),
                        signed_in=signed_in, step_up=signed_in.pending is None,
                        passkeys=passkeys, totp=totp,
                        next_url=next_page(request.query_params.get("next")))


@router.post("/dashboard/sign_in/second_factor")
@router.post("/dashboard/step_up")
def check(request: Request, csrf_token: Annotated[str, Form(max_length=128)],
          code: CodeField = "", next_url: NextField = "",
          token: Annotated[str, Form(max_length=400)] = "",
          credential: Annotated[str, Form(
              max_length=operator_passkeys.MAX_RESPONSE_CHARS)] = "") -> Response:
    """A code (authenticator app or recovery), or a passkey's answer (``credential``)."""
    instance = instance_of(request)
    origin = request_origin(request)
    limited: TooManyRequests | None = None
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request, allow_pending=True)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        try:
            charge = rate_limits.OPERATOR_SIGN_IN.spend(
                db, account=f"second-factor:{signed_in.operator.id}", origin=origin,
                now_ms=instance.now_ms())
        except TooManyRequests as refused:
            limited = refused
    if limited is not None:  # the page reads the operator's factors in a transaction of its own
        return _check_page(request, signed_in, next_url, limited.message, 429)
    try:
        with instance.transaction() as db:
            if credential:
                operator_passkeys.authenticate(
                    db, instance, purpose=operator_passkeys.CHECK,
                    bound_to=signed_in.session_id, token=token, credential=credential,
                    operator_id=signed_in.operator.id)
                kind = operator_passkeys.PASSKEY
            else:
                kind = operator_factors.verify(db, instance, signed_in.operator, code,
                                               origin=origin)
            operator_sessions.second_factor_checked(db, instance, signed_in, kind)
            rate_limits.refund(db, charge)
            instance.record(db, Record(
                type="operator.second_factor_checked", actor_sub=signed_in.operator.id,
                origin=origin, data={"kind": kind, "step_up": signed_in.pending is None}))
    except InvalidCredentials as refused:
        instance.record_alone(Record(type=FAILED, actor_sub=signed_in.operator.id,
                                     origin=origin,
                                     data={"kind": operator_passkeys.PASSKEY} if credential
                                     else {}))
        return _check_page(request, signed_in, next_url, refused.message if credential else
                           "That code is not right. Type the six digits your app shows "
                           "now, or a recovery code.", 401)
    return pages.redirect(request, next_page(next_url))


def _check_page(request: Request, signed_in: operator_sessions.SignedInOperator,
                next_url: str, error: str, status_code: int) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        passkeys = operator_passkeys.count_of(db, signed_in.operator.id)
        totp = bool(operator_factors.confirmed(db, signed_in.operator.id))
    return pages.render(request, "second_factor_check.html", status_code=status_code,
                        me=_header(signed_in), signed_in=signed_in, error=error,
                        step_up=signed_in.pending is None, passkeys=passkeys, totp=totp,
                        next_url=next_page(next_url))
