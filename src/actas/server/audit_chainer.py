"""Chaining staged audit events right after the transactions that staged them.

Every transaction that records an event waits, after its commit, until the
event is in the chain, so an answered request is an audited one. Waiting
threads of one process share the work, as a database's group commit does: one
of them (the leader) runs a chaining round for everything staged so far, the
others wait for that round, and the next leader takes whatever queued
meanwhile. A process thus holds the chain head's lock once per round, not
once per event; other processes do the same, and whoever gets the lock chains
everyone's events.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from actas.server import webhooks
from actas.server.audit import CHAIN_BATCH

if TYPE_CHECKING:
    from actas.server.instance import Instance

log = logging.getLogger("actas.audit")


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
        with self._changed:
            needed = self._started + 1  # rounds up to _started may have read before our commit
            while self._finished < needed:
                if self._running:
                    self._changed.wait()
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

    def chain_all(self) -> int:
        """Chain every event staged so far and queue its webhooks, one short transaction
        per batch; return how many."""
        instance, total = self._instance, 0
        while True:
            with instance.transaction() as db:
                chained = instance.audit.chain_staged(db, now_ms=instance.now_ms())
                webhooks.enqueue(db, instance, chained)
            total += len(chained)
            if len(chained) < CHAIN_BATCH:
                return total
