"""Prefixed, time-sortable resource ids: ``user_01JH3…``, ``sess_…``, ``client_…``.

The part after the prefix is a ULID-style value in Crockford base32: 48 bits
of milliseconds then 80 random bits, so ids sort by creation time as plain
strings and never collide across server replicas.
"""

from __future__ import annotations

import secrets

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

USER = "user"
EMAIL_ADDRESS = "idn"
SESSION = "sess"
CLIENT = "client"
SIGNING_KEY = "ins_key"
SECRET_KEY = "sk_id"  # noqa: S105  (an id prefix, not a secret)
TOKEN = "jti"  # noqa: S105


def new_id(prefix: str, now_ms: int) -> str:
    value = (now_ms & (2**48 - 1)) << 80 | int.from_bytes(secrets.token_bytes(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
