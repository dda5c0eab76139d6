"""Operators' second factors: TOTP (RFC 6238, with ``pyotp``) and one-time recovery codes.

An operator who may impersonate can become any user, so a password alone is not
enough (``ACTAS_OPERATOR_SECOND_FACTOR=required``, the default outside ``actas dev``).
Enrolment creates an unconfirmed TOTP secret, sealed with the instance secret; the
first correct code confirms it and issues ten recovery codes, shown once and stored
as digests only. A TOTP code is good once: the time step it belongs to is remembered,
and neither it nor an earlier one is accepted again. Codes are checked against the
instance's clock, one step either way for a phone's drift.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as Db

from actas._errors import InvalidCredentials
from actas.server import credentials, ids, operator_passkeys, operators
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import Operator, OperatorFactor, OperatorRecoveryCode
from actas.server.sealing import Sealer

if TYPE_CHECKING:
    from actas.server.instance import Instance
    from actas.server.settings import Settings

TOTP = "totp"
RECOVERY = "recovery_code"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud, typed


def _sealer(instance: Instance) -> Sealer:
    return Sealer(instance.settings.instance_secret, "operator-totp")


def required_for(operator: Operator, settings: Settings) -> bool:
    """Whether this operator must have a second factor: every role that may impersonate,
    unless the instance says it is optional."""
    return settings.operator_second_factor == "required" and \
        operators.IMPERSONATE in operators.permissions(operator)


def has_any(db: Db, operator_id: str) -> bool:
    """Whether the operator has a second factor: a confirmed authenticator app or a
    passkey (``operator_passkeys``)."""
    return bool(confirmed(db, operator_id)) or operator_passkeys.count_of(db, operator_id) > 0


def confirmed(db: Db, operator_id: str) -> list[OperatorFactor]:
    return list(db.scalars(select(OperatorFactor).where(
        OperatorFactor.operator_id == operator_id, OperatorFactor.confirmed.is_(True))))


@dataclass(frozen=True)
class Enrolment:
    factor_id: str
    secret: str  # base32, shown to the operator once, for their authenticator app
    uri: str  # otpauth://totp/…, the QR code's content


def start_totp(db: Db, instance: Instance, operator: Operator) -> Enrolment:
    """A new, unconfirmed TOTP secret (an earlier unconfirmed one is dropped)."""
    db.execute(delete(OperatorFactor).where(OperatorFactor.operator_id == operator.id,
                                            OperatorFactor.confirmed.is_(False)))
    now = instance.now_ms()
    secret = pyotp.random_base32()
    factor_id = ids.new_id("opf", now)
    db.add(OperatorFactor(
        id=factor_id, operator_id=operator.id, kind=TOTP, label="Authenticator app",
        secret_ciphertext=_sealer(instance).seal(secret.encode(), bound_to=factor_id),
        confirmed=False, last_step=None, created_at=now, last_used_at=None))
    db.flush()
    issuer = "actas"
    uri = pyotp.TOTP(secret).provisioning_uri(name=operator.email_address, issuer_name=issuer)
    return Enrolment(factor_id, secret, uri)


def _check_totp(instance: Instance, factor: OperatorFactor, code: str) -> int | None:
    """The time step ``code`` belongs to, if it is right and newer than the last used."""
    code = "".join(c for c in code if c in "0123456789")  # ASCII only: "١٢٣" is no code
    if len(code) != 6:
        return None
    secret = _sealer(instance).open(factor.secret_ciphertext, bound_to=factor.id).decode()
    totp = pyotp.TOTP(secret)
    now_s = instance.now_ms() // 1000
    for offset in (0, -1, 1):
        at = now_s + offset * STEP_SECONDS
        if secrets.compare_digest(totp.at(at), code):
            step = at // STEP_SECONDS
            if factor.last_step is not None and step <= factor.last_step:
                return None  # already used: a code is good once
            return step
    return None


def confirm_totp(db: Db, instance: Instance, operator: Operator, factor_id: str, code: str,
                 *, origin: RequestOrigin) -> list[str]:
    """Confirm the enrolment with a first code; return the new recovery codes (shown once;
    earlier ones stop working)."""
    factor = db.get(OperatorFactor, factor_id, with_for_update=True)
    if factor is None or factor.operator_id != operator.id or factor.confirmed:
        raise InvalidCredentials("Start the set-up again: this one is no longer open.")
    step = _check_totp(instance, factor, code)
    if step is None:
        raise InvalidCredentials("That code is not right. Check the time on your phone, and "
                                 "type the six digits the app shows now.")
    now = instance.now_ms()
    # One authenticator at a time: the new one replaces any other.
    db.execute(delete(OperatorFactor).where(OperatorFactor.operator_id == operator.id,
                                            OperatorFactor.id != factor.id))
    factor.confirmed, factor.last_step, factor.last_used_at = True, step, now
    codes = new_recovery_codes(db, instance, operator)
    instance.record(db, Record(type="operator.second_factor_enrolled", actor_sub=operator.id,
                               origin=origin, data={"kind": TOTP, "factor_id": factor.id}))
    return codes


def new_recovery_codes(db: Db, instance: Instance, operator: Operator) -> list[str]:
    """Ten new recovery codes (returned once, stored as digests); earlier ones stop working."""
    db.execute(delete(OperatorRecoveryCode).where(
        OperatorRecoveryCode.operator_id == operator.id))
    now = instance.now_ms()
    codes = ["-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
                      for _ in range(2)) for _ in range(RECOVERY_CODES)]
    for code in codes:
        db.add(OperatorRecoveryCode(id=ids.new_id("oprc", now), operator_id=operator.id,
                                    code_digest=credentials.digest(code), used_at=None,
                                    created_at=now))
    db.flush()
    return codes


def verify(db: Db, instance: Instance, operator: Operator, code: str, *,
           origin: RequestOrigin) -> str:
    """Check a TOTP code or a recovery code; return which kind passed, or raise
    ``InvalidCredentials`` (audited)."""
    now = instance.now_ms()
    for factor in confirmed(db, operator.id):
        step = _check_totp(instance, factor, code)
        if step is not None:
            # Compare-and-set on the step: two requests racing with one code, one wins.
            won = db.execute(update(OperatorFactor).where(
                OperatorFactor.id == factor.id,
                (OperatorFactor.last_step.is_(None)) | (OperatorFactor.last_step < step))
                .values(last_step=step, last_used_at=now)
                .execution_options(synchronize_session=False))
            if won.rowcount == 1:  # type: ignore[attr-defined]
                return TOTP
    cleaned = code.strip().lower()
    if cleaned:
        used = db.execute(update(OperatorRecoveryCode).where(
            OperatorRecoveryCode.operator_id == operator.id,
            OperatorRecoveryCode.code_digest == credentials.digest(cleaned),
            OperatorRecoveryCode.used_at.is_(None)).values(used_at=now)
            .execution_options(synchronize_session=False))
        if used.rowcount == 1:  # type: ignore[attr-defined]
            instance.record(db, Record(type="operator.recovery_code_used",
                                       actor_sub=operator.id, origin=origin))
            return RECOVERY
    raise InvalidCredentials("That code is not right.")


def recovery_codes_left(db: Db, operator_id: str) -> int:
    return len(db.scalars(select(OperatorRecoveryCode.id).where(
        OperatorRecoveryCode.operator_id == operator_id,
        OperatorRecoveryCode.used_at.is_(None))).all())
