"""Clients: one per browser, identified by the HttpOnly client cookie (``__Host-client``,
or ``__client`` on plain HTTP; see ``http.cookies``).

The cookie holds a random ``ct_…`` secret; the database holds only its
SHA-256 digest, so a stolen database cannot be replayed as a cookie.
"""

from __future__ import annotations

from typing import TypeGuard

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas._errors import ResourceNotFound, SignedOut
from actas.server import credentials, ids
from actas.server.credentials import Secret
from actas.server.db.schema import Client


def create(db: Db, now_ms: int) -> tuple[Client, Secret]:
    token = credentials.generate(credentials.CLIENT_TOKEN_PREFIX)
    client = Client(
        id=ids.new_id(ids.CLIENT, now_ms),
        token_digest=credentials.digest(token.reveal()),
        last_active_session_id=None,
        created_at=now_ms,
        updated_at=now_ms,
    )
    db.add(client)
    db.flush()
    return client, token


def rekey(db: Db, client: Client, now_ms: int) -> Secret:
    """Give ``client`` a fresh secret; the old cookie stops working at once.

    Done on every sign-in, sign-up and ticket redemption: whoever knew this
    browser's cookie before (one planted by an attacker, say) does not know
    the one that carries the new session.
    """
    token = credentials.generate(credentials.CLIENT_TOKEN_PREFIX)
    client.token_digest = credentials.digest(token.reveal())
    client.updated_at = now_ms
    db.flush()
    return token


def well_formed(cookie: str | None) -> TypeGuard[str]:
    """Whether ``cookie`` could be a ``__client`` cookie at all (checked before hashing)."""
    return (cookie is not None and cookie.startswith(credentials.CLIENT_TOKEN_PREFIX)
            and len(cookie) <= 128)


def from_cookie(db: Db, cookie: str | None) -> Client | None:
    """The client a ``__client`` cookie belongs to, or ``None`` for a missing/unknown one."""
    if not well_formed(cookie):
        return None
    return db.scalar(
        select(Client).where(Client.token_digest == credentials.digest(cookie))
    )


def no_client() -> SignedOut:
    """The refusal for a request whose browser has no (known) client cookie."""
    return SignedOut("This browser has no client; sign in first.")


def not_its_session(session_id: str) -> ResourceNotFound:
    """The refusal for a session that is not the client's: worded exactly like a
    missing one, so that another browser's session ids cannot be probed."""
    return ResourceNotFound(f"This client has no session {session_id!r}.",
                            param_name="session_id")
