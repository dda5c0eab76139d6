"""Verifying the audit chain without holding anything up: snapshots and sealed checkpoints.

Before: the dashboard re-verified the whole chain on every view inside
SQLite's write lock (9.7 s at 157,000 events, and a token refresh waited
behind it). These tests show the reads lock nothing, the dashboard's status
comes from a sealed checkpoint plus the newest events, a tampered event is
still found (after the checkpoint at once, before it by the background pass),
a forged checkpoint is caught, and ``actas audit verify`` resumes.
"""

from __future__ import annotations

import sys
import threading

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from actas.server import Instance, audit_verification
from actas.server.audit import Record
from actas.server.clock import FrozenClock
from actas.server.db.schema import AuditCheckpoint, AuditEvent

EVENTS = AuditEvent.__table__


def _append(instance: Instance, count: int) -> None:
    for i in range(count):
        instance.record_alone(Record(type="test.event", actor_sub="op_test", data={"i": i}))


def _edit(engine: Engine, seq: int) -> None:
    with engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.seq == seq)
                           .values(reason="nothing to see here"))


def test_a_snapshot_locks_out_no_writer_and_sees_one_moment(instance: Instance) -> None:
    _append(instance, 3)
    with instance.snapshot() as db:
        before = db.scalar(select(func.count()).select_from(AuditEvent))
        # A write from elsewhere goes through while the snapshot is open (under
        # BEGIN IMMEDIATE it would wait for the snapshot to end, here forever)...
        _append(instance, 2)
        # ...and the snapshot keeps seeing the moment it started.
        assert db.scalar(select(func.count()).select_from(AuditEvent)) == before == 3
    with instance.snapshot() as db:
        assert db.scalar(select(func.count()).select_from(AuditEvent)) == 5


def test_status_verifies_only_what_is_new_and_moves_the_checkpoint(instance: Instance) -> None:
    _append(instance, 12)
    first = audit_verification.status(instance, max_new=5)
    assert first.ok and (first.verified_through, first.head_seq, first.unchecked) == (5, 12, 7)
    second = audit_verification.status(instance, max_new=5)
    assert second.verified_through == 10
    audit_verification.advance(instance)  # what the worker does every round
    assert audit_verification.status(instance).verified_through == 12


def test_an_edit_after_the_checkpoint_is_caught_at_once(instance: Instance,
                                                        engine: Engine) -> None:
    _append(instance, 4)
    assert audit_verification.status(instance).verified_through == 4
    _append(instance, 3)
    _edit(engine, 6)
    result = audit_verification.status(instance)
    assert not result.ok and result.broken_seq == 6 and "modified" in (result.problem or "")


def test_an_edit_before_the_checkpoint_is_caught_by_the_background_pass(
        instance: Instance, engine: Engine, clock: FrozenClock) -> None:
    _append(instance, 6)
    audit_verification.advance(instance)  # checkpoint at 6, and a first full pass completes
    assert audit_verification.status(instance).last_full_check_at == clock.now_ms()
    _edit(engine, 2)
    assert audit_verification.status(instance).ok  # the checkpoint alone cannot see it

    clock.advance(ms=audit_verification.FULL_PASS_INTERVAL_MS)
    audit_verification.advance(instance)
    result = audit_verification.status(instance)
    assert not result.ok and "event 2" in (result.problem or "")


def test_a_checkpoint_moved_by_a_database_writer_is_caught(instance: Instance,
                                                           engine: Engine) -> None:
    _append(instance, 5)
    audit_verification.status(instance)
    _append(instance, 2)
    _edit(engine, 7)
    with engine.begin() as connection:  # "verified up to 7": the edit would hide behind it
        hash_7 = connection.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == 7)).scalar()
        connection.execute(update(AuditCheckpoint.__table__)
                           .where(AuditCheckpoint.__table__.c.name == "verified")
                           .values(seq=7, hash=hash_7))
    result = audit_verification.status(instance)
    assert not result.ok and "altered" in (result.problem or "")


def test_the_full_run_reports_progress_and_resumes_where_it_stopped(instance: Instance
                                                                    ) -> None:
    _append(instance, 10)
    seen: list[int] = []

    def stop_after_the_first_slice(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the middle of a run
        audit_verification.verify_all(instance, slice_size=4, progress=stop_after_the_first_slice)
    resumed: list[int] = []
    result = audit_verification.verify_all(instance, resume=True, slice_size=4,
                                           progress=lambda done, total: resumed.append(done))
    assert result.ok and result.events == 10
    assert seen == [4] and resumed == [8, 10]  # it did not start over
    assert audit_verification.status(instance).verified_through == 10


def test_deleting_the_newest_event_is_caught_by_every_path(instance: Instance,
                                                           engine: Engine) -> None:
    _append(instance, 5)
    with engine.begin() as connection:
        connection.execute(EVENTS.delete().where(EVENTS.c.seq == 5))
    assert not audit_verification.status(instance).ok
    result = audit_verification.verify_all(instance, slice_size=2)
    assert not result.ok and result.broken_seq == 5 and "missing" in (result.problem or "")


def test_a_resumed_run_does_not_clear_a_break_the_background_pass_found(
        instance: Instance, engine: Engine) -> None:
    _append(instance, 10)
    with pytest.raises(KeyboardInterrupt):
        audit_verification.verify_all(instance, slice_size=8, progress=_interrupt)
    _edit(engine, 3)
    audit_verification.advance(instance)  # the background pass finds event 3
    assert not audit_verification.status(instance).ok
    audit_verification.verify_all(instance, resume=True)  # trusted its start, after 3
    assert not audit_verification.status(instance).ok
    fresh = audit_verification.verify_all(instance)  # from the first event: the truth
    assert not fresh.ok and fresh.broken_seq == 3


def test_a_rewound_checkpoint_is_caught(instance: Instance, engine: Engine) -> None:
    _append(instance, 6)
    assert audit_verification.status(instance).verified_through == 6
    with engine.begin() as connection:  # delete the bookkeeping to hide what follows
        connection.execute(AuditCheckpoint.__table__.delete())
    result = audit_verification.status(instance)
    assert not result.ok and "went back" in (result.problem or "")


def test_a_status_that_moves_the_checkpoint_during_another_is_no_rewind(
        instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker's round and a dashboard view run at once: the view's snapshot
    # starts, the worker moves the checkpoint on and commits, then the view reads the
    # checkpoint its snapshot still shows. That is an older one, not a rewound one.
    _append(instance, 3)
    assert audit_verification.status(instance).verified_through == 3
    _append(instance, 2)
    audit = instance.audit
    head_seq = audit.head_seq
    meanwhile: list[audit_verification.ChainStatus] = []
    interleaved: list[bool] = []

    def head_seq_then_the_worker(db):  # type: ignore[no-untyped-def]
        seen = head_seq(db)  # the view's snapshot has begun
        if not interleaved:  # once, in the view (the worker's own call passes through)
            interleaved.append(True)
            worker = threading.Thread(
                target=lambda: meanwhile.append(audit_verification.status(instance)))
            worker.start()
            worker.join()
        return seen

    monkeypatch.setattr(audit, "head_seq", head_seq_then_the_worker)
    view = audit_verification.status(instance)
    assert meanwhile[0].ok and meanwhile[0].verified_through == 5
    assert view.ok, view.problem
    assert view.verified_through == 5


def test_the_high_water_mark_only_rises_whoever_raises_it(
        instance: Instance) -> None:
    # The worker and dashboard views raise it at once; a lower value noted late (a
    # slower walk that started earlier) must not bring it down, or a rewind to just
    # above that value would go unseen.
    audit = instance.audit
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        noted = [list(range(start, 20_000, 7)) for start in range(8)]
        threads = [threading.Thread(target=lambda seqs=seqs: [audit.note_verified(q)
                                                              for q in reversed(seqs)])
                   for seqs in noted]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert audit.verified_high_water == max(max(seqs) for seqs in noted)
    audit.note_verified(5)
    assert audit.verified_high_water == max(max(seqs) for seqs in noted)


def test_a_forged_full_pass_row_is_kept_as_evidence(instance: Instance, engine: Engine,
                                                     clock: FrozenClock) -> None:
    _append(instance, 4)
    audit_verification.advance(instance)
    table = AuditCheckpoint.__table__
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.name == "full_pass")
                           .values(completed_at=clock.now_ms() + 10**9))
    clock.advance(ms=audit_verification.FULL_PASS_INTERVAL_MS)
    audit_verification.advance(instance)
    assert "altered" in (audit_verification.status(instance).problem or "")


def _interrupt(done: int, total: int) -> None:
    raise KeyboardInterrupt
