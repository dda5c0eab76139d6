"""Operators' passkeys (WebAuthn, with the ``webauthn`` library).

A passkey is a second factor on its own terms: the authenticator checks the person
(user verification: PIN or biometrics, required here) and holds a key that never leaves
it. So it signs an operator in by itself, completes a sign-in started with a password,
and answers a step-up check before an impersonation.

The relying party is the dashboard's own public address (``ACTAS_FRONTEND_API_URL``):
its host is the RP ID and its origin the only one accepted. Browsers refuse an IP
address as RP ID, so passkeys need a name (``localhost`` in development).

Challenges are stateless: 32 random bytes, sealed with the instance secret together with
their purpose, what they are bound to (an operator session, or the sign-in form's cookie)
and an expiry. Nothing is written until a response comes back; then the challenge is
spent (``SpentNonce``), so that an answer is accepted once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import webauthn
from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as Db
from webauthn.helpers import base64url_to_bytes, options_to_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from actas._errors import InvalidCredentials, ResourceNotFound
from actas.server import ids
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import Operator, OperatorPasskey, SpentNonce
from actas.server.sealing import Sealer

if TYPE_CHECKING:
    from actas.server.instance import Instance

PASSKEY = "passkey"
REGISTER, SIGN_IN, CHECK = "register", "sign_in", "check"
PURPOSES = (REGISTER, SIGN_IN, CHECK)
CHALLENGE_TTL_MS = 5 * 60_000
MAX_RESPONSE_CHARS = 64_000  # a registration with attestation is a few KB
_TIMEOUT_MS = 120_000  # how long the browser's dialog waits for the person


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the host: what passkeys are scoped to
    origin: str  # scheme://host[:port]: where the ceremonies must run


def relying_party(instance: Instance) -> RelyingParty:
    public = urlsplit(instance.settings.frontend_api_url)
    return RelyingParty(public.hostname or "localhost", f"{public.scheme}://{public.netloc}")


def _sealer(instance: Instance) -> Sealer:
    return Sealer(instance.settings.instance_secret, "operator-passkey-challenge")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _new_challenge(instance: Instance, purpose: str, bound_to: str) -> tuple[bytes, str]:
    """A fresh challenge and its sealed form (what the browser sends back with its answer)."""
    challenge = os.urandom(32)
    expires = instance.now_ms() + CHALLENGE_TTL_MS
    sealed = _sealer(instance).seal(challenge + expires.to_bytes(8, "big"),
                                    bound_to=f"{purpose}:{bound_to}")
    return challenge, _b64(sealed)


def _spend_challenge(db: Db, instance: Instance, token: str, purpose: str,
                     bound_to: str) -> bytes:
    """The challenge behind ``token``, once: a second use, another purpose or browser,
    a tampered or an expired one raise ``InvalidCredentials``."""
    refused = InvalidCredentials("That passkey answer has expired or was already used. "
                                 "Try again.")
    try:
        opened = _sealer(instance).open(base64url_to_bytes(token[:200]),
                                        bound_to=f"{purpose}:{bound_to}")
    except (InvalidTag, ValueError):
        raise refused from None
    challenge, expires = opened[:32], int.from_bytes(opened[32:], "big")
    now = instance.now_ms()
    if now >= expires:
        raise refused
    try:
        with db.begin_nested():  # a savepoint: a duplicate does not abort the transaction
            db.add(SpentNonce(digest="webauthn:" + hashlib.sha256(challenge).hexdigest(),
                              expire_at=expires))
    except IntegrityError:
        raise refused from None
    return challenge


def prune_spent(db: Db, now_ms: int) -> None:
    db.execute(delete(SpentNonce).where(SpentNonce.expire_at < now_ms))


def of_operator(db: Db, operator_id: str) -> list[OperatorPasskey]:
    return list(db.scalars(select(OperatorPasskey).where(
        OperatorPasskey.operator_id == operator_id).order_by(OperatorPasskey.created_at)))


def count_of(db: Db, operator_id: str) -> int:
    return db.scalar(select(func.count()).select_from(OperatorPasskey).where(
        OperatorPasskey.operator_id == operator_id)) or 0


def registration_options(db: Db, instance: Instance, operator: Operator,
                         session_id: str) -> dict[str, Any]:
    """What ``navigator.credentials.create`` needs, and the sealed challenge."""
    rp = relying_party(instance)
    challenge, token = _new_challenge(instance, REGISTER, session_id)
    options = webauthn.generate_registration_options(
        rp_id=rp.id, rp_name="actas dashboard", user_id=operator.id.encode(),
        user_name=operator.email_address, user_display_name=operator.name or "",
        challenge=challenge, timeout=_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id)
                             for p in of_operator(db, operator.id)])
    return {"token": token, "publicKey": json.loads(options_to_json(options))}


def authentication_options(db: Db, instance: Instance, purpose: str, bound_to: str,
                           operator: Operator | None = None) -> dict[str, Any]:
    """What ``navigator.credentials.get`` needs: for sign-in, any passkey of this site
    (the browser lists them); for a check, the signed-in operator's own."""
    rp = relying_party(instance)
    challenge, token = _new_challenge(instance, purpose, bound_to)
    allowed = [PublicKeyCredentialDescriptor(id=p.credential_id)
               for p in of_operator(db, operator.id)] if operator is not None else None
    options = webauthn.generate_authentication_options(
        rp_id=rp.id, challenge=challenge, timeout=_TIMEOUT_MS, allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED)
    return {"token": token, "publicKey": json.loads(options_to_json(options))}


def _parsed(credential: str) -> dict[str, Any]:
    if not credential or len(credential) > MAX_RESPONSE_CHARS:
        raise InvalidCredentials("The browser sent no usable passkey answer. Try again.")
    try:
        parsed = json.loads(credential)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidCredentials("The browser sent no usable passkey answer. Try again.")
    return parsed


def register(db: Db, instance: Instance, operator: Operator, session_id: str, *,
             token: str, credential: str, label: str, origin: RequestOrigin
             ) -> OperatorPasskey:
    """Check the browser's answer to ``registration_options`` and keep the new passkey."""
    label = " ".join(label.split())[:100] or "Passkey"
    answer = _parsed(credential)
    challenge = _spend_challenge(db, instance, token, REGISTER, session_id)
    rp = relying_party(instance)
    try:
        verified = webauthn.verify_registration_response(
            credential=answer, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as refused:
        raise InvalidCredentials(f"The passkey was not accepted: {refused}") from None
    taken = db.scalar(select(OperatorPasskey.id).where(
        OperatorPasskey.credential_id == verified.credential_id))
    if taken is not None:
        raise InvalidCredentials("That passkey is already registered.")
    now = instance.now_ms()
    row = OperatorPasskey(id=ids.new_id("oppk", now), operator_id=operator.id,
                          credential_id=verified.credential_id,
                          public_key=verified.credential_public_key,
                          sign_count=verified.sign_count, label=label,
                          backed_up=bool(verified.credential_backed_up), created_at=now,
                          last_used_at=now)
    db.add(row)
    db.flush()
    instance.record(db, Record(type="operator.second_factor_enrolled", actor_sub=operator.id,
                               origin=origin, data={"kind": PASSKEY, "factor_id": row.id,
                                                    "label": label}))
    return row


def authenticate(db: Db, instance: Instance, *, purpose: str, bound_to: str, token: str,
                 credential: str, operator_id: str | None = None) -> OperatorPasskey:
    """Check the browser's answer to ``authentication_options``; return the passkey used
    (its counter moved on). With ``operator_id``, it must be that operator's."""
    answer = _parsed(credential)
    challenge = _spend_challenge(db, instance, token, purpose, bound_to)
    raw_id = answer.get("rawId") or answer.get("id")
    try:
        credential_id = base64url_to_bytes(raw_id) if isinstance(raw_id, str) else b""
    except ValueError:
        credential_id = b""
    passkey = db.scalar(select(OperatorPasskey).where(
        OperatorPasskey.credential_id == credential_id).with_for_update()) \
        if credential_id else None
    if passkey is None or (operator_id is not None and passkey.operator_id != operator_id):
        raise InvalidCredentials("That passkey is not registered here.")
    rp = relying_party(instance)
    try:
        verified = webauthn.verify_authentication_response(
            credential=answer, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as refused:
        raise InvalidCredentials(f"The passkey was not accepted: {refused}") from None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = instance.now_ms()
    return passkey


def remove(db: Db, instance: Instance, operator: Operator, passkey_id: str, *,
           origin: RequestOrigin) -> None:
    row = db.get(OperatorPasskey, passkey_id)
    if row is None or row.operator_id != operator.id:
        raise ResourceNotFound("No such passkey.", passkey_id=passkey_id)
    db.delete(row)
    db.flush()
    instance.record(db, Record(type="operator.second_factor_removed", actor_sub=operator.id,
                               origin=origin, data={"kind": PASSKEY, "factor_id": passkey_id,
                                                    "label": row.label}))

