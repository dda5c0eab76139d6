"""Verifying the audit chain without ever holding anything up.

The chain used to be re-verified whole on every view of the dashboard's audit
page, inside SQLite's write lock: at 157,000 events one view took 9.7 s and
a token refresh waited 9.5 s behind it. Now:

- Every read runs in ``Instance.snapshot()``: one consistent view, no lock a
  writer waits for.
- The verified prefix is a **checkpoint** (``verified``: up to which event,
  and that event's hash), sealed with a key derived from the instance secret.
  ``status`` (the dashboard) checks the checkpoint's seal and that its event
  still has its hash, then verifies only the events after it, at most
  ``STATUS_MAX_NEW`` of them, and moves the checkpoint forward.
- The worker keeps the checkpoint near the head (``advance``), and re-walks
  the whole chain from the first event in the background, a slice per round,
  once per ``FULL_PASS_INTERVAL_MS`` (``full_pass``): an edit to an old event
  is found within that time, and shown on the dashboard.
- ``actas audit verify`` (``verify_all``) walks everything, in slices with a
  progress report, and can resume where an interrupted run stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actas.server.audit import GENESIS, Checkpoint, CheckpointForged, Verification
from actas.server.instance import Instance

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as Db

VERIFIED = "verified"
FULL_PASS = "full_pass"  # noqa: S105  (a checkpoint's name)
CLI_RUN = "cli_run"
STATUS_MAX_NEW = 5_000  # events a dashboard view verifies at most
ADVANCE_PER_ROUND = 5_000  # events the worker verifies per round, each way (~0.2 s)
FULL_PASS_INTERVAL_MS = 3_600_000
SLICE = 50_000  # events per snapshot in a full run


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    verified_through: int  # every event up to this seq verifies
    head_seq: int  # the newest event
    head_hash: str  # the hash of event verified_through
    last_full_check_at: int | None  # when a walk from the first event last completed
    broken_seq: int | None = None
    broken_id: str | None = None
    problem: str | None = None

    @property
    def unchecked(self) -> int:
        """Events newer than the verified prefix (the worker is catching up)."""
        return max(0, self.head_seq - self.verified_through)


def status(instance: Instance, *, max_new: int = STATUS_MAX_NEW) -> ChainStatus:
    """The chain's status from its checkpoint plus at most ``max_new`` newer events."""
    audit = instance.audit
    # Read before the snapshot starts: every checkpoint it vouches for was committed
    # before then, so the snapshot sees it. (Read later, a status that committed while
    # this snapshot was open would count as a rewind.)
    high_water = audit.verified_high_water
    with instance.snapshot() as db:
        head_seq = audit.head_seq(db)
        try:
            checkpoint = audit.read_checkpoint(db, VERIFIED)
            full = audit.read_checkpoint(db, FULL_PASS)
        except CheckpointForged as forged:
            return ChainStatus(ok=False, verified_through=0, head_seq=head_seq,
                               head_hash=GENESIS, last_full_check_at=None, problem=str(forged))
        start = checkpoint or Checkpoint(VERIFIED, 0, GENESIS)
        last_full = full.completed_at if full else None
        if start.seq < high_water:
            # Checkpoints only move forward: a removed or replayed row is someone
            # rewinding the bookkeeping to hide what came after it.
            return ChainStatus(
                ok=False, verified_through=start.seq, head_seq=head_seq,
                head_hash=start.hash, last_full_check_at=last_full,
                problem=f"the verified checkpoint went back from event "
                        f"{high_water} to {start.seq}: it was removed or "
                        "replaced with an older one")
        if full is not None and full.problem:
            return _broken(full.problem, start, head_seq, last_full)
        walked, _at_end = _slice(instance, db, start.seq, start.hash, max_new,
                                 "after it was verified")
    if not walked.ok:
        return ChainStatus(ok=False, verified_through=walked.events, head_seq=head_seq,
                           head_hash=walked.head_hash, last_full_check_at=last_full,
                           broken_seq=walked.broken_seq, broken_id=walked.broken_id,
                           problem=walked.problem)
    if walked.events > start.seq:
        _move_verified(instance, walked)
    audit.note_verified(walked.events)
    return ChainStatus(ok=True, verified_through=walked.events, head_seq=head_seq,
                       head_hash=walked.head_hash, last_full_check_at=last_full)


def advance(instance: Instance, *, budget: int = ADVANCE_PER_ROUND) -> None:
    """One worker round: move the verified checkpoint on, and the background full pass."""
    status(instance, max_new=budget)
    _full_pass_step(instance, budget)


def verify_all(instance: Instance, *, resume: bool = False, slice_size: int = SLICE,
               progress: Callable[[int, int], None] | None = None) -> Verification:
    """Walk the whole chain from the first event (or, with ``resume``, from where the last
    interrupted run stopped), one snapshot per slice; ``progress(done, total)`` after each.
    """
    audit = instance.audit
    with instance.snapshot() as db:
        saved = audit.read_checkpoint(db, CLI_RUN) if resume else None
        total = audit.head_seq(db)
    seq, hash_ = (saved.seq, saved.hash) if saved else (0, GENESIS)
    while True:
        with instance.snapshot() as db:
            walked, finished = _slice(instance, db, seq, hash_, slice_size,
                                      "since the run began")
            total = max(total, audit.head_seq(db))
        if walked.ok:
            seq, hash_ = walked.events, walked.head_hash
            _save(instance, Checkpoint(CLI_RUN, seq, hash_))
            if progress is not None:
                progress(seq, total)
        if not walked.ok or finished:
            break
    if walked.ok:
        _move_verified(instance, walked)
        _save(instance, Checkpoint(CLI_RUN, 0, GENESIS))
        if saved is None or saved.seq == 0:
            # Only a walk from the very first event vouches for the whole chain (and may
            # clear what the background pass found); a resumed one trusted its start.
            _save(instance, Checkpoint(FULL_PASS, 0, GENESIS, completed_at=instance.now_ms()))
    return walked


def _full_pass_step(instance: Instance, budget: int) -> None:
    audit = instance.audit
    now = instance.now_ms()
    with instance.snapshot() as db:
        try:
            stored = audit.read_checkpoint(db, FULL_PASS)
        except CheckpointForged:
            return  # evidence: status() reports it until a full CLI run replaces it
        full = stored or Checkpoint(FULL_PASS, 0, GENESIS)
        if full.problem or (full.seq == 0 and full.completed_at is not None
                            and now - full.completed_at < FULL_PASS_INTERVAL_MS):
            return  # a break stays reported until someone looks; a fresh pass rests
        walked, done = _slice(instance, db, full.seq, full.hash, budget,
                              "after it was verified")
    if not walked.ok:
        where = f"event {walked.broken_seq}" + (f" ({walked.broken_id})"
                                                 if walked.broken_id else "")
        new = Checkpoint(FULL_PASS, full.seq, full.hash, full.completed_at,
                         f"{where}: {walked.problem}")
    elif done:
        new = Checkpoint(FULL_PASS, 0, GENESIS, completed_at=now)
    else:
        new = Checkpoint(FULL_PASS, walked.events, walked.head_hash, full.completed_at)
    with instance.transaction() as db:
        # Compare and set: another replica's pass may have moved on, or found a break,
        # since this one read the row; a found break is never overwritten here.
        try:
            current = audit.read_checkpoint(db, FULL_PASS, for_update=True)
        except CheckpointForged:
            return
        if current == stored:
            audit.save_checkpoint(db, new, now_ms=now)


def _slice(instance: Instance, db: Db, seq: int, hash_: str, limit: int, since: str
           ) -> tuple[Verification, bool]:
    """Verify at most ``limit`` events after event ``seq``, whose stored hash must still be
    ``hash_``; where that reaches the end of the table, the chain head must agree too.

    Returns the result and whether it reached the end (the head of this snapshot, or
    no event after the last one: then ``check_head`` says what is missing). A start
    that changed or vanished is reported with nothing verified.
    """
    audit = instance.audit
    if audit.event_hash(db, seq) != hash_:
        return Verification(False, 0, GENESIS, seq, None,
                            f"event {seq} changed or vanished {since}"), False
    walked = audit.walk(db, after_seq=seq, after_hash=hash_, limit=limit)
    at_end = walked.ok and (walked.events >= audit.head_seq(db) or walked.events - seq < limit)
    return (audit.check_head(db, walked) if at_end else walked), at_end


def _move_verified(instance: Instance, walked: Verification) -> None:
    """Move the ``verified`` checkpoint forward to ``walked`` (never back)."""
    with instance.transaction() as db:
        current = instance.audit.read_checkpoint(db, VERIFIED, for_update=True)
        if current is None or current.seq < walked.events:
            instance.audit.save_checkpoint(db, Checkpoint(VERIFIED, walked.events,
                                                          walked.head_hash),
                                           now_ms=instance.now_ms())


def _save(instance: Instance, checkpoint: Checkpoint) -> None:
    with instance.transaction() as db:
        instance.audit.save_checkpoint(db, checkpoint, now_ms=instance.now_ms())


def _broken(problem: str, start: Checkpoint, head_seq: int, last_full: int | None
            ) -> ChainStatus:
    return ChainStatus(ok=False, verified_through=start.seq, head_seq=head_seq,
                       head_hash=start.hash, last_full_check_at=last_full, problem=problem)
