"""Opaque secrets actas hands out (secret keys, client cookies) and how they are stored.

A ``Secret`` never shows its value in ``repr``/``str``, so it cannot leak
into a log line by accident. Stored secrets are high-entropy random strings,
so a single SHA-256 is the right hash for them (a slow password hash would
buy nothing and cost every request); only the hash is ever written down.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Purpose prefixes, not secrets: a key and a cookie can never be mistaken for each other.
SECRET_KEY_PREFIX = "sk_"  # noqa: S105
CLIENT_TOKEN_PREFIX = "ct_"  # noqa: S105


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


def generate(prefix: str) -> Secret:
    """A new secret: the purpose prefix, then 256 random bits, url-safe."""
    return Secret(prefix + secrets.token_urlsafe(32))


def digest(secret: str) -> str:
    """The stored form of a secret: hex SHA-256, tagged with the algorithm."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
