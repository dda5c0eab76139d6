"""Four eyes: impersonations a second operator must approve before they start.

``ACTAS_APPROVAL_REQUIRED_FOR`` names when: ``always``, ``full`` (a full
impersonation), ``protected`` (of a protected user), ``override`` (of a user's
"never" or missing grant), ``longer_than=<minutes>``. Such an impersonation asked for
by an operator is not issued: it is *sent for approval* and waits in the dashboard's
approvals queue. Another operator who could start it themself approves or refuses it,
with a reason; the requester never can. An approval is used by the requester starting
the same impersonation (this user, this mode or less, this long or less) within
``ACTAS_APPROVAL_EXPIRES_IN``, once. A request nobody decides lapses after
``ACTAS_APPROVAL_REQUEST_EXPIRES_IN``. Every step is audited.

The Backend API is trusted like an owner and needs no approval; approvals concern
people.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session as Db

from actas._errors import (
    ApprovalNotPending,
    ApprovalOfOwnRequest,
    FormParamInvalid,
    ImpersonationRefused,
    PermissionDenied,
    ResourceNotFound,
)
from actas.server import ids, operators
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import ImpersonationApproval, Operator, User
from actas.server.impersonation import consent, policy
from actas.server.roles import FULL
from actas.server.settings import Settings

if TYPE_CHECKING:
    from actas.server.instance import Instance

APPROVAL = "apr"


def required(settings: Settings, *, mode: str, protected: bool, override: bool,
             session_max_duration: int) -> list[str]:
    """Which rules want a second operator for this impersonation (empty: none)."""
    why = []
    for rule in settings.approval_required_for:
        name, _, minutes = rule.partition("=")
        if (rule == "always" or (rule == FULL and mode == FULL)
                or (rule == "protected" and protected) or (rule == "override" and override)
                or (name == "longer_than" and session_max_duration > int(minutes) * 60)):
            why.append(rule)
    return why


def status_of(row: ImpersonationApproval, now_ms: int) -> str:
    if row.status in ("pending", "approved") and now_ms >= row.expires_at:
        return "expired"
    return row.status


def usable(db: Db, *, operator_id: str, user_id: str, mode: str, session_max_duration: int,
           now_ms: int, override: bool | None = None) -> ImpersonationApproval | None:
    """An approval the operator may use now for this impersonation: theirs, approved, not
    expired, for this user, covering the mode and the duration, and an override only if
    the approver saw one (``override=None``: either, for display)."""
    rows = db.scalars(select(ImpersonationApproval).where(
        ImpersonationApproval.requested_by == operator_id,
        ImpersonationApproval.user_id == user_id, ImpersonationApproval.status == "approved",
        ImpersonationApproval.expires_at > now_ms).order_by(ImpersonationApproval.id))
    return next((r for r in rows if consent.mode_allows(r.mode, mode)
                 and session_max_duration <= r.session_max_duration
                 and (override is None or bool(r.why.get("override")) == override)), None)


def waiting(db: Db, *, operator_id: str, user_id: str, now_ms: int
            ) -> ImpersonationApproval | None:
    rows = db.scalars(select(ImpersonationApproval).where(
        ImpersonationApproval.requested_by == operator_id,
        ImpersonationApproval.user_id == user_id,
        ImpersonationApproval.status == "pending",
        ImpersonationApproval.expires_at > now_ms).order_by(ImpersonationApproval.id.desc()))
    return next(iter(rows), None)


def ask(db: Db, instance: Instance, *, operator: Operator, user_id: str, reason: str | None,
        mode: str, session_max_duration: int, why: list[str], override: bool,
        origin: RequestOrigin) -> ImpersonationApproval:
    """Send an impersonation for approval (or return the same request already waiting)."""
    now = instance.now_ms()
    existing = waiting(db, operator_id=operator.id, user_id=user_id, now_ms=now)
    if existing is not None and existing.mode == mode and \
            existing.session_max_duration == session_max_duration and \
            bool(existing.why.get("override")) == override:
        return existing
    row = ImpersonationApproval(
        id=ids.new_id(APPROVAL, now), requested_by=operator.id, user_id=user_id,
        reason=reason, mode=mode, session_max_duration=session_max_duration,
        why={"rules": why, "override": override}, status="pending", decided_by=None,
        decision_reason=None,
        expires_at=now + instance.settings.approval_request_expires_in * 1000,
        actor_token_id=None, decided_at=None, created_at=now, updated_at=now)
    db.add(row)
    db.flush()
    instance.record(db, Record(
        type="impersonation_approval.requested", actor_sub=operator.id, user_id=user_id,
        reason=reason, origin=origin,
        data={"approval_id": row.id, "mode": mode, "why": why, "override": override,
              "session_max_duration_in_seconds": session_max_duration}))
    return row


def get(db: Db, approval_id: str, *, for_update: bool = False) -> ImpersonationApproval:
    stmt = select(ImpersonationApproval).where(ImpersonationApproval.id == approval_id)
    row = db.scalar(stmt.with_for_update() if for_update else stmt)
    if row is None:
        raise ResourceNotFound("No such approval request.", approval_id=approval_id)
    return row


def queue(db: Db, now_ms: int, *, limit: int = 200) -> Sequence[ImpersonationApproval]:
    """Requests waiting for a decision, oldest first."""
    return db.scalars(select(ImpersonationApproval).where(
        ImpersonationApproval.status == "pending", ImpersonationApproval.expires_at > now_ms)
        .order_by(ImpersonationApproval.id).limit(limit)).all()


def recent(db: Db, *, limit: int = 50) -> Sequence[ImpersonationApproval]:
    return db.scalars(select(ImpersonationApproval)
                      .order_by(ImpersonationApproval.id.desc()).limit(limit)).all()


def decide(db: Db, instance: Instance, *, approval_id: str, approver: Operator,
           approve: bool, reason: str | None, origin: RequestOrigin) -> ImpersonationApproval:
    """Approve or refuse, as a second operator who could start this impersonation
    themself, with a reason (required to refuse)."""
    row = get(db, approval_id, for_update=True)
    now = instance.now_ms()
    status = status_of(row, now)
    if status != "pending":
        raise ApprovalNotPending(status=status, approval_id=row.id)
    if approver.id == row.requested_by:
        raise ApprovalOfOwnRequest(approval_id=row.id)
    reason = policy.normalize_reason(reason)
    if not approve and reason is None:
        raise FormParamInvalid("Say why you refuse: the requester reads it.",
                               code="form_param_missing", param_name="reason")
    _require_could_start_it(db, instance, approver, row)
    row.status = "approved" if approve else "refused"
    row.decided_by, row.decision_reason, row.decided_at, row.updated_at = (
        approver.id, reason, now, now)
    if approve:  # from now, a short while to use it
        row.expires_at = now + instance.settings.approval_expires_in * 1000
    db.flush()
    instance.record(db, Record(
        type=f"impersonation_approval.{'approved' if approve else 'refused'}",
        actor_sub=approver.id, user_id=row.user_id, reason=reason, origin=origin,
        data={"approval_id": row.id, "requested_by": row.requested_by, "mode": row.mode,
              "why": row.why.get("rules", [])}))
    return row


def _require_could_start_it(db: Db, instance: Instance, approver: Operator,
                            row: ImpersonationApproval) -> None:
    requester = policy.Requester.of_operator(approver)
    if operators.IMPERSONATE not in requester.permissions:
        raise PermissionDenied("Your role cannot approve impersonations.", role=approver.role)
    try:
        policy.require_mode_allowed(instance.settings, requester, row.mode)
        user = db.get(User, row.user_id)
        if user is not None and policy.is_protected(db, user, instance.settings) and \
                operators.IMPERSONATE_PROTECTED not in requester.permissions:
            raise PermissionDenied("Approving an impersonation of a protected user needs "
                                   "the impersonate:protected permission.")
        if row.why.get("override") and operators.IMPERSONATE_OVERRIDE not in requester.permissions:
            raise PermissionDenied("Approving an override of the user's preference needs "
                                   "the impersonate:override permission.")
    except ImpersonationRefused as refusal:
        raise PermissionDenied(f"You could not start this impersonation yourself: "
                               f"{refusal.message}") from refusal


def use(db: Db, instance: Instance, row: ImpersonationApproval, *, actor_token_id: str) -> None:
    """The approval became a ticket: it cannot be used again. Compare-and-set, so that
    of two starts racing on one approval (two tabs, two replicas) only one gets it."""
    now = instance.now_ms()
    claimed = db.execute(
        update(ImpersonationApproval)
        .where(ImpersonationApproval.id == row.id, ImpersonationApproval.status == "approved",
               ImpersonationApproval.expires_at > now)
        .values(status="used", actor_token_id=actor_token_id, updated_at=now)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ApprovalNotPending("This approval was just used or has expired; ask again.",
                                 approval_id=row.id)

