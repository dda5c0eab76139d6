"""Machine clients: an application's own admin tool, allowed to start impersonations
through the token endpoint (``actas.server.oauth``) with a credential of its own rather
than the Backend API's secret key. The secret (``mcs_…``) is shown once and stored as a
digest; each client's rights are scoped (protected users, full mode) and it can be
revoked. Created and revoked from the command line (``actas machines``).

A client may instead prove itself with a signed assertion (``private_key_jwt``, RFC 7523
§2.2 and OpenID Connect Core §9): it keeps its private key, actas keeps the public one.
An assertion names the client (``iss`` = ``sub`` = client id), the token endpoint or the
issuer as ``aud``, expires within the hour, and carries a ``jti`` that is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as Db

from actas import _jws
from actas._errors import FormParamInvalid, ResourceNotFound
from actas.server import credentials, ids, operators
from actas.server.audit import Record, RequestOrigin
from actas.server.credentials import Secret
from actas.server.db.schema import MachineClient, SpentNonce

if TYPE_CHECKING:
    from actas.server.instance import Instance

CLIENT = "mc"
SECRET_PREFIX = "mcs_"  # noqa: S105  (a purpose prefix, not a secret)
# What a dummy digest is compared against when the client does not exist, so that the
# time taken does not say which client ids exist.
_DUMMY_DIGEST = credentials.digest("mcs_" + "0" * 40)


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_LIFETIME_S = 3600
_MAX_ASSERTION_CHARS = 8000


def load_public_key(pem: str) -> _jws.PublicKey:
    """A client's public key (PEM): RSA of 2048 bits or more, P-256, or Ed25519."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise FormParamInvalid("The public key is not a PEM public key.",
                               param_name="public_key") from None
    if (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048) or \
            (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1") or \
            isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise FormParamInvalid("The public key must be RSA (2048 bits or more), P-256 or "
                           "Ed25519.", param_name="public_key")


def _algorithm_of(key: _jws.PublicKey) -> _jws.Algorithm:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    return "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "EdDSA"


def create(db: Db, instance: Instance, *, name: str, may_impersonate_protected: bool = False,
           may_start_full: bool = False, public_key_pem: str | None = None,
           origin: RequestOrigin, by: str | None = None) -> tuple[MachineClient, Secret | None]:
    """A new client: with a secret (returned, shown once), or, given ``public_key_pem``,
    proving itself with assertions signed by the matching private key (no secret)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise FormParamInvalid("A machine client needs a name (at most 200 characters).",
                               param_name="name")
    if public_key_pem is not None:
        load_public_key(public_key_pem)
    now = instance.now_ms()
    secret = credentials.generate(SECRET_PREFIX) if public_key_pem is None else None
    row = MachineClient(id=ids.new_id(CLIENT, now), name=name,
                        secret_digest=credentials.digest(secret.reveal()) if secret else None,
                        public_key_pem=public_key_pem,
                        may_impersonate_protected=may_impersonate_protected,
                        may_start_full=may_start_full, created_at=now, last_used_at=None,
                        revoked_at=None)
    db.add(row)
    db.flush()
    instance.record(db, Record(type="machine_client.created", origin=origin, actor_sub=by,
                               data={"client_id": row.id, "name": name,
                                     "may_impersonate_protected": may_impersonate_protected,
                                     "may_start_full": may_start_full,
                                     "authentication": "private_key_jwt" if public_key_pem
                                     else "client_secret"}))
    return row, secret


def authenticate(db: Db, instance: Instance, client_id: str, secret: str
                 ) -> MachineClient | None:
    """The client whose id and secret these are, if it is not revoked; else ``None``."""
    row = db.get(MachineClient, client_id) if len(client_id) <= 40 else None
    expected = row.secret_digest if row is not None and row.secret_digest else _DUMMY_DIGEST
    matches = hmac.compare_digest(credentials.digest(secret), expected)
    if row is None or not row.secret_digest or not matches or row.revoked_at is not None:
        return None
    row.last_used_at = instance.now_ms()
    return row


def authenticate_assertion(db: Db, instance: Instance, assertion: str,
                           audiences: set[str]) -> MachineClient | None:
    """The client that signed ``assertion`` (``private_key_jwt``), if everything holds:
    its signature by the client's registered key, ``iss`` = ``sub`` = the client, ``aud``
    among ``audiences``, not expired nor valid for more than an hour, a ``jti`` never seen
    before, and the client not revoked. Else ``None``."""
    verified = _verified(db, assertion)
    if verified is None:
        return None
    row, claims = verified
    now_s, skew = instance.now_ms() // 1000, instance.settings.clock_skew
    if not _claims_hold(claims, audiences, now_s, skew) or row.revoked_at is not None:
        return None
    exp, jti = claims["exp"], claims["jti"]
    try:  # accepted once: a captured assertion cannot be replayed
        with db.begin_nested():
            db.add(SpentNonce(digest="jti:" + hashlib.sha256(
                f"{row.id}:{jti}".encode()).hexdigest(), expire_at=(exp + skew) * 1000))
    except IntegrityError:
        return None
    row.last_used_at = instance.now_ms()
    return row


def _claims_hold(claims: dict[str, Any], audiences: set[str], now_s: int, skew: int) -> bool:
    audience = claims.get("aud")
    named = audience if isinstance(audience, list) else [audience]
    exp, nbf, jti = claims.get("exp"), claims.get("nbf"), claims.get("jti")
    if claims.get("iss") != claims.get("sub"):
        return False
    if not any(isinstance(a, str) and a in audiences for a in named):
        return False
    if not isinstance(exp, int) or not now_s - skew < exp <= \
            now_s + ASSERTION_MAX_LIFETIME_S + skew:
        return False  # expired, or good for longer than an assertion should be
    if isinstance(nbf, int) and nbf > now_s + skew:
        return False
    return isinstance(jti, str) and 8 <= len(jti) <= 200


def _verified(db: Db, assertion: str) -> tuple[MachineClient, dict[str, Any]] | None:
    """The client and the claims of an assertion whose signature is the client's."""
    if len(assertion) > _MAX_ASSERTION_CHARS or assertion.count(".") != 2:
        return None
    header_b64, payload_b64, signature_b64 = assertion.split(".")
    try:
        header = json.loads(_jws.b64url_decode(header_b64))
        claims = json.loads(_jws.b64url_decode(payload_b64))
        signature = _jws.b64url_decode(signature_b64)
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict) \
            or not isinstance(claims.get("sub"), str) or len(claims["sub"]) > 40:
        return None
    row = db.get(MachineClient, claims["sub"])
    if row is None or row.public_key_pem is None:
        return None
    key = load_public_key(row.public_key_pem)
    algorithm = _algorithm_of(key)  # the key's own algorithm, never the header's choice
    if header.get("alg") != algorithm:
        return None
    signing_input = f"{header_b64}.{payload_b64}".encode()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            # Not our token: a client's library may sign with either S (no low-S rule).
            if len(signature) != 64:
                return None
            key.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                            int.from_bytes(signature[32:], "big")),
                       signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            _jws.verify(key, algorithm, signing_input, signature)
    except InvalidSignature:
        return None
    return row, claims


def permissions(client: MachineClient) -> frozenset[str]:
    granted = {operators.IMPERSONATE}
    if client.may_impersonate_protected:
        granted.add(operators.IMPERSONATE_PROTECTED)
    return frozenset(granted)


def revoke(db: Db, instance: Instance, client_id: str, *, origin: RequestOrigin,
           by: str | None = None) -> MachineClient:
    """Revoke a client (``by``: the owner who did, if not the command line): its
    credential stops working, and the impersonations it started, live or pending, end."""
    from actas.server.impersonation import ending  # ending → policy → operators

    row = db.get(MachineClient, client_id)
    if row is None:
        raise ResourceNotFound("No such machine client.", client_id=client_id)
    if row.revoked_at is None:
        row.revoked_at = instance.now_ms()
        instance.record(db, Record(type="machine_client.revoked", origin=origin,
                                   actor_sub=by,
                                   data={"client_id": row.id, "name": row.name}))
        ending.end_all(db, instance, actor_sub=None, client_id=row.id, origin=origin,
                       by=by or "cli", event="machine_client.impersonations_ended")
    return row


def list_all(db: Db) -> list[MachineClient]:
    return list(db.scalars(select(MachineClient).order_by(MachineClient.id)))
