"""The dashboard and the user's say: what an operator is shown for a user who asks to
be asked or refuses, how they request access, and an owner's deliberate override."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from actas.server import Instance
from tests.support.dashboard import _operator, sign_in
from tests.support.flows import create_user
from tests.support.flows import sign_in as user_sign_in


def _fieldset_disabled(page: str) -> bool:
    form = page.split('action="/dashboard/users/')[1]
    return bool(re.search(r'<fieldset class="bare"\s+disabled', form.split("</form>")[0]))


def test_ask_support_requests_access_the_user_grants_then_support_impersonates(
        dashboard: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    _operator(instance, "sam@support.test", "support")
    ada = create_user(backend, first_name="Ada", impersonation_preference="ask")
    token = sign_in(dashboard, "sam@support.test")
    page = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert "asks to be asked first" in page and _fieldset_disabled(page)
    assert 'name="override"' not in page  # support holds no override

    asked = dashboard.post(f"/dashboard/users/{ada['id']}/access_requests", data={
        "csrf_token": token, "reason": "Ticket #5: refunds", "mode": "read_only",
        "minutes": "30"})
    assert asked.status_code == 303
    waiting = dashboard.get(asked.headers["location"]).text
    assert "Access requested" in waiting and "waiting for the answer" in waiting
    assert "Withdraw the request" in waiting and _fieldset_disabled(waiting)

    user_sign_in(browser)
    [request] = browser.get("/v1/me/access").json()["response"]["requests"]
    assert request["requested_by"]["name"] == "Sam"
    browser.post(f"/v1/me/access_requests/{request['id']}/grant",
                 json={"duration_in_seconds": 3600})
    granted = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert "Ada granted you access until" in granted and not _fieldset_disabled(granted)
    started = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                             data={"csrf_token": token, "reason": "Ticket #5: refunds"})
    assert started.status_code == 303 and "/v1/tickets/accept" in started.headers["location"]


def test_never_support_is_told_an_owner_may_override_with_a_reason(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    _operator(instance, "sam@support.test", "support")
    _operator(instance, "olive@support.test", "owner")
    ada = create_user(backend, first_name="Ada", impersonation_preference="never")
    sign_in(dashboard, "sam@support.test")
    page = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert "Ada does not allow impersonation." in page and _fieldset_disabled(page)
    assert "Request access" not in page

    dashboard.cookies.clear()
    token = sign_in(dashboard, "olive@support.test")
    page = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert 'name="override"' in page and not _fieldset_disabled(page)
    without = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                             data={"csrf_token": token, "reason": "Fraud #7"})
    assert without.status_code == 403 and "does not allow impersonation" in without.text
    override = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                              data={"csrf_token": token, "reason": "Fraud #7",
                                    "override": "yes"})
    assert override.status_code == 303
    [created] = backend.get("/v1/audit_events", params={
        "type": "actor_token.created"}).json()["data"]
    assert created["data"]["consent"] == "override"
