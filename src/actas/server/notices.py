"""What the impersonated user is told, and when: an impersonation of their account
started or ended, someone asks for access. Said by email, from the mail outbox.

Notices follow the audit log: ``queue_for`` runs in the transaction that chains a batch
of events (as webhooks do), so a notice exists exactly when its event does, and never
slows the request that caused it. ``ACTAS_IMPERSONATION_NOTICES`` chooses which are sent
(``start``, ``end``, ``requests``); an impersonation that overrode the user's
preference is always told. The words come from templates (plain text and HTML) that
an install may override, file by file, in ``ACTAS_MAIL_TEMPLATES_DIR``.

A notice names people as people read them (the operator's name, never an id) and says
who, when, for how long, why, in which mode, and how to complain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas.server import mail
from actas.server.db.schema import AccessRequest, ActorToken, AuditEvent, Operator, User
from actas.server.db.schema import Session as SessionRow
from actas.server.settings import Settings

if TYPE_CHECKING:
    from actas.server.instance import Instance

_DEFAULTS = Path(__file__).parent / "notice_templates"
_ENDED = {"session.ended", "session.revoked", "session.expired", "session.abandoned"}
_HOW = {"session.ended": "the support engineer stopped it.",
        "session.revoked": "it was ended early.",
        "session.expired": "its time was up.",
        "session.abandoned": "it was left unused."}


def _environment(settings: Settings) -> Environment:
    loaders = [FileSystemLoader(_DEFAULTS)]
    if settings.mail_templates_dir is not None:
        loaders.insert(0, FileSystemLoader(settings.mail_templates_dir))
    return Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html"]),
                       keep_trailing_newline=True)


def queue_for(db: Db, instance: Instance, events: Sequence[AuditEvent]) -> int:
    """Queue the notices these (just chained) events call for; return how many."""
    settings = instance.settings
    if not events or not mail.enabled(settings):
        return 0
    queued = 0
    for event in events:
        message = _notice(db, settings, event)
        if message is not None and mail.queue(db, instance, message):
            queued += 1
    return queued


def _notice(db: Db, settings: Settings, event: AuditEvent) -> mail.Outgoing | None:
    wanted = settings.impersonation_notices
    if event.type == "session.created" and event.actor_sub and event.session_id:
        session = db.get(SessionRow, event.session_id)
        token = db.get(ActorToken, session.actor_token_id) \
            if session and session.actor_token_id else None
        override = token is not None and token.consent == "override"
        if session is None or not ("start" in wanted or override):
            return None
        return _about_session(db, settings, "impersonation_started", session, token)
    if event.type in _ENDED and event.actor_sub and event.session_id and "end" in wanted:
        session = db.get(SessionRow, event.session_id)
        if session is None or session.actor is None:
            return None
        token = db.get(ActorToken, session.actor_token_id) if session.actor_token_id else None
        return _about_session(db, settings, "impersonation_ended", session, token,
                              how=_HOW[event.type])
    if event.type == "access_request.created" and "requests" in wanted and event.data:
        request = db.get(AccessRequest, str(event.data.get("access_request_id")))
        if request is None:
            return None
        return _about_request(db, settings, request)
    return None


def _about_session(db: Db, settings: Settings, kind: str, session: SessionRow,
                   token: ActorToken | None, *, how: str = "") -> mail.Outgoing | None:
    user = db.get(User, session.user_id)
    address = _address(user)
    if user is None or address is None:
        return None
    actor = actor_name(db, session.actor)
    ended = session.ended_at or min(session.expire_at, session.abandon_at)
    context = {
        **_common(settings, user), "actor_name": actor,
        "reason": token.reason if token else None,
        "mode": session.impersonation_mode or "read_only",
        "override": token is not None and token.consent == "override",
        "started_at": _when(session.created_at), "hard_limit": _when(session.expire_at),
        "minutes": max(1, (session.expire_at - session.created_at) // 60_000),
        "ended_at": _when(ended), "how": how,
        "duration": _duration(ended - session.created_at),
    }
    subject = (f"{actor} signed in to your account" if kind == "impersonation_started"
               else f"{actor}'s access to your account has ended")
    if context["override"] and kind == "impersonation_started":
        subject += " (your preference was overridden)"
    return _render(settings, kind, f"{kind}:{session.id}", address, subject, context, user)


DAY_MS = 86_400_000
# The last day each database's digests were queued from this process: the worker asks
# every round, the work is done once a day (and queued once in all, by dedupe key).
_digested: dict[str, int] = {}


def queue_digests(instance: Instance) -> int:
    """With ``digest`` in ACTAS_IMPERSONATION_NOTICES: one mail per user on the day after
    their account was impersonated, listing each impersonation of that (UTC) day. Safe to
    run every round, on every replica: a user's digest of a day is queued once."""
    settings = instance.settings
    if "digest" not in settings.impersonation_notices or not mail.enabled(settings):
        return 0
    today = instance.now_ms() // DAY_MS * DAY_MS
    day = today - DAY_MS
    if _digested.get(settings.database_url) == day:
        return 0
    queued = 0
    with instance.transaction() as db:
        rows = db.scalars(select(SessionRow).where(
            SessionRow.actor_sub.is_not(None), SessionRow.created_at >= day,
            SessionRow.created_at < today).order_by(SessionRow.user_id, SessionRow.created_at)
            .limit(10_000)).all()
        by_user: dict[str, list[SessionRow]] = {}
        for row in rows:
            by_user.setdefault(row.user_id, []).append(row)
        for user_id, sessions in by_user.items():
            message = _digest(db, settings, user_id, sessions, day)
            if message is not None and mail.queue(db, instance, message):
                queued += 1
    _digested[settings.database_url] = day
    return queued


def _digest(db: Db, settings: Settings, user_id: str, rows: list[SessionRow],
            day: int) -> mail.Outgoing | None:
    user = db.get(User, user_id)
    address = _address(user)
    if user is None or address is None:
        return None
    tokens = {t.id: t for t in db.scalars(select(ActorToken).where(
        ActorToken.id.in_([r.actor_token_id for r in rows if r.actor_token_id])))}
    entries = []
    for row in rows:
        token = tokens.get(row.actor_token_id or "")
        ended = row.ended_at or min(row.expire_at, row.abandon_at)
        entries.append({"actor_name": actor_name(db, row.actor),
                        "started_at": _when(row.created_at),
                        "duration": _duration(ended - row.created_at),
                        "reason": token.reason if token else None,
                        "mode": row.impersonation_mode or "read_only"})
    date = _when(day)[:10]
    context = {**_common(settings, user), "entries": entries, "date": date}
    count = len(entries)
    subject = (f"Your account was accessed by support {count} time{'s' if count != 1 else ''}"
               f" on {date}")
    return _render(settings, "impersonation_digest", f"digest:{user.id}:{date}", address,
                   subject, context, user)


def _about_request(db: Db, settings: Settings, request: AccessRequest) -> mail.Outgoing | None:
    user = db.get(User, request.user_id)
    address = _address(user)
    if user is None or address is None:
        return None
    actor = actor_name(db, request.requested_by)
    context = {**_common(settings, user), "actor_name": actor, "reason": request.reason,
               "mode": request.mode, "minutes": request.session_max_duration // 60,
               "answer_by": _when(request.expires_at)}
    return _render(settings, "access_requested", f"access_requested:{request.id}", address,
                   f"{actor} asks to sign in to your account", context, user)


def _render(settings: Settings, kind: str, key: str, address: str, subject: str,
            context: dict[str, Any], user: User) -> mail.Outgoing:
    env = _environment(settings)
    context = {**context, "subject": subject}
    return mail.Outgoing(
        kind=kind, dedupe_key=key, to_address=address, subject=subject, user_id=user.id,
        text_body=env.get_template(f"{kind}.txt").render(context),
        html_body=env.get_template(f"{kind}.html").render(context))


def actor_name(db: Db, actor: Any) -> str:
    """The impersonator as the user should read them: a name or an email, an operator's
    record when only their id is known, never a bare id; one line of printable text
    (it goes into a mail's subject)."""
    if not isinstance(actor, dict):
        return "A support engineer"
    for key in ("name", "email"):
        value = actor.get(key)
        if isinstance(value, str) and _printable(value):
            return _printable(value)
    sub = actor.get("sub")
    operator = db.get(Operator, sub) if isinstance(sub, str) else None
    if operator is not None:
        return operator.name or operator.email_address
    return "A support engineer"


def _printable(text: str, limit: int = 120) -> str:
    """Control characters (line breaks included) become spaces; runs of space collapse."""
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
    return " ".join(cleaned.split())[:limit]


def _address(user: User | None) -> str | None:
    if user is None or not user.email_addresses:
        return None
    primary = next((e for e in user.email_addresses if e.id == user.primary_email_address_id),
                   user.email_addresses[0])
    return primary.email_address


def _common(settings: Settings, user: User) -> dict[str, Any]:
    name = " ".join(n for n in (user.first_name, user.last_name) if n) or "there"
    app_url = settings.landing_url
    return {"user_name": name, "app_url": app_url,
            "app_name": urlsplit(app_url).hostname or app_url,
            "complaints_contact": settings.complaints_contact}


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(ms: int) -> str:
    minutes = max(0, ms) // 60_000
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} h {minutes % 60:02d} min"
