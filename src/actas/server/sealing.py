"""Encryption at rest for the few secrets actas must be able to use again.

Signing keys and webhook signing secrets cannot be stored as hashes, so they
are sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
instance secret, one key per purpose. The associated data binds a ciphertext
to its row, so it cannot be moved to another one.
"""

from __future__ import annotations

import functools
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from actas.server.credentials import Secret

_NONCE = 12


@functools.lru_cache(maxsize=32)
def derive_key(instance_secret: Secret, purpose: str) -> bytes:
    """A 256-bit key for one purpose (HKDF-SHA256, info ``actas/<purpose>/v1``).

    Every key actas derives from the instance secret comes from here, so no two
    purposes can share a key. Cached: the dashboard asks for its CSRF key on
    every request.
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"actas/{purpose}/v1".encode())
    return hkdf.derive(instance_secret.reveal().encode())


class Sealer:
    def __init__(self, instance_secret: Secret, purpose: str) -> None:
        self._aead = AESGCM(derive_key(instance_secret, purpose))

    def seal(self, plaintext: bytes, *, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, *, bound_to: str) -> bytes:
        """Decrypt; raises ``cryptography.exceptions.InvalidTag`` if tampered or moved."""
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], bound_to.encode())
