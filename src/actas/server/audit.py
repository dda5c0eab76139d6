"""The audit log: append-only and hash-chained, so an edit or deletion shows.

Each event stores the previous event's hash and its own, an HMAC-SHA256 (key
derived from the instance secret) over the previous hash and the event's
canonical JSON. Anyone with write access to the database but not the
instance secret cannot re-forge the chain after editing, inserting or
deleting a row; ``verify`` names the first row where it breaks.

Appending has two steps, so that writers never queue on one row:
- ``stage``: the transaction that caused the event inserts it into
  ``audit_staged``, sealed with an HMAC of its own. Nothing is shared between
  writers but the table.
- ``chain_staged``: right after that transaction commits (see
  ``actas.server.audit_chainer``), and in the worker for anything left behind
  by a crash, a short transaction locks the single chain-head row and moves
  every staged event, in staging order, into ``audit_events``, giving each its
  ``seq`` and hash. The head's lock makes ``seq`` gapless, so a missing number
  is a deleted row; one round chains everything that queued while the last
  one held the lock.

A staged row that was edited or forged is caught by its seal when chained, and
recorded as ``audit.staged_event_altered`` in its place, as is a copy of an
event already chained; a row that does not even parse is treated the same,
so no row can stop the chaining of the others. What cannot be shown
is a staged row deleted in the milliseconds before it is chained, by someone
who could as well have stopped the write.

What a hash chain cannot show on its own is the silent removal of the newest
rows together with the head; ``verify`` returns the head hash so that
operators can anchor it elsewhere (a log shipper, a ticket) when they need to.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, cast, delete, insert, select, update
from sqlalchemy.orm import Session as Db
from sqlalchemy.sql.dml import ReturningDelete

from actas.server import ids
from actas.server.credentials import Secret
from actas.server.db.schema import AuditChainHead, AuditCheckpoint, AuditEvent, AuditStaged
from actas.server.sealing import derive_key

GENESIS = "0" * 64
_HEAD_ID = 1
EVENT = "evt"

# The event's fields covered by its hash, in a fixed order.
HASHED_FIELDS = ("seq", "id", "type", "occurred_at", "actor_sub", "user_id", "session_id",
                 "actor_token_id", "reason", "ip_address", "user_agent", "data")
# Those a staged event has (no place in the chain yet), as audit_staged's columns.
STAGED_FIELDS = ("event_id", *HASHED_FIELDS[2:])
# How many staged events one chaining transaction takes.
CHAIN_BATCH = 500
# The session.info key listing the events a transaction staged.
STAGED = "actas_audit_staged"

# The chaining statements, built once: building a statement costs more Python than
# running it, and every audited request chains.
_HEAD_FOR_UPDATE = (select(AuditChainHead.last_seq, AuditChainHead.last_hash)
                    .where(AuditChainHead.id == _HEAD_ID).with_for_update())
_ALREADY_CHAINED = select(AuditEvent.id).where(
    AuditEvent.id.in_(bindparam("ids", expanding=True)))
_APPEND = insert(AuditEvent)
_STAGE = insert(AuditStaged)
_MOVE_HEAD = (update(AuditChainHead).where(AuditChainHead.id == _HEAD_ID)
              .values(last_seq=bindparam("seq"), last_hash=bindparam("hash")))


@functools.cache
def _take_staged(limit: int) -> ReturningDelete[Any]:
    """Delete the oldest ``limit`` staged rows, returning them with ``data`` as its
    stored text (a row someone wrote by hand may not even parse)."""
    oldest = select(AuditStaged.id).order_by(AuditStaged.id).limit(limit)
    return (delete(AuditStaged).where(AuditStaged.id.in_(oldest.scalar_subquery()))
            .returning(AuditStaged.id, AuditStaged.mac,
                       *[cast(AuditStaged.data, Text) if name == "data"
                         else getattr(AuditStaged, name) for name in STAGED_FIELDS]))


@dataclass(frozen=True)
class RequestOrigin:
    """Where a request came from, as recorded with every event it causes."""

    ip_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Record:
    """What happened, before it is given its place in the chain."""

    type: str
    actor_sub: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    actor_token_id: str | None = None
    reason: str | None = None
    origin: RequestOrigin = RequestOrigin()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    head_hash: str
    broken_seq: int | None = None
    broken_id: str | None = None
    problem: str | None = None


class AuditLog:
    def __init__(self, instance_secret: Secret) -> None:
        self._key = derive_key(instance_secret, "audit-chain")
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)
        self._checkpoint_key = derive_key(instance_secret, "audit-checkpoint")
        self._staged_key = derive_key(instance_secret, "audit-staged")
        # The furthest this process has seen the chain verified: a checkpoint found
        # behind it was rewound (see audit_verification.status). Raised by the worker
        # and by dashboard views at once: only under the lock, only upwards.
        self.verified_high_water = 0
        self._high_water_lock = threading.Lock()

    def note_verified(self, seq: int) -> None:
        """Raise ``verified_high_water`` to ``seq`` (never lower it)."""
        with self._high_water_lock:
            if seq > self.verified_high_water:
                self.verified_high_water = seq

    def ensure_head(self, db: Db) -> None:
        if db.get(AuditChainHead, _HEAD_ID) is None:
            db.add(AuditChainHead(id=_HEAD_ID, last_seq=0, last_hash=GENESIS))
            db.flush()

    def stage(self, db: Db, record: Record, *, now_ms: int) -> str:
        """Write ``record`` in the caller's transaction, to be chained after it commits;
        return the event's id. Takes no shared lock."""
        event_id = ids.new_id(EVENT, now_ms)
        fields = {
            "event_id": event_id, "type": record.type, "occurred_at": now_ms,
            "actor_sub": record.actor_sub, "user_id": record.user_id,
            "session_id": record.session_id, "actor_token_id": record.actor_token_id,
            "reason": record.reason, "ip_address": _clip(record.origin.ip_address, 64),
            "user_agent": _clip(record.origin.user_agent, 512), "data": record.data,
        }
        # A Core INSERT on the transaction's connection, now: the ORM's unit of work
        # cost three times the statement for a row nothing reads back.
        db.connection().execute(_STAGE, {**fields, "mac": self._staged_mac(fields)})
        db.info.setdefault(STAGED, []).append(event_id)
        return event_id

    def chain_staged(self, db: Db, *, now_ms: int, limit: int = CHAIN_BATCH,
                     own: Collection[str] = ()) -> list[AuditEvent]:
        """Move up to ``limit`` staged events into the chain, in staging order, and return
        them. Holds the chain head's lock until the caller's transaction ends: keep that
        transaction short (it is four statements, written in Core for that reason).

        ``own``: ids of events the caller's transaction staged itself, fresh and never
        chained, so not checked for being copies of chained ones (the one statement a
        writer chaining its own events would spend on that; an id that somehow were in
        the chain already would still fail the INSERT, and the whole batch with it)."""
        # Core statements on the transaction's connection: none of the ORM's work is
        # needed here, and it would cost more than the statements. (Flushed first:
        # the caller's transaction may hold events it staged and has not written.)
        db.flush()
        connection = db.connection()
        head = connection.execute(_HEAD_FOR_UPDATE).one_or_none()
        if head is None:
            raise RuntimeError("the audit chain head is missing; run `actas migrate`")
        taken = connection.execute(_take_staged(limit)).all()
        if not taken:
            return []
        staged = [(self._unsealed(row), row) for row in sorted(taken, key=lambda row: row[0])]
        claimed = [fields["event_id"] for fields, _row in staged
                   if fields is not None and fields["event_id"] not in own]
        replayed = set(connection.scalars(_ALREADY_CHAINED, {"ids": claimed})) if claimed \
            else set()
        seq, prev_hash = head
        rows = []
        for fields, row in staged:
            if fields is None or fields["event_id"] in replayed:
                fields = _altered(row, now_ms=now_ms)
            seq += 1
            hashed = {"seq": seq, "id": fields.pop("event_id"), **fields}
            event_hash = self._hash_of(prev_hash, hashed)
            rows.append({**hashed, "prev_hash": prev_hash, "hash": event_hash})
            prev_hash = event_hash
        connection.execute(_APPEND, rows)
        connection.execute(_MOVE_HEAD, {"seq": seq, "hash": prev_hash})
        return [AuditEvent(**row) for row in rows]

    def _unsealed(self, row: Sequence[Any]) -> dict[str, Any] | None:
        """A staged row's fields if its seal matches them; ``None`` if it was edited,
        forged, or holds what actas never writes (JSON that does not parse, a value of
        the wrong type): such a row must not stop the chaining of the others."""
        try:
            fields: dict[str, Any] = dict(zip(STAGED_FIELDS, row[2:], strict=True))
            fields["data"] = json.loads(fields["data"])
            mac = row[1]
            if isinstance(mac, str) and mac.isascii() and \
                    hmac.compare_digest(mac, self._staged_mac(fields)):
                return fields
        except (TypeError, ValueError):
            pass
        return None

    def _staged_mac(self, fields: Mapping[str, Any]) -> str:
        body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hmac.new(self._staged_key, body.encode(), hashlib.sha256).hexdigest()

    def _hash_of(self, prev_hash: str, fields: Mapping[str, Any]) -> str:
        body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        mac = self._keyed.copy()  # the key schedule once, not per event
        mac.update(f"{prev_hash}\n{body}".encode())
        return mac.hexdigest()

    def verify(self, db: Db) -> Verification:
        """Walk the whole chain; report the first row where it breaks.

        Run it in ``Instance.snapshot()``: it reads every event, and must hold
        no lock that a sign-in would wait for.
        """
        result = self.walk(db, after_seq=0, after_hash=GENESIS)
        return self.check_head(db, result) if result.ok else result

    def walk(self, db: Db, *, after_seq: int, after_hash: str, limit: int | None = None
             ) -> Verification:
        """Verify the events after ``after_seq`` (whose hash is ``after_hash``), in order,
        at most ``limit`` of them. ``events`` is then the last verified seq, and
        ``head_hash`` its hash.

        Reads plain rows rather than ORM objects: a million events verify in
        seconds, not minutes.
        """
        expected_seq, prev_hash = after_seq + 1, after_hash
        stmt = (select(*_COLUMNS).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)
                .execution_options(yield_per=5000))
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = db.execute(stmt)
        hashed_names = HASHED_FIELDS
        with rows:  # closed on the early returns too (a server-side cursor on PostgreSQL)
            for row in rows:
                # _COLUMNS order: HASHED_FIELDS (seq, id first), then prev_hash, hash.
                seq, event_id = row[0], row[1]
                if seq != expected_seq:
                    return Verification(False, expected_seq - 1, prev_hash, expected_seq,
                                        None, f"event {expected_seq} is missing (deleted)")
                if row[_PREV] != prev_hash:
                    return Verification(False, seq - 1, prev_hash, seq, event_id,
                                        f"event {seq} does not link to the event before it")
                hashed = dict(zip(hashed_names, row, strict=False))
                if not hmac.compare_digest(row[_HASH], self._hash_of(prev_hash, hashed)):
                    return Verification(False, seq - 1, prev_hash, seq, event_id,
                                        f"event {seq} was modified after it was written")
                expected_seq, prev_hash = seq + 1, row[_HASH]
        return Verification(True, expected_seq - 1, prev_hash)

    def check_head(self, db: Db, walked: Verification) -> Verification:
        """``walked`` reached the end of the table: does the chain head agree?"""
        head = db.get(AuditChainHead, _HEAD_ID)
        count = walked.events
        if head is not None and (head.last_seq != count or head.last_hash != walked.head_hash):
            return Verification(False, count, walked.head_hash, count + 1, None,
                                f"events after {count} are missing (the chain head records "
                                f"{head.last_seq})")
        return walked

    def head_seq(self, db: Db) -> int:
        head = db.get(AuditChainHead, _HEAD_ID)
        return head.last_seq if head is not None else 0

    def event_hash(self, db: Db, seq: int) -> str | None:
        """The stored hash of event ``seq`` (``GENESIS`` for 0), or ``None`` if it is gone."""
        if seq == 0:
            return GENESIS
        stored: str | None = db.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
        return stored

    # -- checkpoints: sealed with the chain's key -------------------------------------------

    def read_checkpoint(self, db: Db, name: str, *, for_update: bool = False
                        ) -> Checkpoint | None:
        """The checkpoint ``name``; raises ``CheckpointForged`` if its seal does not match."""
        row = db.get(AuditCheckpoint, name, with_for_update=for_update)
        if row is None:
            return None
        checkpoint = Checkpoint(row.name, row.seq, row.hash, row.completed_at, row.problem)
        if not hmac.compare_digest(row.mac, self._seal(checkpoint)):
            raise CheckpointForged(name)
        return checkpoint

    def save_checkpoint(self, db: Db, checkpoint: Checkpoint, *, now_ms: int) -> None:
        row = db.get(AuditCheckpoint, checkpoint.name, with_for_update=True)
        if row is None:
            row = AuditCheckpoint(name=checkpoint.name)
            db.add(row)
        row.seq, row.hash = checkpoint.seq, checkpoint.hash
        row.completed_at, row.problem = checkpoint.completed_at, checkpoint.problem
        row.mac, row.updated_at = self._seal(checkpoint), now_ms
        db.flush()

    def _seal(self, checkpoint: Checkpoint) -> str:
        text = json.dumps([checkpoint.name, checkpoint.seq, checkpoint.hash,
                           checkpoint.completed_at, checkpoint.problem])
        return hmac.new(self._checkpoint_key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    name: str
    seq: int
    hash: str
    completed_at: int | None = None
    problem: str | None = None


class CheckpointForged(Exception):
    """A checkpoint's seal does not match: someone with database access moved it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the audit checkpoint {name!r} was altered (its seal does not match)")
        self.name = name


_COLUMNS = [getattr(AuditEvent, name) for name in (*HASHED_FIELDS, "prev_hash", "hash")]
_PREV, _HASH = len(HASHED_FIELDS), len(HASHED_FIELDS) + 1


@dataclass(frozen=True)
class AuditQuery:
    actor_sub: str | None = None
    user_id: str | None = None
    types: Sequence[str] = ()
    occurred_after: int | None = None
    occurred_before: int | None = None
    before_seq: int | None = None  # the cursor: events older than this one
    limit: int = 50


def list_events(db: Db, q: AuditQuery) -> Sequence[AuditEvent]:
    """Newest first, keyset-paginated on ``seq``."""
    clauses: list[ColumnElement[bool]] = []
    if q.actor_sub is not None:
        clauses.append(AuditEvent.actor_sub == q.actor_sub)
    if q.user_id is not None:
        clauses.append(AuditEvent.user_id == q.user_id)
    if q.types:
        clauses.append(AuditEvent.type.in_(list(q.types)))
    if q.occurred_after is not None:
        clauses.append(AuditEvent.occurred_at > q.occurred_after)
    if q.occurred_before is not None:
        clauses.append(AuditEvent.occurred_at < q.occurred_before)
    if q.before_seq is not None:
        clauses.append(AuditEvent.seq < q.before_seq)
    return db.scalars(select(AuditEvent).where(*clauses).order_by(AuditEvent.seq.desc())
                      .limit(q.limit)).all()


def _altered(row: Sequence[Any], *, now_ms: int) -> dict[str, Any]:
    """What is chained in place of a staged event whose seal does not match, or that
    repeats an event already chained: the fact, with the id and type it claimed, and
    none of its (untrustworthy) content."""
    claimed: dict[str, Any] = dict(zip(STAGED_FIELDS, row[2:], strict=True))
    return {"event_id": ids.new_id(EVENT, now_ms), "type": "audit.staged_event_altered",
            "occurred_at": now_ms, "actor_sub": None, "user_id": None, "session_id": None,
            "actor_token_id": None, "reason": None, "ip_address": None, "user_agent": None,
            "data": {"claimed_event_id": str(claimed["event_id"])[:40],
                     "claimed_type": str(claimed["type"])[:64]}}


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None
