"""``POST /oauth/token``: RFC 8693 token exchange, for impersonation.

An application's admin tool authenticates as a machine client: with its secret
(``client_secret_basic`` or ``client_secret_post``, RFC 6749 §2.3.1) or with an assertion
signed by its private key (``private_key_jwt``, RFC 7523 §2.2), and exchanges:

- ``subject_token``: the user to act as, an actas user id
  (``subject_token_type=urn:actas:params:oauth:token-type:user_id``), or the user's own
  session token whose ``may_act`` (RFC 8693 §4.4) names the actor
  (``urn:ietf:params:oauth:token-type:jwt``; minted by the Frontend API's
  ``…/tokens/may_act``), accepted once;
- ``actor_token`` (optional): the operator the tool acts for, by id
  (``actor_token_type=urn:actas:params:oauth:token-type:operator_id``) or by their own
  token for this tool (``urn:ietf:params:oauth:token-type:jwt``, see
  ``operator_assertions``). Then that
  operator's role applies as in the dashboard, and the tool's own rights too (both must
  allow it). Without one, the tool itself is the actor;
- ``reason``, ``mode`` (``read_only`` by default) and ``duration`` (seconds): actas's
  parameters, as on an actor token;

for (``requested_token_type``):

- an actas ticket (``urn:actas:params:oauth:token-type:ticket``, the default):
  ``access_token`` is the ticket and ``url`` opens the application as the user, exactly
  like an actor token's;
- a session JWT (``urn:ietf:params:oauth:token-type:jwt``), for backend-to-backend work:
  the ticket is redeemed here, into an impersonation of at most five minutes on a client
  no browser holds, so nothing can refresh it; the token is the session token any SDK
  verifies, with ``act``, and lives a session token's lifetime at most.

The same policy, consent, approval rules and audit events apply as everywhere else.
Errors are RFC 6749 §5.2's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as Db
from starlette.responses import JSONResponse

from actas._errors import (
    ActasError,
    FormParamInvalid,
    ImpersonationApprovalRequired,
    ImpersonationConsentRequired,
    ImpersonationForbiddenByUser,
    ImpersonationModeNotPermitted,
    ImpersonationNotPermitted,
    ImpersonationReasonRequired,
    ImpersonationRefused,
    ImpersonationTargetProtected,
    TicketRejected,
)
from actas.server import (
    clients,
    internal_tokens,
    machine_clients,
    operator_assertions,
    operators,
    session_tokens,
    sessions,
)
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import MachineClient, Operator, SpentNonce
from actas.server.db.schema import Session as SessionRow
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import actor_tokens, redemption
from actas.server.impersonation.policy import Requester
from actas.server.roles import FULL, MODES, READ_ONLY

if TYPE_CHECKING:
    from actas.server.instance import Instance

# Not in the OpenAPI document, whose error schema is actas's envelope: this endpoint
# answers RFC 6749's errors instead. docs/api.md describes it.
router = APIRouter(tags=["OAuth"], include_in_schema=False)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105  (a URN)
USER_ID = "urn:actas:params:oauth:token-type:user_id"
OPERATOR_ID = "urn:actas:params:oauth:token-type:operator_id"
TICKET = "urn:actas:params:oauth:token-type:ticket"
JWT = "urn:ietf:params:oauth:token-type:jwt"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _Refusal(Exception):
    """An RFC 6749 §5.2 error for an authenticated client (answered 400, and audited)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="actas"'
    return JSONResponse({"error": error, "error_description": description},
                        status_code=status, headers=headers)


def _client(db: Db, instance: Instance, request: Request, form: dict[str, str]
            ) -> tuple[MachineClient | None, str | None]:
    """The authenticated machine client (or ``None``), and the client id it claimed."""
    if form["client_assertion_type"] or form["client_assertion"]:
        if form["client_assertion_type"] != machine_clients.ASSERTION_TYPE:
            return None, None
        public = instance.settings.frontend_api_url
        client = machine_clients.authenticate_assertion(
            db, instance, form["client_assertion"], {f"{public}/oauth/token", public})
        return client, client.id if client else None
    given = _client_credentials(request, form["client_id"], form["client_secret"])
    if given is None:
        return None, None
    return machine_clients.authenticate(db, instance, *given), given[0][:40]


def _client_credentials(request: Request, client_id: str, client_secret: str
                        ) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (unquote(user), unquote(password)) if sep else None
    if client_id and client_secret:
        return client_id, client_secret
    return None


Field = Annotated[str, Form(max_length=2000)]
AssertionField = Annotated[str, Form(max_length=8000)]
JWT_IMPERSONATION_MAX_S = 300  # a session-shaped JWT's impersonation: five minutes at most


@router.post("/oauth/token", summary="RFC 8693 token exchange: a ticket to act as a user")
def token(request: Request, grant_type: Field = "", subject_token: Field = "",
          subject_token_type: Field = "", actor_token: Field = "", actor_token_type: Field = "",
          requested_token_type: Field = "", reason: Field = "", mode: Field = READ_ONLY,
          duration: Field = "1800", client_id: Field = "", client_secret: Field = "",
          client_assertion_type: Field = "",
          client_assertion: AssertionField = "") -> JSONResponse:
    instance = instance_of(request)
    origin = request_origin(request)
    with instance.transaction() as db:
        client, claimed_id = _client(db, instance, request, {
            "client_id": client_id, "client_secret": client_secret,
            "client_assertion_type": client_assertion_type,
            "client_assertion": client_assertion})
        if client is not None:
            client_name, client_key, rights = (client.name, client.id,
                                               machine_clients.permissions(client))
            may_full = client.may_start_full
    if client is None:
        instance.record_alone(Record(type="oauth.client_refused", origin=origin,
                                     data={"client_id": claimed_id}))
        return _error("invalid_client", "Unknown client, wrong secret, or a revoked client.",
                      401)
    try:
        return _exchange(instance, origin, client_name=client_name, client_key=client_key,
                         rights=rights, may_full=may_full, form={
                             "grant_type": grant_type, "subject_token": subject_token,
                             "subject_token_type": subject_token_type,
                             "actor_token": actor_token, "actor_token_type": actor_token_type,
                             "requested_token_type": requested_token_type,
                             "reason": reason, "mode": mode, "duration": duration})
    except _Refusal as refusal:
        # What the tool was told, in the audit log; a refusal of the impersonation policy
        # itself is there too, as impersonation.refused.
        instance.record_alone(Record(
            type="oauth.exchange_refused", actor_sub=client_key, origin=origin,
            reason=reason[:1000] or None,
            data={"client_id": client_key, "error": refusal.error,
                  "error_description": refusal.description[:500],
                  # Ids only, never a token's text.
                  "subject": subject_token[:100] if subject_token_type == USER_ID else None,
                  "actor": actor_token[:100] if actor_token_type == OPERATOR_ID else None}))
        return _error(refusal.error, refusal.description)


def _exchange(instance: Instance, origin: RequestOrigin, *, client_name: str,
              client_key: str, rights: frozenset[str], may_full: bool,
              form: dict[str, str]) -> JSONResponse:
    grant_type, subject_token = form["grant_type"], form["subject_token"]
    subject_token_type, actor_token = form["subject_token_type"], form["actor_token"]
    actor_token_type = form["actor_token_type"]
    requested_token_type, reason = form["requested_token_type"], form["reason"]
    mode, duration = form["mode"], form["duration"]
    if grant_type != TOKEN_EXCHANGE:
        raise _Refusal("unsupported_grant_type", f"Only {TOKEN_EXCHANGE} is supported.")
    if not subject_token or subject_token_type not in (USER_ID, JWT):
        raise _Refusal("invalid_request",
                       f"subject_token is a user id (subject_token_type={USER_ID}) or the "
                       f"user's session token naming the actor in may_act "
                       f"(subject_token_type={JWT}).")
    if requested_token_type not in ("", TICKET, JWT):
        raise _Refusal("invalid_request", f"requested_token_type is {TICKET} (the default) "
                       f"or {JWT}.")
    if mode not in MODES:
        raise _Refusal("invalid_request", f"mode must be one of {', '.join(MODES)}.")
    if not (duration.isascii() and duration.isdigit()) or not 1 <= int(duration) <= 86400:
        raise _Refusal("invalid_request", "duration is the impersonation's length in seconds, "
                       "1 to 86400.")
    if mode == FULL and not may_full:
        raise _Refusal("unauthorized_client", "This client may start read-only "
                       "impersonations only.")

    actor: dict[str, Any] = {"sub": client_key, "name": client_name, "client_id": client_key}
    requester = Requester("machine", rights)
    step_up: dict[str, Any] | None = None
    if actor_token or actor_token_type:
        if actor_token_type not in (OPERATOR_ID, JWT):
            raise _Refusal("invalid_request",
                           f"actor_token is an operator id (actor_token_type={OPERATOR_ID}) "
                           f"or the operator's own token for this tool ({JWT}).")
        with instance.transaction() as db:
            if actor_token_type == JWT:  # proof from the operator, with their second factor
                try:
                    operator, step_up = operator_assertions.verify(
                        db, instance, actor_token, client_id=client_key)
                except operator_assertions.Refused as refused:
                    raise _Refusal("invalid_grant", str(refused)) from None
            else:
                found = db.get(Operator, actor_token)
                if found is None or found.disabled:
                    raise _Refusal("invalid_grant", "actor_token names no enabled operator.")
                operator = found
            # The operator's role as in the dashboard, and the tool's rights too.
            requester = Requester("operator", operators.permissions(operator) & rights,
                                  operator)
            actor = {"sub": operator.id, "name": operator.name or operator.email_address,
                     "email": operator.email_address, "client_id": client_key}
    wants_jwt = requested_token_type == JWT
    seconds = min(int(duration), JWT_IMPERSONATION_MAX_S) if wants_jwt else int(duration)
    if subject_token_type == JWT:
        subject_token = _subject_of(instance, subject_token, may_act=actor["sub"])
    try:
        issued = actor_tokens.create(
            instance, requester=requester, user_id=subject_token, actor=actor, reason=reason,
            origin=origin, expires_in=300, session_max_duration=seconds, mode=mode,
            step_up=step_up)
        if wants_jwt:
            return _session_jwt(instance, issued.ticket.reveal(), origin)
    except ImpersonationApprovalRequired as pending:
        approval = pending.meta.get("approval_id")
        raise _Refusal("invalid_grant", f"{pending.message} (approval {approval})") from None
    except (ImpersonationNotPermitted, ImpersonationTargetProtected,
            ImpersonationModeNotPermitted) as refused:
        raise _Refusal("unauthorized_client", refused.message) from None
    except (ImpersonationReasonRequired, FormParamInvalid) as bad:
        raise _Refusal("invalid_request", bad.message) from None
    except (ImpersonationConsentRequired, ImpersonationForbiddenByUser,
            ImpersonationRefused, TicketRejected) as refused:
        raise _Refusal("invalid_grant", refused.message) from None
    except ActasError as error:
        raise _Refusal("invalid_request", error.message) from None
    return JSONResponse({
        "access_token": issued.ticket.reveal(), "issued_token_type": TICKET,
        "token_type": "N_A", "expires_in": 300, "url": issued.url,
        "mode": issued.row.mode}, headers=_NO_STORE)


def _session_jwt(instance: Instance, ticket: str, origin: RequestOrigin) -> JSONResponse:
    """Redeem ``ticket`` here, on a new client whose secret nobody is given (so no one can
    refresh the session), and answer with the impersonation's first session token."""
    with instance.transaction() as db:
        client, _never_given = clients.create(db, instance.now_ms())
        session = redemption.redeem(db, instance, ticket=ticket, client=client,
                                    origin=origin).session
        signer = instance.keys.current_signer(db, instance.now_ms())
        minted = session_tokens.mint(instance, session, signer, azp=None)
    return JSONResponse({
        "access_token": minted.jwt, "issued_token_type": JWT, "token_type": "Bearer",
        "expires_in": minted.claims["exp"] - minted.claims["iat"],
        "session_id": session.id, "mode": session.impersonation_mode}, headers=_NO_STORE)


def _subject_of(instance: Instance, token: str, *, may_act: str) -> str:
    """The user whose ``may_act`` token (``frontend_api.client``) this is, if it names
    ``may_act`` (the operator the tool acts for, or the tool itself): signed by this
    instance for that use, not expired, from a session still active, exchanged once."""
    now = instance.now_ms()
    try:
        claims = internal_tokens.read(instance, internal_tokens.MAY_ACT, token)
    except internal_tokens.NotOurs:
        raise _Refusal("invalid_grant", "subject_token is not a may_act token of this "
                       "instance.") from None
    exp = claims.get("exp")
    if not isinstance(exp, int) or now // 1000 >= exp + instance.settings.clock_skew:
        raise _Refusal("invalid_grant", "subject_token has expired.")
    named = claims.get("may_act")
    if not isinstance(named, dict) or named.get("sub") != may_act:
        raise _Refusal("invalid_grant", "subject_token's may_act does not name this "
                       "actor: the user has not authorised it.")
    with instance.transaction() as db:
        row = db.get(SessionRow, str(claims.get("sid")))
        if row is None or row.user_id != claims.get("sub") or row.actor is not None \
                or sessions.effective_status(row, now) != "active":
            raise _Refusal("invalid_grant", "The user's session behind subject_token has "
                           "ended.")
        try:
            with db.begin_nested():
                db.add(SpentNonce(digest="may_act:" + hashlib.sha256(
                    str(claims.get("jti")).encode()).hexdigest(),
                    expire_at=(exp + instance.settings.clock_skew) * 1000))
        except IntegrityError:
            raise _Refusal("invalid_grant", "subject_token was already exchanged.") from None
        return row.user_id
