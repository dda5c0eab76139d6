"""Chaining staged audit events right after the transactions that staged them.

Every transaction that records an event waits, after its commit, until the
event is in the chain, so an answered request is an audited one (its events
were committed with it in any case: if the chain head stays locked past
``WAIT_SECONDS``, the request answers and the worker chains them). Waiting
threads of one process share the work, as a database's group commit does: one
of them (the leader) runs a chaining round for everything staged so far, the
others wait for that round, and the next leader takes whatever queued
meanwhile. A process thus holds the chain head's lock once per round, not
once per event; other processes do the same, and whoever gets the lock chains
everyone's events.

On SQLite, which has one writer at a time, the writer's transaction chains its
own events before it commits instead (``chain_within``): it holds the only
lock chaining needs already, so waiting for a round after the commit would
only add a transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from actas.server import notices, webhooks
from actas.server.audit import CHAIN_BATCH, STAGED

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as Db

    from actas.server.instance import Instance

log = logging.getLogger("actas.audit")

# How long a writer waits for the round that chains its events; past it, it answers
# and the worker's sweep chains them (a round can only be that slow if something
# holds the chain head's lock).
WAIT_SECONDS = 30.0
# Batches one round chains at most, so that a round ends under a sustained load.
MAX_BATCHES = 20


class Chainer:
    def __init__(self, instance: Instance) -> None:
        self._instance = instance
        self._changed = threading.Condition()
        self._started = 0  # rounds begun
        self._finished = 0  # the latest round that has ended
        self._running = False

    def after_commit(self) -> None:
        """Return once a chaining round that began after the caller's commit has ended:
        then the caller's staged events are chained (by this process or another one).
        If that round fails, the worker's sweep chains them later."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self._changed:
            needed = self._started + 1  # rounds up to _started may have read before our commit
            while self._finished < needed:
                if self._running:
                    left = deadline - time.monotonic()
                    if left <= 0:  # a round stuck on the head's lock: the worker sweeps
                        log.warning("audit events not chained within %s s; the worker will",
                                    WAIT_SECONDS)
                        return
                    self._changed.wait(left)
                    continue
                self._running = True
                self._started += 1
                this_round = self._started
                self._changed.release()
                try:
                    self.chain_all()
                except Exception:
                    log.exception("chaining staged audit events failed; the worker retries")
                finally:
                    self._changed.acquire()
                    self._running = False
                    self._finished = this_round
                    self._changed.notify_all()

    def chain_all(self, *, max_batches: int = MAX_BATCHES) -> int:
        """Chain the events staged so far and queue their webhooks, one short transaction
        per batch of ``CHAIN_BATCH``, at most ``max_batches`` of them (others keep
        staging meanwhile; the next round takes the rest); return how many."""
        total = 0
        for _ in range(max_batches):
            with self._instance.transaction() as db:
                chained = self._chain_batch(db)
            total += chained
            if chained < CHAIN_BATCH:
                break
        return total

    def chain_within(self, db: Db) -> None:
        """Chain what is staged inside the caller's transaction, before its commit: for a
        database with one writer at a time (SQLite), whose write lock the caller holds
        anyway. In a savepoint: should chaining fail, the caller's work still commits,
        its events stay staged, and ``after_commit`` (then the worker) tries again."""
        db.flush()  # the caller's own writes, outside the guard: their failure is theirs
        own = frozenset(db.info.get(STAGED, ()))
        try:
            with db.begin_nested():
                while self._chain_batch(db, own=own) == CHAIN_BATCH:
                    pass
        except Exception:
            if not db.in_transaction() or not db.get_transaction().is_active:  # type: ignore[union-attr]
                raise  # the caller's transaction itself failed: never report it as done
            log.exception("chaining staged audit events failed; retried after the commit")
            return
        db.info.pop(STAGED, None)

    def _chain_batch(self, db: Db, *, own: frozenset[str] = frozenset()) -> int:
        """Chain one batch of staged events and queue their webhooks and mail; ``own``:
        the ids of the events the caller's transaction staged (``chain_staged``)."""
        instance = self._instance
        chained = instance.audit.chain_staged(db, now_ms=instance.now_ms(), own=own)
        webhooks.enqueue(db, instance, chained)
        notices.queue_for(db, instance, chained)  # the user's mail, from the outbox
        return len(chained)
