"""The audit log as an investigation tool: filters (type, actor, user, time range),
keyset paging, one event in detail (its data, its place in the chain, the other events
of the same impersonation), and export of what the filters select as CSV or JSON Lines.
People are shown by name, with their ids beside."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session as Db
from starlette.responses import Response, StreamingResponse

from actas.server import audit, audit_verification, operators, users
from actas.server import ids as ids_module
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import AuditEvent, Operator, User
from actas.server.http.origins import instance_of
from actas.server.resources import audit_event_object

router = APIRouter()
PAGE_SIZE = 50
EXPORT_LIMIT = 100_000  # newest first; a wider investigation narrows the time range
_EXPORT_BATCH = 1_000
# "2026-11-30 14:00", "2026-11-30T14:00" (ISO) or a day, "2026-11-30"; always UTC.
_RANGE_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d")


@dataclass(frozen=True)
class Filters:
    """The audit page's filters as typed, and the query they make (or why they cannot)."""

    type: str = ""
    actor: str = ""
    user: str = ""
    since: str = ""
    until: str = ""

    def as_params(self) -> dict[str, str]:
        return {k: v for k, v in (("type", self.type), ("actor", self.actor),
                                  ("user", self.user), ("from", self.since),
                                  ("to", self.until)) if v}


def _filters(type: str, actor: str, user: str, since: str, until: str) -> Filters:
    return Filters(type=type.strip(), actor=actor.strip(), user=user.strip(),
                   since=since.strip(), until=until.strip())


class _BadFilter(ValueError):
    @property
    def message(self) -> str:
        return str(self.args[0])


def _moment(value: str, what: str, *, end_of: bool = False) -> int:
    """The UTC moment an operator typed; with ``end_of``, the end of the minute (or
    day) typed, so that "To 14:00" includes 14:00:59."""
    text = value.strip().replace(" ", "T", 1)[:16]
    for fmt, span in zip(_RANGE_FORMATS, (60_000, 86_400_000), strict=True):
        try:
            parsed = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        start = int(parsed.timestamp() * 1000)
        return start + span if end_of else start
    raise _BadFilter(f"“{value}” is not a time: give {what} as YYYY-MM-DD HH:MM or "
                     "YYYY-MM-DD (UTC).")


def _query(db: Db, f: Filters, *, limit: int) -> audit.AuditQuery:
    """Turn what an operator typed into a query: an email finds the operator or user it
    belongs to; the time range is in UTC, ``to`` inclusive of its minute."""
    actor_sub: str | None = f.actor or None
    if f.actor and "@" in f.actor:
        found = db.scalar(select(Operator.id).where(Operator.email_address == f.actor.lower()))
        actor_sub = found or f.actor  # an unknown email still filters: to nothing
    user_id: str | None = f.user or None
    if f.user and "@" in f.user:
        matches = list(users.list_users(db, users.UserQuery(email_addresses=[f.user], limit=1)))
        user_id = matches[0].id if matches else f.user
    after = _moment(f.since, "From") - 1 if f.since else None
    before = _moment(f.until, "To", end_of=True) if f.until else None
    if after is not None and before is not None and before <= after:
        raise _BadFilter("The time range is empty: “From” must be before “To”.")
    return audit.AuditQuery(types=[f.type] if f.type else (), actor_sub=actor_sub,
                            user_id=user_id, occurred_after=after, occurred_before=before,
                            limit=limit)


FilterType = Annotated[str, Query(max_length=64)]
FilterPerson = Annotated[str, Query(max_length=320)]
FilterFrom = Annotated[str, Query(alias="from", max_length=32)]
FilterTo = Annotated[str, Query(alias="to", max_length=32)]


@router.get("/dashboard/audit")
def audit_page(request: Request, type: FilterType = "", actor: FilterPerson = "",
               user: FilterPerson = "", since: FilterFrom = "", until: FilterTo = "",
               actor_sub: FilterPerson = "", user_id: FilterPerson = "",
               before: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
    # actor_sub and user_id: the parameter names of links made before the filters took
    # names and emails; they still work.
    f = _filters(type, actor or actor_sub, user or user_id, since, until)
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
    problem: str | None = None
    rows: Sequence[AuditEvent] = ()
    names: dict[str, str] = {}
    with instance.snapshot() as db:
        try:
            q = replace(_query(db, f, limit=PAGE_SIZE), before_seq=before)
            rows = audit.list_events(db, q)
            names = names_of(db, rows)
        except _BadFilter as bad:
            problem = bad.message
    # From the sealed checkpoint plus the newest events: never the whole chain here.
    chain = audit_verification.status(instance)
    return pages.render(request, "audit.html", status_code=400 if problem else 200,
                        me=signed_in, events=rows, chain=chain, names=names, f=f,
                        params=f.as_params(), problem=problem, paged=before is not None,
                        next_before=rows[-1].seq if len(rows) == PAGE_SIZE else None)


@router.get("/dashboard/audit/export.{fmt}")
def export(request: Request, fmt: Literal["csv", "jsonl"], type: FilterType = "",
           actor: FilterPerson = "", user: FilterPerson = "", since: FilterFrom = "",
           until: FilterTo = "") -> Response:
    """What the filters select, newest first, up to EXPORT_LIMIT events: CSV for a
    spreadsheet, JSON Lines (the Backend API's event objects, hashes included) for tools."""
    f = _filters(type, actor, user, since, until)
    instance = instance_of(request)
    with instance.transaction() as db:
        operator_sessions.current(db, instance, request)
    with instance.snapshot() as db:
        try:
            q = _query(db, f, limit=_EXPORT_BATCH)
        except _BadFilter as bad:
            return Response(bad.message + "\n", status_code=400, media_type="text/plain")

    def batches() -> Iterator[tuple[Sequence[AuditEvent], dict[str, str]]]:
        sent, query = 0, q
        while sent < EXPORT_LIMIT:
            with instance.snapshot() as db:
                rows = audit.list_events(db, replace(query, limit=min(
                    _EXPORT_BATCH, EXPORT_LIMIT - sent)))
                names = names_of(db, rows) if fmt == "csv" else {}
            if not rows:
                return
            yield rows, names
            sent += len(rows)
            query = replace(query, before_seq=rows[-1].seq)

    stamp = dt.datetime.fromtimestamp(instance.now_ms() / 1000, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    body = _csv(batches()) if fmt == "csv" else _jsonl(batches())
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    response = StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="actas-audit-{stamp}.{fmt}"'})
    return pages.security_headers(request, response)


CSV_COLUMNS = ("seq", "id", "occurred_at", "type", "actor_sub", "actor_name", "user_id",
               "user_name", "session_id", "actor_token_id", "reason", "ip_address",
               "user_agent", "data", "hash", "prev_hash")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a value that starts like a formula
    (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed with ``'`` so it is never run."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(batches: Iterator[tuple[Sequence[AuditEvent], dict[str, str]]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for rows, names in batches:
        for e in rows:
            writer.writerow([_cell(v) for v in (
                e.seq, e.id, pages.iso(e.occurred_at), e.type, e.actor_sub,
                names.get(e.actor_sub or ""), e.user_id, names.get(e.user_id or ""),
                e.session_id, e.actor_token_id, e.reason, e.ip_address, e.user_agent,
                json.dumps(e.data, sort_keys=True) if e.data is not None else "",
                e.hash, e.prev_hash)])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.tell() == 0:
        yield out.getvalue()


def _jsonl(batches: Iterator[tuple[Sequence[AuditEvent], dict[str, str]]]) -> Iterator[str]:
    for rows, _names in batches:
        yield "".join(audit_event_object(e).model_dump_json() + "\n" for e in rows)


@router.get("/dashboard/audit/{seq}")
def event_page(request: Request, seq: int) -> Response:
    """One event: every field, its data, where it sits in the chain (and whether the
    chain has been verified through it), and the events of the same impersonation."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
    with instance.snapshot() as db:
        event = db.get(AuditEvent, seq) if 0 < seq < 2**62 else None
        if event is None:
            return pages.render(request, "not_found.html", me=signed_in, status_code=404)
        related: Sequence[AuditEvent] = ()
        if event.user_id and (event.session_id or event.actor_token_id):
            same = []
            if event.session_id:
                same.append(AuditEvent.session_id == event.session_id)
            if event.actor_token_id:
                same.append(AuditEvent.actor_token_id == event.actor_token_id)
            # Through the user's index: the audit log has none on sessions or tickets.
            related = db.scalars(select(AuditEvent).where(
                AuditEvent.user_id == event.user_id, or_(*same))
                .order_by(AuditEvent.seq).limit(200)).all()
        names = names_of(db, [event, *related])
        newer = db.scalar(select(AuditEvent.seq).where(AuditEvent.seq > seq)
                          .order_by(AuditEvent.seq).limit(1))
    chain = audit_verification.status(instance)
    return pages.render(request, "audit_event.html", me=signed_in, e=event, names=names,
                        related=related, chain=chain, newer=newer,
                        data=json.dumps(event.data, indent=2, sort_keys=True)
                        if event.data is not None else None)


def names_of(db: Db, rows: Sequence[AuditEvent]) -> dict[str, str]:
    """A person's name for every operator and user id the page shows (the acting
    operator, the user, whoever ended something): two lookups for the whole page."""
    ids: set[str] = set()
    for row in rows:
        data = row.data or {}
        ids.update(v for v in (row.actor_sub, row.user_id, data.get("by"), data.get("ended_by"),
                               data.get("operator_id"), data.get("actor_sub"))
                   if isinstance(v, str))
    names: dict[str, str] = {}
    operator_ids = [i for i in ids if i.startswith(f"{operators.OPERATOR}_")]
    for op in db.scalars(select(Operator).where(Operator.id.in_(operator_ids))):
        names[op.id] = op.name or op.email_address
    user_ids = [i for i in ids if i.startswith(f"{ids_module.USER}_")]
    for user in db.scalars(select(User).where(User.id.in_(user_ids))):
        full = " ".join(n for n in (user.first_name, user.last_name) if n)
        email = user.email_addresses[0].email_address if user.email_addresses else None
        names[user.id] = full or email or user.username or user.id
    return names
