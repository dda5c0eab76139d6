"""Redeeming an actor token: exactly once, even under concurrent redemption.

The token is consumed by one conditional ``UPDATE … WHERE status='pending'
AND expires_at > now``: the database lets exactly one transaction see a row
count of 1 (on PostgreSQL the losers wait for the winner's row lock and then
find the row no longer pending; on SQLite writers are serialised), so any
number of simultaneous redemptions, on any number of replicas, yield one
session. Everything after the claim happens in the same transaction.

Failed redemptions are limited per address and per ticket (``attempt``,
``ACTAS_TICKET_FAILURES_PER_*``): past the limit the answer is 429 before
anything is looked up. And they are audited without letting anyone fill the
audit log and every webhook endpoint with them: the first refusal of a kind
(same address, code and ticket) in a rate-limit window is recorded in full
as ``actor_token.redemption_refused``; the repeats are only counted, and once
the window has closed the worker writes one
``actor_token.redemption_refused_repeatedly`` event with their number
(``summarise_refusals``). Nothing is dropped, just summarised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session as Db

from actas._errors import (
    ImpersonationNested,
    ImpersonationRefused,
    TicketAlreadyUsed,
    TicketExpired,
    TicketInvalid,
    TicketRejected,
    TicketRevoked,
    TooManyRequests,
)
from actas.server import credentials, operators, rate_limits, sessions
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import (
    AccessRequest,
    ActorToken,
    Client,
    Operator,
    RateLimitCounter,
    User,
)
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import actor_tokens, policy
from actas.server.impersonation.actor_tokens import TICKET_PREFIX
from actas.server.instance import Instance
from actas.server.roles import FULL, READ_ONLY

REFUSED = "actor_token.redemption_refused"
REFUSED_REPEATEDLY = "actor_token.redemption_refused_repeatedly"
# Refusals counted per (address, code, ticket) and window, for the audit (record_refusal).
_REFUSALS = "ticket_refusals"
_ANONYMOUS = "-"  # in a _REFUSALS key: the ticket named no actor token


@contextmanager
def attempt(instance: Instance, *, ticket: str, origin: RequestOrigin
            ) -> Iterator[Callable[[Db], None]]:
    """Guard one redemption of ``ticket``: the rate limits, and the audit of a refusal.

    Raises ``TooManyRequests`` (recorded like a refusal) before the block runs
    when this address or this ticket has failed too often in the window: the
    attempt is counted as a failure first, in its own transaction, so that
    parallel attempts see each other. A ``TicketRejected`` or
    ``ImpersonationRefused`` raised by the block is recorded and re-raised; when
    the block succeeds, the attempt does not count. The block gets ``settle``:
    called with the redeeming transaction, it takes the count back in that
    transaction (one write transaction less than doing it after); not called,
    it is taken back once the block has returned. Open the block's transaction
    inside, so that it has ended either way.
    """
    settings = instance.settings
    try:
        with instance.transaction() as db:
            charge = rate_limits.spend(db, [
                (rate_limits.Budget("ticket_failure:address",
                                    settings.ticket_failures_per_address),
                 rate_limits.address_of(origin)),
                (rate_limits.Budget("ticket_failure:ticket", settings.ticket_failures_per_ticket),
                 credentials.digest(ticket)),
            ], now_ms=instance.now_ms(), what="failed attempts to use sign-in links")
    except TooManyRequests as limited:
        record_refusal(instance, ticket=ticket, error=limited, origin=origin)
        raise
    settled = False

    def settle(db: Db) -> None:
        nonlocal settled
        rate_limits.refund(db, charge)  # undone with the redemption if it rolls back
        settled = True

    try:
        yield settle
    except (TicketRejected, ImpersonationRefused) as error:
        record_refusal(instance, ticket=ticket, error=error, origin=origin)
        raise
    if not settled:
        with instance.transaction() as db:
            rate_limits.refund(db, charge)


# The claim, built once: the row comes back from the UPDATE that consumes it (RETURNING),
# so a redemption reads it again only when the claim failed, to say why. An object of
# that row the transaction holds already is refreshed with what the UPDATE returned.
_CLAIM = (update(ActorToken)
          .where(ActorToken.token_digest == bindparam("digest"),
                 ActorToken.status == "pending", ActorToken.expires_at > bindparam("now"))
          .values(status="accepted", accepted_at=bindparam("now"), updated_at=bindparam("now"))
          .returning(ActorToken)
          .execution_options(synchronize_session=False, populate_existing=True))


class Redeemed(NamedTuple):
    session: SessionRow
    user: User  # the impersonated user, as the policy check loaded it


def redeem(db: Db, instance: Instance, *, ticket: str, client: Client,
           origin: RequestOrigin) -> Redeemed:
    """Consume ``ticket`` and create the impersonation session on ``client``.

    Raises a ``TicketRejected`` leaf (unknown, expired, revoked, already used)
    or an ``ImpersonationRefused`` leaf (the policy no longer allows it: see
    ``policy.recheck``; or the client is already impersonating and nesting is
    off).
    """
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 128:
        raise TicketInvalid()
    digest = credentials.digest(ticket)
    now = instance.now_ms()
    token = db.scalars(_CLAIM, {"digest": digest, "now": now}).one_or_none()
    if token is None:
        raise _why_not(db.scalar(select(ActorToken).where(ActorToken.token_digest == digest)))
    # The policy again: the operator or the user may have changed since the ticket.
    user = policy.recheck(db, instance.settings, token, now_ms=now)
    actor = {**token.actor}
    actor.setdefault("sid", token.id)
    _name_the_operator(db, actor)
    # RFC 8693's act.iss: who vouches for this actor, here the actas instance.
    actor.setdefault("iss", instance.settings.frontend_api_url)
    mode = token.mode
    current = (db.get(SessionRow, client.last_active_session_id)
               if client.last_active_session_id else None)
    if current is not None and current.actor is not None \
            and sessions.effective_status(current, now) == "active":
        if not instance.settings.allow_nested_impersonation:
            raise ImpersonationNested(
                "This browser is already impersonating someone. Stop that first.",
                session_id=current.id)
        actor["act"] = current.actor  # RFC 8693 §4.1: the prior actor, nested
        policy.require_short_chain(actor)
        # Nested in a read-only impersonation, it is read-only too: no way around it.
        if current.impersonation_mode != FULL:
            mode = READ_ONLY
    session = sessions.create(db, instance, user=user, client=client, origin=origin,
                              impersonation=sessions.Impersonation(
                                  actor=actor, actor_token_id=token.id,
                                  max_duration=_within_grant(db, token, now),
                                  reason=token.reason, mode=mode))
    token.session_id = session.id
    instance.record(db, Record(
        type="actor_token.accepted", actor_sub=token.actor_sub, user_id=user.id,
        session_id=session.id, actor_token_id=token.id, reason=token.reason, origin=origin,
        data={"actor": actor, "mode": mode}))
    db.flush()
    return Redeemed(session, user)


def _within_grant(db: Db, token: ActorToken, now: int) -> int:
    """The seconds the impersonation may last: as the ticket asked, and never past the
    end of the user's grant it was issued under."""
    seconds = token.session_max_duration
    grant = db.get(AccessRequest, token.access_request_id) if token.access_request_id else None
    if grant is not None and grant.granted_until is not None:
        seconds = min(seconds, max(1, (grant.granted_until - now) // 1000))
    return seconds


def _name_the_operator(db: Db, actor: dict[str, Any]) -> None:
    """An actor named only by an operator's id (``op_…``, as Backend API callers often
    send it) gets that operator's name, so that the banner, the user's access history
    and the dashboard say who, not ``op_01M8…``. A name the caller gave is kept."""
    sub = actor.get("sub")
    if "name" in actor or "email" in actor or not isinstance(sub, str) \
            or not sub.startswith(f"{operators.OPERATOR}_"):
        return
    operator = db.get(Operator, sub)
    if operator is not None:
        actor["name"] = operator.name or operator.email_address
        actor["email"] = operator.email_address


def _why_not(token: ActorToken | None) -> TicketRejected:
    if token is None:
        return TicketInvalid()
    if token.status == "accepted":
        return TicketAlreadyUsed(actor_token_id=token.id)
    if token.status == "revoked":
        return TicketRevoked(actor_token_id=token.id)
    return TicketExpired(actor_token_id=token.id)


def record_refusal(instance: Instance, *, ticket: str, error: TicketRejected
                   | ImpersonationRefused | TooManyRequests, origin: RequestOrigin) -> None:
    """Audit a refused redemption, in its own transaction (the refused one rolled back).

    In full the first time in the window for this address, code and ticket;
    only counted after that (see the module's docstring).

    When the policy itself refused (not a nested impersonation, which a
    stop in that browser cures), the ticket is revoked too: it could never be
    redeemed again without the policy changing back, and must not lie in wait.
    """
    with instance.transaction() as db:
        token = None
        if ticket.startswith(TICKET_PREFIX) and len(ticket) <= 128:
            token = db.scalar(select(ActorToken).where(
                ActorToken.token_digest == credentials.digest(ticket)).with_for_update())
        kind = "|".join((rate_limits.address_of(origin)[:64], error.code,
                         token.id if token else _ANONYMOUS))
        if rate_limits.count(db, scope=_REFUSALS, key=kind, now_ms=instance.now_ms()) == 1:
            instance.record(db, Record(
                type=REFUSED,
                actor_sub=token.actor_sub if token else None,
                user_id=token.user_id if token else None,
                actor_token_id=token.id if token else None, origin=origin,
                data={"code": error.code}))
        if token is not None and token.status == "pending" and \
                isinstance(error, ImpersonationRefused) and \
                not isinstance(error, ImpersonationNested):
            actor_tokens.mark_revoked(db, instance, token, origin=origin, reason=token.reason,
                                      data={"revoked_by": "policy", "code": error.code})


def summarise_refusals(instance: Instance, *, limit: int = 100) -> int:
    """Record how often each kind of refusal repeated in windows that have closed.

    Run by the worker, on every replica: each counter is claimed under a row
    lock and deleted with its summary, so it is summarised exactly once.
    Returns how many summaries were written.
    """
    now = instance.now_ms()
    written = 0
    with instance.transaction() as db:
        claim = (select(RateLimitCounter)
                 .where(RateLimitCounter.scope == _REFUSALS, RateLimitCounter.expires_at <= now)
                 .order_by(RateLimitCounter.expires_at).limit(limit))
        if db.get_bind().dialect.name == "postgresql":
            claim = claim.with_for_update(skip_locked=True)
        for counter in db.scalars(claim).all():
            if counter.hits > 1:
                address, code, token_id = counter.key.rsplit("|", 2)
                token = db.get(ActorToken, token_id) if token_id != _ANONYMOUS else None
                instance.record(db, Record(
                    type=REFUSED_REPEATEDLY,
                    actor_sub=token.actor_sub if token else None,
                    user_id=token.user_id if token else None,
                    actor_token_id=None if token_id == _ANONYMOUS else token_id,
                    origin=RequestOrigin(ip_address=None if address == "unknown" else address),
                    # Refusals after the first, which is its own REFUSED event.
                    data={"code": code, "count": counter.hits - 1,
                          "window_start": counter.window_start,
                          "window_end": counter.expires_at}))
                written += 1
            db.delete(counter)
    return written
