"""Background work of a serving process: webhooks, mail, lapsed sessions, rate-limit
counters, audit events left staged, the audit chain's verification.

Runs as one asyncio task per process, doing its (blocking, database-bound)
rounds in a worker thread; webhook deliveries run in lanes of their own, one
per endpoint, that a round starts but never waits for. Every replica may run
it: an endpoint's lane is a lease in its row and lapsed sessions are settled
under ``FOR UPDATE``, so replicas share the work instead of repeating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx

from actas.server import (
    audit_verification,
    mail,
    notices,
    operator_passkeys,
    rate_limits,
    sessions,
    webhooks,
)
from actas.server.impersonation import activity, redemption
from actas.server.instance import Instance

log = logging.getLogger("actas.worker")

INTERVAL_SECONDS = 1.0


def run_once(instance: Instance, client: httpx.Client,
             dispatcher: webhooks.Dispatcher | None = None) -> None:
    """One round: chain staged audit events, settle lapsed sessions, summarise repeated
    ticket refusals, drop old rate-limit counters, verify the audit chain a slice
    further, then send due webhooks: through ``dispatcher`` (lanes that run on, never
    waited for) in a serving process, else here and now."""
    try:
        instance.chainer.chain_all()  # events a crashed or timed-out writer left staged
    except Exception:  # the rest of the round does not depend on it
        log.exception("chaining staged audit events failed")
    sessions.settle_lapsed(instance)
    redemption.summarise_refusals(instance)  # before pruning the counters it reads
    with instance.transaction() as db:
        rate_limits.prune(db, now_ms=instance.now_ms())
        activity.prune(db, instance)
        operator_passkeys.prune_spent(db, instance.now_ms())
    audit_verification.advance(instance)
    try:
        notices.queue_digests(instance)  # yesterday's, once per user (when configured)
        mail.deliver_due(instance)  # at most a few per round; stops at a mail server's failure
    except Exception:  # the rest of the round does not depend on it
        log.exception("sending mail failed")
    if dispatcher is not None:
        dispatcher.dispatch()
    else:
        webhooks.deliver_due(instance, client)


async def _loop(instance: Instance) -> None:
    with httpx.Client(follow_redirects=False) as client:
        dispatcher = webhooks.Dispatcher(instance, client)
        try:
            while True:
                try:
                    await asyncio.to_thread(run_once, instance, client, dispatcher)
                except Exception:  # a bad round must not end the loop; the next one retries
                    log.exception("background round failed")
                await asyncio.sleep(INTERVAL_SECONDS)
        finally:
            dispatcher.close()


@contextlib.asynccontextmanager
async def running(instance: Instance) -> AsyncIterator[None]:
    task = asyncio.create_task(_loop(instance), name="actas-worker")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
