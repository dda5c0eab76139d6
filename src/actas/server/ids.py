"""Prefixed, time-sortable resource ids: ``user_01JH3…``, ``sess_…``, ``client_…``.

The part after the prefix is a ULID-style value in Crockford base32: 48 bits
of milliseconds then 80 random bits, so ids sort by creation time as plain
strings and never collide across server replicas. Within one process, ids
made in the same millisecond are monotonic (the random part is incremented,
as in the ULID spec), so "newest first" is exact even for bursts.
"""

from __future__ import annotations

import secrets
import threading

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

USER = "user"
EMAIL_ADDRESS = "idn"
SESSION = "sess"
CLIENT = "client"
SIGNING_KEY = "ins_key"
SECRET_KEY = "sk_id"  # noqa: S105  (an id prefix, not a secret)
TOKEN = "jti"  # noqa: S105


_lock = threading.Lock()
_last = 0


def _next_value(now_ms: int) -> int:
    global _last
    candidate = (now_ms & (2**48 - 1)) << 80 | int.from_bytes(secrets.token_bytes(10), "big")
    with _lock:
        if candidate <= _last and candidate >> 80 == _last >> 80:
            candidate = _last + 1
        _last = candidate
    return candidate


def new_id(prefix: str, now_ms: int) -> str:
    value = _next_value(now_ms)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"

