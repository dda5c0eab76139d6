"""The Frontend API's ``{"response": …, "client": …}`` envelope and the current client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session as Db

from actas.server import clients, sessions
from actas.server.db.schema import Client, User
from actas.server.http import cookies
from actas.server.impersonation import actor_tokens
from actas.server.instance import Instance
from actas.server.resources import ClientObject, client_object

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    response: T
    client: ClientObject | None


def current_client(db: Db, instance: Instance, request: Request) -> Client | None:
    name = cookies.client_cookie_name(instance.settings)
    return clients.from_cookie(db, request.cookies.get(name))


def client_or_new(db: Db, instance: Instance, request: Request, response: Response) -> Client:
    """The client a sign-in joins: the request's own, re-keyed, or a new one.

    Either way ``response`` sets a cookie with a secret nobody has seen: a
    session is never added to a client whose cookie someone else may know.
    """
    client = current_client(db, instance, request)
    if client is None:
        client, token = clients.create(db, instance.now_ms())
    else:
        token = clients.rekey(db, client, instance.now_ms())
    cookies.set_client(response, instance.settings, token.reveal())
    return client


_USERS = select(User).where(User.id.in_(bindparam("ids", expanding=True)))  # built once


def render_client(db: Db, client: Client, now_ms: int, *, loaded: Iterable[User] = ()
                  ) -> ClientObject:
    """The client object of ``client``; ``loaded``: users the caller's transaction has
    loaded already (the one a sign-in just signed in), taken as they are rather than
    read again (a third of the cost of answering a sign-in)."""
    rows = sessions.of_client(db, client, now_ms)
    users = {u.id: u for u in loaded}
    missing = list({s.user_id for s in rows} - users.keys())
    if missing:
        users.update((u.id, u) for u in db.scalars(_USERS, {"ids": missing}))
    reasons = actor_tokens.reasons_of(db, rows)
    return client_object(client, [(s, users[s.user_id], reasons.get(s.id)) for s in rows],
                         now_ms)

