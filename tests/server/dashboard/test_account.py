"""Operator sessions: an operator sees where they are signed in and ends a session they
do not recognise; an owner does so for anyone; nobody else can."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.dashboard import operator_sessions
from tests.support.dashboard import _operator, sign_in


def _session_ids(page: str) -> list[str]:
    return re.findall(r'action="/dashboard/operator_sessions/([^/"]+)/end"', page)


def test_an_operator_ends_a_session_elsewhere_and_that_browser_is_signed_out(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    with TestClient(dashboard.app, base_url="https://actas.test", follow_redirects=False,
                    headers={"User-Agent": "Laptop at home"}) as elsewhere:
        sign_in(elsewhere, "alice@support.test")
        token = sign_in(dashboard, "alice@support.test")
        page = dashboard.get("/dashboard/account").text
        assert "Laptop at home" in page and "this browser" in page
        [other] = _session_ids(page)  # one's own browser has no End button: sign out there
        ended = dashboard.post(f"/dashboard/operator_sessions/{other}/end",
                               data={"csrf_token": token})
        assert ended.status_code == 303 and ended.headers["location"].endswith("notice=ended")
        assert elsewhere.get("/dashboard/users").status_code == 303  # signed out
        assert dashboard.get("/dashboard/users").status_code == 200
    [event] = backend.get("/v1/audit_events", params={
        "type": "operator.session_ended"}).json()["data"]
    assert event["data"]["operator_session_id"] == other


def test_only_an_owner_sees_and_ends_other_operators_sessions(
        dashboard: TestClient, instance: Instance) -> None:
    sam = _operator(instance, "sam@support.test", "support")
    olive = _operator(instance, "olive@support.test", "owner")
    with TestClient(dashboard.app, base_url="https://actas.test",
                    follow_redirects=False) as owners:
        owner_token = sign_in(owners, "olive@support.test")
        sams_token = sign_in(dashboard, "sam@support.test")
        assert dashboard.get(f"/dashboard/operators/{olive}/sessions").status_code == 403
        with instance.transaction() as db:
            [olives] = operator_sessions.live_of(db, olive, instance.now_ms())
        refused = dashboard.post(f"/dashboard/operator_sessions/{olives.id}/end",
                                 data={"csrf_token": sams_token})
        assert refused.status_code == 404  # not his, and not said whether it exists
        assert owners.get("/dashboard/users").status_code == 200

        [sams] = _session_ids(owners.get(f"/dashboard/operators/{sam}/sessions").text)
        assert owners.post(f"/dashboard/operator_sessions/{sams}/end",
                           data={"csrf_token": owner_token}).status_code == 303
        assert dashboard.get("/dashboard/users").status_code == 303
