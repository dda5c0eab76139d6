"""Application users: create, find, list, update, delete, ban."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, IdentifierExists, ResourceNotFound, UserBanned
from actas.server import ids, passwords
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import ActorToken, EmailAddress, User
from actas.server.db.schema import Session as SessionRow
from actas.server.instance import Instance

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
METADATA_MAX_BYTES = 8 * 1024  # Clerk's limit per metadata object
USER_ID_PREFIX = "user_"

_PRIMARY_EMAIL = (select(EmailAddress.email_address)
                  .where(EmailAddress.id == User.primary_email_address_id)
                  .correlate(User).scalar_subquery())

ORDER_FIELDS: dict[str, Any] = {
    "created_at": User.created_at,
    "email_address": _PRIMARY_EMAIL,
    "updated_at": User.updated_at,
    "username": User.username,
    "first_name": User.first_name,
    "last_name": User.last_name,
    "last_sign_in_at": User.last_sign_in_at,
    "last_active_at": User.last_active_at,
}


@dataclass(frozen=True)
class UserQuery:
    limit: int = 10
    offset: int = 0
    order_by: str = "-created_at"
    query: str | None = None
    email_addresses: Sequence[str] = ()
    user_ids: Sequence[str] = ()
    usernames: Sequence[str] = ()
    banned: bool | None = None
    # Unix ms bounds, exclusive, as Clerk's created_at_before/_after etc.
    created_after: int | None = None
    created_before: int | None = None
    last_active_after: int | None = None
    last_active_before: int | None = None
    last_sign_in_after: int | None = None
    last_sign_in_before: int | None = None


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise FormParamInvalid(
            f"{value!r} is not a valid email address.",
            code="form_param_format_invalid", param_name="email_address",
        )
    return email


def normalize_username(value: str) -> str:
    username = value.strip().lower()
    if not _USERNAME.match(username):
        raise FormParamInvalid(
            "Usernames are 3 to 64 characters: letters, digits, '_', '.' or '-', "
            "starting with a letter or digit.",
            code="form_param_format_invalid", param_name="username",
        )
    return username


def check_password(password: str) -> None:
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise FormParamInvalid(
            f"Passwords must be {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters.",
            code="form_password_length_invalid", param_name="password",
        )


def check_metadata(name: str, value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value)) > METADATA_MAX_BYTES:
        raise FormParamInvalid(
            f"{name} must be at most {METADATA_MAX_BYTES} bytes of JSON.",
            code="form_param_value_invalid", param_name=name,
        )
    return value


def hash_password(instance: Instance, password: str | None) -> str | None:
    """Check and hash ``password`` (outside any transaction); ``None`` stays ``None``."""
    if password is None:
        return None
    check_password(password)
    return instance.passwords.hash(password)


def create(
    db: Db,
    instance: Instance,
    *,
    email_addresses: Sequence[str] = (),
    username: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    external_id: str | None = None,
    public_metadata: dict[str, Any] | None = None,
    private_metadata: dict[str, Any] | None = None,
    unsafe_metadata: dict[str, Any] | None = None,
    protected: bool = False,
    password_hash: str | None = None,
) -> User:
    """Create a user. A password comes as ``password_hash`` (``hash_password``, before
    the transaction): the 64 MiB argon2 run must not hold the database's write lock."""
    now = instance.now_ms()
    emails = list(dict.fromkeys(normalize_email(e) for e in email_addresses))
    if not emails and username is None:
        raise FormParamInvalid(
            "A user needs an email address or a username.",
            code="form_param_missing", param_name="email_address",
        )
    user = User(
        id=ids.new_id(ids.USER, now),
        username=normalize_username(username) if username is not None else None,
        first_name=first_name,
        last_name=last_name,
        external_id=external_id,
        password_hash=password_hash,
        public_metadata=check_metadata("public_metadata", public_metadata or {}),
        private_metadata=check_metadata("private_metadata", private_metadata or {}),
        unsafe_metadata=check_metadata("unsafe_metadata", unsafe_metadata or {}),
        banned=False,
        protected=protected,
        last_sign_in_at=None,
        last_active_at=None,
        created_at=now,
        updated_at=now,
    )
    _check_available(db, emails=emails, username=user.username)
    user.email_addresses = [
        EmailAddress(id=ids.new_id(ids.EMAIL_ADDRESS, now), email_address=email,
                     created_at=now, updated_at=now)
        for email in emails
    ]
    user.primary_email_address_id = user.email_addresses[0].id if emails else None
    db.add(user)
    db.flush()
    return user


def _check_available(db: Db, *, emails: Sequence[str], username: str | None,
                     except_user: str | None = None) -> None:
    # Checked up front for a clear error; the unique indexes still decide under
    # a race (the HTTP layer turns an IntegrityError into the same error).
    if emails:
        taken = db.scalar(select(EmailAddress.email_address)
                          .where(EmailAddress.email_address.in_(emails)).limit(1))
        if taken is not None:
            raise IdentifierExists(
                "That email address is taken. Please try another.",
                param_name="email_address",
            )
    if username is not None:
        clause = select(User.id).where(User.username == username)
        if except_user is not None:
            clause = clause.where(User.id != except_user)
        if db.scalar(clause.limit(1)) is not None:
            raise IdentifierExists(
                "That username is taken. Please try another.", param_name="username"
            )


def get(db: Db, user_id: str) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise ResourceNotFound(f"No user has the id {user_id!r}.", param_name="user_id")
    return user


def require_not_banned(user: User) -> User:
    if user.banned:
        # No user id in the answer: a sign-in attempt would learn it.
        raise UserBanned("This account is banned.")
    return user


def find_by_identifier(db: Db, identifier: str) -> User | None:
    """The user whose email address or username is ``identifier``, if any."""
    value = identifier.strip().lower()
    if "@" in value:
        return db.scalar(
            select(User).join(EmailAddress).where(EmailAddress.email_address == value)
        )
    return db.scalar(select(User).where(User.username == value))


def _filters(q: UserQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if q.email_addresses:
        emails = [e.strip().lower() for e in q.email_addresses]
        clauses.append(User.id.in_(
            select(EmailAddress.user_id).where(EmailAddress.email_address.in_(emails))
        ))
    if q.user_ids:
        clauses.append(User.id.in_(list(q.user_ids)))
    for column, after, before in ((User.created_at, q.created_after, q.created_before),
                                  (User.last_active_at, q.last_active_after,
                                   q.last_active_before),
                                  (User.last_sign_in_at, q.last_sign_in_after,
                                   q.last_sign_in_before)):
        if after is not None:
            clauses.append(column > after)
        if before is not None:
            clauses.append(column < before)
    if q.usernames:
        clauses.append(User.username.in_([u.strip().lower() for u in q.usernames]))
    if q.banned is not None:
        clauses.append(User.banned.is_(q.banned))
    if q.query:
        escaped = q.query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        clauses.append(or_(
            User.id == q.query,
            func.lower(User.username).like(pattern, escape="\\"),
            func.lower(User.first_name).like(pattern, escape="\\"),
            func.lower(User.last_name).like(pattern, escape="\\"),
            User.id.in_(select(EmailAddress.user_id)
                        .where(EmailAddress.email_address.like(pattern, escape="\\"))),
        ))
    return clauses


def order_clause(order_by: str) -> tuple[Any, Any]:
    descending = order_by.startswith("-")
    name = order_by.lstrip("+-")
    column = ORDER_FIELDS.get(name)
    if column is None:
        raise FormParamInvalid(
            f"order_by must be one of {', '.join(ORDER_FIELDS)}, optionally prefixed "
            "with + or -.",
            code="form_param_value_invalid", param_name="order_by",
        )
    if descending:
        return column.desc().nulls_last(), User.id.desc()
    return column.asc().nulls_last(), User.id.asc()


def list_users(db: Db, q: UserQuery) -> Sequence[User]:
    return db.scalars(
        select(User).where(*_filters(q)).order_by(*order_clause(q.order_by))
        .limit(q.limit).offset(q.offset)
    ).all()


def _prefix(column: Any, text: str) -> ColumnElement[bool]:
    # A range, not LIKE 'x%': SQLite's case-insensitive LIKE never uses an index,
    # while a range on the same (lower-cased) expression does, on both backends.
    return and_(column >= text, column < text + "\uffff")


def search(db: Db, text: str, *, limit: int, offset: int) -> Sequence[User]:
    """The dashboard's search: prefix matches that indexes answer, newest first.

    An email address (or its start), a user id, a username, or the start of a
    first or last name. Unlike the Backend API's ``query`` (a substring match,
    as Clerk's), every branch here is an index range scan, so it stays fast at
    hundreds of thousands of users.
    """
    text = text.strip().lower()
    if text.startswith(USER_ID_PREFIX):
        condition: ColumnElement[bool] = User.id == text.upper().replace("USER_", "user_", 1)
    elif "@" in text:
        condition = User.id.in_(select(EmailAddress.user_id)
                                .where(_prefix(EmailAddress.email_address, text)))
    else:
        condition = or_(
            User.id.in_(select(EmailAddress.user_id)
                        .where(_prefix(EmailAddress.email_address, text))),
            _prefix(User.username, text),
            _prefix(func.lower(User.first_name), text),
            _prefix(func.lower(User.last_name), text),
        )
    return db.scalars(select(User).where(condition)
                      .order_by(User.created_at.desc(), User.id.desc())
                      .limit(limit).offset(offset)).all()


def count_users(db: Db, q: UserQuery) -> int:
    return db.scalar(select(func.count()).select_from(User).where(*_filters(q))) or 0


def update_user(db: Db, instance: Instance, user: User, changes: dict[str, Any],
                *, password_hash: str | None = None) -> User:
    """Apply the fields present in ``changes`` (absent fields are left alone).

    A new password comes only as ``password_hash`` (``hash_password``, before the
    transaction: argon2 must not run under the database's write lock)."""
    if "password" in changes:
        raise TypeError("update_user takes a new password as password_hash= "
                        "(users.hash_password, before the transaction)")
    now = instance.now_ms()
    if password_hash is not None:
        user.password_hash = password_hash
    if "username" in changes:
        username = changes["username"]
        user.username = normalize_username(username) if username is not None else None
        _check_available(db, emails=(), username=user.username, except_user=user.id)
    if "primary_email_address_id" in changes:
        wanted = changes["primary_email_address_id"]
        if wanted not in {e.id for e in user.email_addresses}:
            raise FormParamInvalid(
                "primary_email_address_id must be one of the user's email addresses.",
                code="form_param_value_invalid", param_name="primary_email_address_id",
            )
        user.primary_email_address_id = wanted
    if changes.get("protected") is not None:
        user.protected = bool(changes["protected"])
    for name in ("first_name", "last_name", "external_id"):
        if name in changes:
            setattr(user, name, changes[name])
    for name in ("public_metadata", "private_metadata", "unsafe_metadata"):
        if name in changes:
            setattr(user, name, check_metadata(name, changes[name] or {}))
    user.updated_at = now
    db.flush()
    return user


def replace_primary_email(db: Db, instance: Instance, user: User, email: str) -> User:
    """Make ``email`` the user's only (and primary) email address."""
    now = instance.now_ms()
    normalized = normalize_email(email)
    if normalized in {e.email_address for e in user.email_addresses}:
        return user
    _check_available(db, emails=[normalized], username=None)
    address = EmailAddress(id=ids.new_id(ids.EMAIL_ADDRESS, now), email_address=normalized,
                           created_at=now, updated_at=now)
    user.email_addresses = [address]
    db.flush()
    user.primary_email_address_id = address.id
    user.updated_at = now
    db.flush()
    return user


def merge_metadata(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Clerk's metadata merge: objects merge deeply, a ``null`` removes the key."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_metadata(merged[key], value)
        else:
            merged[key] = value
    return merged


def update_metadata(db: Db, instance: Instance, user: User, changes: dict[str, Any]) -> User:
    for name in ("public_metadata", "private_metadata", "unsafe_metadata"):
        if name in changes and changes[name] is not None:
            setattr(user, name, check_metadata(name, merge_metadata(getattr(user, name),
                                                                    changes[name])))
    user.updated_at = instance.now_ms()
    db.flush()
    return user


def delete_user(db: Db, instance: Instance, user: User, *, origin: RequestOrigin,
                by: str, session_id: str | None = None) -> None:
    """Delete ``user``: first end their live sessions and revoke their pending actor
    tokens (each audited), then record ``user.deleted``, then remove the rows.

    The audit trail outlives the user: events name the user by id and have no
    foreign key, so who impersonated them, when and why stays provable.
    """
    # Both build on users; this is the one way back.
    from actas.server import sessions
    from actas.server.impersonation import actor_tokens

    others = sessions.revoke_of_user(  # the caller's own session ends with the row
        db, instance, user.id, origin=origin, by=by, keep=lambda row: row.id == session_id)
    pending = db.scalars(select(ActorToken).where(ActorToken.user_id == user.id,
                                                  ActorToken.status == "pending")
                         .with_for_update()).all()
    for token in pending:
        actor_tokens.mark_revoked(db, instance, token, origin=origin,
                                  data={"revoked_by": by, "because": "user.deleted"})
    instance.record(db, Record(type="user.deleted", user_id=user.id, session_id=session_id,
                               origin=origin, data={"deleted_by": by,
                                                    "sessions_ended": len(others),
                                                    "actor_tokens_revoked": len(pending)}))
    # Sessions, tokens and email addresses go with the user (ON DELETE CASCADE);
    # the explicit deletes keep SQLite and PostgreSQL identical even if a
    # connection somehow runs without foreign keys enforced.
    db.execute(delete(SessionRow).where(SessionRow.user_id == user.id))
    db.execute(delete(ActorToken).where(ActorToken.user_id == user.id))
    db.delete(user)
    db.flush()


def set_banned(db: Db, instance: Instance, user: User, banned: bool, origin: RequestOrigin
               ) -> User:
    """Ban (and revoke every live session of) or unban a user."""
    from actas.server import sessions  # sessions builds on users; this is the one way back

    now = instance.now_ms()
    user.banned = banned
    user.updated_at = now
    if banned:
        sessions.revoke_of_user(db, instance, user.id, origin=origin, by="ban")
    instance.record(db, Record(type="user.banned" if banned else "user.unbanned",
                               user_id=user.id, origin=origin))
    db.flush()
    return user
