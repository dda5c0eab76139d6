"""Four eyes: a second operator approves what policy says needs it, before it starts.

The attacks: approving one's own request; approving what one could not start oneself;
using one approval twice, or late, or for more than was approved; a refusal without a
word; the whole thing done through the dashboard by the requester alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from actas._errors import (
    ApprovalNotPending,
    ApprovalOfOwnRequest,
    FormParamInvalid,
    ImpersonationApprovalRequired,
    PermissionDenied,
)
from actas.server import Instance, operators
from actas.server.audit import RequestOrigin
from actas.server.clock import FrozenClock
from actas.server.db.schema import Operator
from actas.server.impersonation import actor_tokens, approvals
from actas.server.impersonation.policy import Requester
from tests.support.dashboard import _operator, sign_in
from tests.support.flows import create_user

ORIGIN = RequestOrigin(user_agent="test")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"approval_required_for": "full,longer_than=60"}


def _op(instance: Instance, email: str, role: str) -> Operator:
    with instance.transaction() as db:
        return operators.create(db, instance, email=email, role=role, password="long enough",
                                name=email.split("@")[0].title())


def _start(instance: Instance, operator: Operator, user_id: str, mode: str = "full",
           minutes: int = 30) -> actor_tokens.NewActorToken:
    return actor_tokens.create(instance, requester=Requester.of_operator(operator),
                               user_id=user_id, actor={"sub": operator.id}, reason="Ticket #1",
                               origin=ORIGIN, mode=mode,  # type: ignore[arg-type]
                               session_max_duration=minutes * 60)


def _decide(instance: Instance, approval_id: str, approver: Operator, approve: bool,
            reason: str | None = "checked with the customer") -> None:
    with instance.transaction() as db:
        approvals.decide(db, instance, approval_id=approval_id, approver=approver,
                         approve=approve, reason=reason, origin=ORIGIN)


def test_a_full_impersonation_waits_for_a_second_operator_and_is_used_once(
        backend: TestClient, instance: Instance, clock: FrozenClock) -> None:
    ada = create_user(backend)
    alice, support, olive = (_op(instance, "alice@s.test", "admin"),
                             _op(instance, "sam@s.test", "support"),
                             _op(instance, "olive@s.test", "owner"))
    assert _start(instance, alice, ada["id"], mode="read_only").row.approval_id is None

    with pytest.raises(ImpersonationApprovalRequired) as sent:
        _start(instance, alice, ada["id"])
    approval_id = sent.value.meta["approval_id"]
    assert sent.value.meta["why"] == ["full"]
    with pytest.raises(ImpersonationApprovalRequired) as again:  # asking twice: one request
        _start(instance, alice, ada["id"])
    assert again.value.meta["approval_id"] == approval_id

    with pytest.raises(ApprovalOfOwnRequest):
        _decide(instance, approval_id, alice, approve=True)
    with pytest.raises(PermissionDenied, match="could not start this impersonation"):
        _decide(instance, approval_id, support, approve=True)  # support may not start full
    _decide(instance, approval_id, olive, approve=True)
    with pytest.raises(ApprovalNotPending):
        _decide(instance, approval_id, olive, approve=False)

    with pytest.raises(ImpersonationApprovalRequired):  # longer than approved: not covered
        _start(instance, alice, ada["id"], minutes=45)
    issued = _start(instance, alice, ada["id"])
    assert issued.row.approval_id == approval_id
    with pytest.raises(ImpersonationApprovalRequired):  # used: a new request is needed
        _start(instance, alice, ada["id"])

    types = [e["type"] for e in backend.get("/v1/audit_events", params={"limit": 100}).json()[
        "data"]]
    assert {"impersonation_approval.requested", "impersonation_approval.approved"} <= set(types)
    assert backend.get("/v1/audit_events/verify").json()["ok"] is True


def test_a_refusal_says_why_and_an_approval_unused_for_an_hour_expires(
        backend: TestClient, instance: Instance, clock: FrozenClock) -> None:
    ada = create_user(backend)
    alice, olive = _op(instance, "alice@s.test", "admin"), _op(instance, "olive@s.test", "owner")
    with pytest.raises(ImpersonationApprovalRequired) as sent:
        _start(instance, alice, ada["id"], mode="read_only", minutes=90)  # longer_than=60
    first = sent.value.meta["approval_id"]
    assert sent.value.meta["why"] == ["longer_than=60"]
    with pytest.raises(FormParamInvalid):
        _decide(instance, first, olive, approve=False, reason=None)
    _decide(instance, first, olive, approve=False, reason="Ninety minutes is too long")

    with pytest.raises(ImpersonationApprovalRequired) as resent:
        _start(instance, alice, ada["id"], mode="read_only", minutes=90)
    second = resent.value.meta["approval_id"]
    assert second != first
    _decide(instance, second, olive, approve=True)
    clock.advance(seconds=instance.settings.approval_expires_in)
    with pytest.raises(ImpersonationApprovalRequired):
        _start(instance, alice, ada["id"], mode="read_only", minutes=90)


def test_the_backend_api_needs_no_approval(backend: TestClient) -> None:
    ada = create_user(backend)
    token = backend.post("/v1/actor_tokens", json={
        "user_id": ada["id"], "actor": {"sub": "op_x"}, "reason": "r", "mode": "full"})
    assert token.status_code == 200 and token.json()["mode"] == "full"


def test_in_the_dashboard_the_requester_waits_and_a_second_operator_approves(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    _operator(instance, "alice@support.test", "admin")
    _operator(instance, "olive@support.test", "owner")
    ada = create_user(backend, first_name="Ada")
    token = sign_in(dashboard, "alice@support.test")
    sent = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate", data={
        "csrf_token": token, "reason": "Ticket #1", "mode": "full", "minutes": "30"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?notice=approval")
    page = dashboard.get(sent.headers["location"]).text
    assert "Sent for approval" in page and "Waiting for a second operator" in page

    queue = dashboard.get("/dashboard/approvals").text
    assert "Alice wants to impersonate Ada" in queue and "This is your request" in queue
    approval_id = approvals_pending(instance)
    mine = dashboard.post(f"/dashboard/approvals/{approval_id}/approve",
                          data={"csrf_token": token, "reason": "fine"})
    assert mine.status_code == 403 and "cannot approve your own" in mine.text

    dashboard.cookies.clear()
    owner_token = sign_in(dashboard, "olive@support.test")
    approved = dashboard.post(f"/dashboard/approvals/{approval_id}/approve",
                              data={"csrf_token": owner_token, "reason": "Ticket checked"})
    assert approved.status_code == 303
    dashboard.cookies.clear()
    token = sign_in(dashboard, "alice@support.test")
    page = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert "Approved by Olive" in page and "Ticket checked" in page
    started = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate", data={
        "csrf_token": token, "reason": "Ticket #1", "mode": "full", "minutes": "30"})
    assert started.status_code == 303 and "/v1/tickets/accept" in started.headers["location"]


def approvals_pending(instance: Instance) -> str:
    with instance.transaction() as db:
        [row] = approvals.queue(db, instance.now_ms())
        return row.id


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_approval_is_one_ticket_even_when_started_twice_at_once(
        backend: TestClient, instance: Instance) -> None:
    import threading

    ada = create_user(backend)
    alice, olive = _op(instance, "alice@s.test", "admin"), _op(instance, "olive@s.test", "owner")
    with pytest.raises(ImpersonationApprovalRequired) as sent:
        _start(instance, alice, ada["id"])
    _decide(instance, sent.value.meta["approval_id"], olive, approve=True)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait()
        try:
            _start(instance, alice, ada["id"])
            outcomes.append("ticket")
        except (ApprovalNotPending, ImpersonationApprovalRequired):
            outcomes.append("no")

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ticket") == 1, outcomes


def test_an_approval_is_for_what_the_approver_saw(backend: TestClient,
                                                   instance: Instance) -> None:
    """Approved as a plain full impersonation, it cannot become an override of a user
    who said "never" meanwhile; and only who holds the override may approve one."""
    ada = create_user(backend)
    olive, otto = _op(instance, "olive@s.test", "owner"), _op(instance, "otto@s.test", "owner")
    admin = _op(instance, "adam@s.test", "admin")
    with pytest.raises(ImpersonationApprovalRequired) as sent:
        _start(instance, olive, ada["id"])
    _decide(instance, sent.value.meta["approval_id"], otto, approve=True)
    backend.patch(f"/v1/users/{ada['id']}", json={"impersonation_preference": "never"})

    def override() -> None:
        actor_tokens.create(instance, requester=Requester.of_operator(olive), user_id=ada["id"],
                            actor={"sub": olive.id}, reason="Fraud #7", origin=ORIGIN,
                            mode="full", session_max_duration=1800, override=True)

    with pytest.raises(ImpersonationApprovalRequired) as again:
        override()
    assert again.value.meta["approval_id"] != sent.value.meta["approval_id"]
    with pytest.raises(PermissionDenied, match="impersonate:override"):
        _decide(instance, again.value.meta["approval_id"], admin, approve=True)
    _decide(instance, again.value.meta["approval_id"], otto, approve=True)
    override()  # now it is an approved override
