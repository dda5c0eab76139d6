"""Session-token signing keys: creation, encryption at rest, rotation, JWKS.

Private halves are stored sealed (``actas.server.sealing``) and bound to
their ``kid``.

Rotation publishes before it signs: a new key appears in JWKS at once but
only signs from ``signs_from`` (now + a lead time, so verifiers' JWKS caches
pick it up first), and the key it replaces stays published until every token
it signed has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as Db

from actas._jws import Algorithm, PrivateKey, public_jwk
from actas.server import ids
from actas.server.credentials import Secret
from actas.server.db.schema import SigningKey
from actas.server.sealing import Sealer

# How long a process signs from its copy of the key schedule before re-reading it.
SCHEDULE_TTL_MS = 10_000


@dataclass(frozen=True)
class Signer:
    kid: str
    algorithm: Algorithm
    private_key: PrivateKey


@dataclass(frozen=True)
class _Scheduled:
    signer: Signer
    signs_from: int
    unpublish_at: int | None


class KeyRing:
    """Reads and writes signing keys; caches the signing schedule and decrypted keys.

    Which key signs is decided from the schedule (every key's ``signs_from``
    and ``unpublish_at``), re-read from the database when it is older than
    ``SCHEDULE_TTL_MS`` by the instance's clock: a rotation done on another
    replica is followed within that time, and at the very moment it starts
    signing when its publish lead is longer (``actas keys rotate`` defaults to
    300 s). Decrypted private keys are immutable per ``kid`` and kept.
    """

    def __init__(self, instance_secret: Secret) -> None:
        self._sealer = Sealer(instance_secret, "signing-key-encryption")
        self._private_keys: dict[str, PrivateKey] = {}
        self._schedule: list[_Scheduled] = []
        self._schedule_read_at: int | None = None

    def create(self, db: Db, *, algorithm: Algorithm, now_ms: int, signs_from: int) -> SigningKey:
        private_key = _generate(algorithm)
        kid = ids.new_id(ids.SIGNING_KEY, now_ms)
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        row = SigningKey(
            kid=kid,
            algorithm=algorithm,
            public_jwk=public_jwk(private_key.public_key(), kid=kid, alg=algorithm),
            private_key_ciphertext=self._sealer.seal(der, bound_to=kid),
            signs_from=signs_from,
            unpublish_at=None,
            created_at=now_ms,
        )
        db.add(row)
        db.flush()
        return row

    def ensure_one(self, db: Db, *, algorithm: Algorithm, now_ms: int) -> None:
        """Create a first key that signs at once, if the instance has none."""
        if db.scalar(select(SigningKey.kid).limit(1)) is None:
            self.create(db, algorithm=algorithm, now_ms=now_ms, signs_from=now_ms)

    def rotate(self, db: Db, *, algorithm: Algorithm, now_ms: int, lead_ms: int,
               token_lifetime_ms: int) -> SigningKey:
        """Add a key signing from ``now + lead``; retire the others after their last token."""
        new = self.create(db, algorithm=algorithm, now_ms=now_ms, signs_from=now_ms + lead_ms)
        # Other processes may sign with an old key for up to SCHEDULE_TTL_MS after
        # signs_from (with a short lead): keep it published until those tokens expire.
        last_token_expiry = new.signs_from + SCHEDULE_TTL_MS + token_lifetime_ms
        for old in db.scalars(select(SigningKey).where(SigningKey.kid != new.kid)):
            if old.unpublish_at is None or old.unpublish_at > last_token_expiry:
                old.unpublish_at = last_token_expiry
        db.flush()
        self.forget_schedule()
        return new

    def current_signer(self, db: Db | Connection, now_ms: int) -> Signer:
        """The key that signs at ``now_ms``; reads the schedule with ``db`` when it is stale."""
        read_at = self._schedule_read_at
        if read_at is None or not read_at <= now_ms < read_at + SCHEDULE_TTL_MS:
            self._read_schedule(db, now_ms)
        signer = self._signing(now_ms)
        if signer is None:  # nothing in the cached schedule signs now: ask the database
            self._read_schedule(db, now_ms)
            signer = self._signing(now_ms)
        if signer is None:
            raise RuntimeError("no signing key is active; run `actas migrate` or `actas serve`")
        return signer

    def cached_signer(self, now_ms: int) -> Signer | None:
        """``current_signer`` without a database at hand: ``None`` when the cached
        schedule is stale or has no key signing now (the caller then reads)."""
        read_at = self._schedule_read_at
        if read_at is None or not read_at <= now_ms < read_at + SCHEDULE_TTL_MS:
            return None
        return self._signing(now_ms)

    def _signing(self, now_ms: int) -> Signer | None:
        for entry in self._schedule:  # latest signs_from first
            if entry.signs_from <= now_ms and (entry.unpublish_at is None
                                               or entry.unpublish_at > now_ms):
                return entry.signer
        return None

    def forget_schedule(self) -> None:
        """Re-read the schedule at the next signature (after a rotation in this process)."""
        self._schedule_read_at = None

    def _read_schedule(self, db: Db | Connection, now_ms: int) -> None:
        rows = db.execute(
            select(SigningKey.kid, SigningKey.algorithm, SigningKey.signs_from,
                   SigningKey.unpublish_at, SigningKey.private_key_ciphertext)
            .where(or_(SigningKey.unpublish_at.is_(None), SigningKey.unpublish_at > now_ms))
            .order_by(SigningKey.signs_from.desc(), SigningKey.kid.desc())
        ).all()
        schedule = []
        for kid, algorithm, signs_from, unpublish_at, ciphertext in rows:
            key = self._private_keys.get(kid)
            if key is None:
                key = self._private_keys[kid] = self._decrypt(kid, ciphertext)
            schedule.append(_Scheduled(Signer(kid, cast(Algorithm, algorithm), key),
                                       signs_from, unpublish_at))
        self._schedule, self._schedule_read_at = schedule, now_ms

    def _decrypt(self, kid: str, ciphertext: bytes) -> PrivateKey:
        der = self._sealer.open(ciphertext, bound_to=kid)
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                          | ed25519.Ed25519PrivateKey):
            raise TypeError(f"unexpected key type in {kid}")
        return key


def published_jwks(db: Db, now_ms: int) -> dict[str, list[dict[str, str]]]:
    """The JWKS document: every key not yet unpublished, newest first."""
    rows = db.scalars(
        select(SigningKey)
        .where(or_(SigningKey.unpublish_at.is_(None), SigningKey.unpublish_at > now_ms))
        .order_by(SigningKey.signs_from.desc())
    )
    return {"keys": [dict(row.public_jwk) for row in rows]}


def _generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()
