"""The dashboard, through its HTML forms: sign-in, users, impersonate, end, audit."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from actas.server import Instance, operators
from actas.server.clock import FrozenClock
from tests.support.dashboard import PASSWORD, _operator, csrf, post_sign_in, sign_in
from tests.support.flows import create_user, error_code, mint


def test_sign_in_from_another_site_is_refused(dashboard: TestClient, instance: Instance,
                                             app_client: TestClient) -> None:
    """Login CSRF: a page elsewhere must not sign this browser into its author's account."""
    _operator(instance, "mallory@support.test", "support")
    forged = {"email": "mallory@support.test", "password": PASSWORD}
    no_token = dashboard.post("/dashboard/sign_in", data=forged)
    assert no_token.status_code == 403 and "This form has expired" in no_token.text

    # A token the attacker fetched in their own browser is bound to their cookie.
    other_form = app_client.get("/dashboard/sign_in").text
    stolen = re.search(r'name="csrf_token" value="([0-9a-f]+)"', other_form)
    assert stolen
    replayed = dashboard.post("/dashboard/sign_in", data={**forged,
                                                          "csrf_token": stolen.group(1)})
    assert replayed.status_code == 403

    # Even with this browser's own cookie and token, a cross-site Origin is refused.
    mine = re.search(r'name="csrf_token" value="([0-9a-f]+)"',
                     dashboard.get("/dashboard/sign_in").text)
    assert mine
    cross_site = dashboard.post("/dashboard/sign_in", data={**forged,
                                                            "csrf_token": mine.group(1)},
                                headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert dashboard.get("/dashboard/users").status_code == 303  # still signed out
    assert post_sign_in(dashboard, "mallory@support.test", PASSWORD).status_code == 303


def test_pages_need_a_signed_in_operator(dashboard: TestClient) -> None:
    for path in ("/dashboard/users", "/dashboard/impersonations", "/dashboard/audit"):
        response = dashboard.get(path)
        assert response.status_code == 303 and response.headers["location"] == \
            "/dashboard/sign_in?next=" + path.replace("/", "%2F")


def test_sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_it(
        dashboard: TestClient, instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    response = post_sign_in(dashboard, "Alice@Support.test", PASSWORD)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    token = csrf(dashboard)
    assert dashboard.post("/dashboard/sign_out", data={"csrf_token": token}).status_code == 303
    assert dashboard.get("/dashboard/users").status_code == 303


def test_wrong_password_is_refused_and_then_rate_limited(dashboard: TestClient,
                                                         instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    for _ in range(5):
        wrong = post_sign_in(dashboard, "alice@support.test", "nope")
        assert wrong.status_code == 401 and "do not match" in wrong.text
    limited = post_sign_in(dashboard, "alice@support.test", PASSWORD)
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text


def test_rate_limit_window_passes(dashboard: TestClient, instance: Instance,
                                  clock: FrozenClock) -> None:
    _operator(instance, "alice@support.test", "support")
    for _ in range(5):
        post_sign_in(dashboard, "alice@support.test", "nope")
    clock.advance(seconds=15 * 60 + 1)
    sign_in(dashboard, "alice@support.test")


def test_users_list_search_and_detail(dashboard: TestClient, backend: TestClient,
                                      instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    ada = create_user(backend, "ada@example.com", first_name="Ada", last_name="Lovelace")
    create_user(backend, "bob@example.com", first_name="Bob")
    sign_in(dashboard, "alice@support.test")

    everyone = dashboard.get("/dashboard/users").text
    found = dashboard.get("/dashboard/users", params={"q": "lovelace"}).text
    detail = dashboard.get(f"/dashboard/users/{ada['id']}").text

    assert "Ada Lovelace" in everyone and "Bob" in everyone
    assert "Ada Lovelace" in found and "bob@example.com" not in found
    assert ada["id"] in detail and "Impersonate user" in detail
    assert dashboard.get("/dashboard/users/user_missing").status_code == 404


def test_impersonate_opens_the_application_as_the_user(dashboard: TestClient,
                                                       backend: TestClient,
                                                       instance: Instance) -> None:
    operator_id = _operator(instance, "alice@support.test", "support")
    ada = create_user(backend)
    token = sign_in(dashboard, "alice@support.test")

    response = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                              data={"csrf_token": token, "reason": "Ticket #7", "minutes": 15})
    assert response.status_code == 303
    assert response.headers["location"].startswith(
        "https://actas.test/v1/tickets/accept?ticket=tkt_")
    landed = dashboard.get(response.headers["location"])
    assert landed.status_code == 303 and landed.headers["location"] == "http://localhost:3000"

    client = dashboard.get("/v1/client").json()["response"]
    [session] = client["sessions"]
    assert session["user"]["id"] == ada["id"]
    assert session["actor"]["sub"] == operator_id and session["actor"]["name"] == "Alice"
    assert session["expire_at"] - session["created_at"] == 15 * 60 * 1000
    assert session["impersonation_reason"] == "Ticket #7"
    with TestClient(dashboard.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as browser:
        browser.cookies = dashboard.cookies
        assert mint(browser, session["id"])


def test_refusals_are_shown_in_plain_words(dashboard: TestClient, backend: TestClient,
                                           instance: Instance) -> None:
    _operator(instance, "vera@support.test", "viewer")
    _operator(instance, "sam@support.test", "support")
    ada = create_user(backend)
    admin = create_user(backend, "root@example.com", public_metadata={"role": "admin"})

    token = sign_in(dashboard, "vera@support.test")
    # Said before the form is filled in, and the form disabled; the server still refuses.
    form = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert "Your role cannot impersonate users." in form
    assert 'fieldset class="bare" disabled' in form
    viewer = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                            data={"csrf_token": token, "reason": "curious"})
    assert viewer.status_code == 403 and "Your role does not allow" in viewer.text
    dashboard.cookies.clear()
    token = sign_in(dashboard, "sam@support.test")
    assert "This user is protected" in dashboard.get(f"/dashboard/users/{admin['id']}").text
    assert 'fieldset class="bare" disabled' not in dashboard.get(
        f"/dashboard/users/{ada['id']}").text
    protected = dashboard.post(f"/dashboard/users/{admin['id']}/impersonate",
                               data={"csrf_token": token, "reason": "ticket"})
    assert protected.status_code == 403 and "This user is protected" in protected.text
    no_reason = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                               data={"csrf_token": token, "reason": " "})
    assert no_reason.status_code == 403 and "Give a reason" in no_reason.text
    codes = [e["data"]["code"] for e in backend.get(
        "/v1/audit_events", params={"type": "impersonation.refused"}).json()["data"]]
    assert codes == ["impersonation_reason_required", "impersonation_target_protected",
                     "impersonation_not_permitted"]


def test_state_changes_need_the_csrf_token(dashboard: TestClient, backend: TestClient,
                                           instance: Instance) -> None:
    _operator(instance, "alice@support.test", "owner")
    ada = create_user(backend)
    sign_in(dashboard, "alice@support.test")
    for path in (f"/dashboard/users/{ada['id']}/impersonate",
                 "/dashboard/impersonations/end_all", "/dashboard/sign_out"):
        for data in ({}, {"csrf_token": "0" * 64}):
            response = dashboard.post(path, data={**data, "reason": "r"})
            assert response.status_code in {403, 422}, (path, data)
    assert backend.get("/v1/actor_tokens").json() == []
    assert dashboard.get("/dashboard/users").status_code == 200  # still signed in


def test_end_now_and_end_all(dashboard: TestClient, backend: TestClient,
                             instance: Instance) -> None:
    _operator(instance, "sam@support.test", "support")
    _operator(instance, "olive@support.test", "owner")
    ada = create_user(backend)
    bob = create_user(backend, "bob@example.com")
    for user in (ada, bob):  # two support engineers' browsers
        with TestClient(dashboard.app, base_url="https://actas.test",
                        headers={"Origin": "http://localhost:3000"}) as browser:
            ticket = backend.post("/v1/actor_tokens", json={
                "user_id": user["id"], "actor": {"sub": "op_x", "name": "X"},
                "reason": "r"}).json()["token"]
            redeemed = browser.post("/v1/client/sign_ins",
                                    json={"strategy": "ticket", "ticket": ticket})
            assert redeemed.status_code == 200, redeemed.text
    token = sign_in(dashboard, "sam@support.test")

    live = dashboard.get("/dashboard/impersonations").text
    session_ids = re.findall(r'data-session-id="(sess_\w+)"', live)
    assert len(session_ids) == 2 and "End all impersonations" not in live  # support: no kill
    ended = dashboard.post(f"/dashboard/impersonations/{session_ids[0]}/end",
                           data={"csrf_token": token})
    assert ended.status_code == 303
    assert backend.get(f"/v1/sessions/{session_ids[0]}").json()["status"] == "revoked"
    refused = dashboard.post("/dashboard/impersonations/end_all", data={"csrf_token": token})
    assert refused.status_code == 403

    dashboard.cookies.clear()
    token = sign_in(dashboard, "olive@support.test")
    assert "End all impersonations" in dashboard.get("/dashboard/impersonations").text
    asked = dashboard.post("/dashboard/impersonations/end_all", data={"csrf_token": token})
    assert asked.status_code == 200 and "This ends 1 live impersonation " in asked.text
    assert backend.get(f"/v1/sessions/{session_ids[1]}").json()["status"] == "active"
    dashboard.post("/dashboard/impersonations/end_all",
                   data={"csrf_token": token, "confirm": "yes"})
    assert backend.get(f"/v1/sessions/{session_ids[1]}").json()["status"] == "revoked"
    assert error_code(backend.post(f"/v1/sessions/{session_ids[1]}/tokens")) == \
        "session_not_active"


def test_audit_page_shows_events_and_the_chain_status(dashboard: TestClient,
                                                      backend: TestClient,
                                                      instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    page = dashboard.get("/dashboard/audit").text
    assert "Chain verified" in page and "<code>operator.signed_in</code>" in page
    filtered = dashboard.get("/dashboard/audit", params={"type": "session.created"}).text
    assert "<code>operator.signed_in</code>" not in filtered


def test_security_headers(dashboard: TestClient, instance: Instance) -> None:
    response = dashboard.get("/dashboard/sign_in")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "form-action 'self' http://localhost:3000" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_search_finds_by_email_prefix_id_username_and_name_prefix(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    ada = create_user(backend, "ada@example.com", first_name="Ada", last_name="Lovelace",
                      username="countess")
    create_user(backend, "grace@example.com", first_name="Grace", last_name="Hopper")
    sign_in(dashboard, "alice@support.test")

    def found(q: str) -> bool:
        return ada["id"] in dashboard.get("/dashboard/users", params={"q": q}).text

    for query in ("ada@example.com", "ADA@ex", ada["id"], ada["id"].lower(), "count",
                  "lov", "Ada"):
        assert found(query), query
    for query in ("grace@", "hopper", "lovelacex", "%", "_"):
        assert not found(query), query


def test_owners_disable_enable_and_change_roles_of_operators(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    olive = _operator(instance, "olive@support.test", "owner")
    sam = _operator(instance, "sam@support.test", "support")
    ada = create_user(backend)
    with TestClient(dashboard.app, base_url="https://actas.test",
                    follow_redirects=False) as sams_browser:
        sams_token = sign_in(sams_browser, "sam@support.test")
        impersonating = sams_browser.post(f"/dashboard/users/{ada['id']}/impersonate",
                                          data={"csrf_token": sams_token, "reason": "r"})
        assert impersonating.status_code == 303
        assert sams_browser.get("/dashboard/operators").status_code == 403  # owners only

        token = sign_in(dashboard, "olive@support.test")
        page = dashboard.get("/dashboard/operators")
        assert page.status_code == 200 and "sam@support.test" in page.text
        disabled = dashboard.post(f"/dashboard/operators/{sam}/disable",
                                  data={"csrf_token": token})
        assert disabled.headers["location"] == \
            f"/dashboard/operators?notice=disabled&operator={sam}"
        notice = dashboard.get(disabled.headers["location"]).text
        assert "Sam was disabled: signed out" in notice

        assert sams_browser.get("/dashboard/users").status_code == 303  # signed out at once
        [token_row] = backend.get("/v1/actor_tokens", params={"user_id": ada["id"]}).json()
        assert token_row["status"] == "revoked"  # the ticket they had asked for
        assert dashboard.post(f"/dashboard/operators/{sam}/enable",
                              data={"csrf_token": token}).status_code == 303
        demoted = dashboard.post(f"/dashboard/operators/{sam}/role",
                                 data={"csrf_token": token, "role": "viewer"})
        assert "Sam is now viewer." in dashboard.get(demoted.headers["location"]).text
        forged = dashboard.post(f"/dashboard/operators/{sam}/disable", data={"csrf_token": "x"})
        assert forged.status_code == 403

    types = [e["type"] for e in backend.get("/v1/audit_events").json()["data"]
             if e["type"].startswith("operator.") and e["actor_sub"] != sam]
    assert {"operator.disabled", "operator.enabled", "operator.role_changed"} <= set(types)
    # Disabling Sam ended his impersonation: audited as that, with Olive as the actor;
    # the demotion that found nothing to end wrote nothing more (never "end_all").
    ended = backend.get("/v1/audit_events", params={
        "type": "operator.impersonations_ended"}).json()["data"]
    assert [(e["actor_sub"], e["data"]["actor_sub"]) for e in ended] == [(olive, sam)]
    assert backend.get("/v1/audit_events", params={
        "type": "impersonation.end_all"}).json()["data"] == []
    with instance.transaction() as db:
        assert operators.get(db, sam).role == "viewer"


def test_an_owner_cannot_change_their_own_account(dashboard: TestClient,
                                                  instance: Instance) -> None:
    olive = _operator(instance, "olive@support.test", "owner")
    token = sign_in(dashboard, "olive@support.test")
    refused = dashboard.post(f"/dashboard/operators/{olive}/disable", data={"csrf_token": token})
    assert refused.status_code == 403
    with instance.transaction() as db:
        assert operators.get(db, olive).disabled is False


def test_an_impersonation_in_detail(dashboard: TestClient, backend: TestClient,
                                    instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    ada = create_user(backend)
    token = sign_in(dashboard, "alice@support.test")
    form = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert 'value="full"' in form and "may start read-only impersonations only" in form
    full = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate", data={
        "csrf_token": token, "reason": "Ticket #9", "minutes": 15, "mode": "full"})
    assert full.status_code == 403 and "read-only impersonations only" in full.text
    response = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                              data={"csrf_token": token, "reason": "Ticket #8", "minutes": 15})
    dashboard.get(response.headers["location"])
    [session] = dashboard.get("/v1/client").json()["response"]["sessions"]
    assert session["impersonation_mode"] == "read_only"  # the dashboard's default
    backend.post("/v1/impersonation_activity", json={"entries": [
        {"session_id": session["id"], "method": "POST", "route": "/api/address",
         "status": 403, "occurred_at": instance.now_ms(), "refused": True}]})

    page = dashboard.get(f"/dashboard/impersonations/{session['id']}")

    assert page.status_code == 200
    for text in ("Alice", "Ticket #8", "read-only", "POST /api/address", "refused: read-only",
                 "actor_token.created", "session.created"):
        assert text in page.text, text
    user_page = dashboard.get(f"/dashboard/users/{ada['id']}").text
    assert "1 request in the application" in user_page and "POST /api/address" in user_page
    assert dashboard.get("/dashboard/impersonations/sess_nope").status_code == 404


def test_the_root_says_what_this_server_is_and_there_is_a_favicon(
        dashboard: TestClient) -> None:
    page = dashboard.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for link in ('href="/dashboard"', 'href="/docs"', 'href="/healthz"',
                 'href="/favicon.svg"'):
        assert link in page.text, link
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for path in ("/favicon.svg", "/favicon.ico"):
        icon = dashboard.get(path)
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.text.startswith("<svg")


def test_a_deep_link_survives_signing_in_and_only_to_the_dashboard(
        dashboard: TestClient, instance: Instance) -> None:
    from actas.server.dashboard.sign_in import next_page

    _operator(instance, "alice@support.test", "support")
    asked = dashboard.get("/dashboard/audit?type=impersonation.refused", follow_redirects=False)
    assert asked.status_code == 303
    form_url = asked.headers["location"]
    assert form_url == "/dashboard/sign_in?next=%2Fdashboard%2Faudit%3Ftype%3Dimpersonation.refused"
    form = dashboard.get(form_url).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
    wanted = re.search(r'name="next" value="([^"]*)"', form)
    assert token and wanted and wanted.group(1) == "/dashboard/audit?type=impersonation.refused"
    signed_in = dashboard.post("/dashboard/sign_in", follow_redirects=False, data={
        "email": "alice@support.test", "password": PASSWORD, "csrf_token": token.group(1),
        "next": wanted.group(1)})
    assert signed_in.headers["location"] == "/dashboard/audit?type=impersonation.refused"
    for outside in ("https://evil.test/dashboard", "//evil.test", "/dashboard/../v1/users",
                    "/dashboardx", "/dashboard//evil.test", "/dashboard/sign_out",
                    "/dashboard\\evil", "/dashboard/\r\nx", ""):
        assert next_page(outside) == "/dashboard/users", outside
    assert next_page("/dashboard/impersonations") == "/dashboard/impersonations"


def test_a_second_impersonation_in_the_same_browser_is_stopped_before_a_ticket(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    ada, bob = create_user(backend), create_user(backend, "bob@example.com")
    token = sign_in(dashboard, "alice@support.test")
    first = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #1"})
    dashboard.get(first.headers["location"])  # redeemed in this browser
    issued = len(backend.get("/v1/actor_tokens", params={"limit": 100}).json())

    second = dashboard.post(f"/dashboard/users/{bob['id']}/impersonate",
                            data={"csrf_token": token, "reason": "Ticket #2"})

    assert second.status_code == 409 and "already in an impersonation" in second.text
    assert len(backend.get("/v1/actor_tokens", params={"limit": 100}).json()) == issued
    stop = re.search(r'action="(/dashboard/impersonations/(sess_\w+)/end)"', second.text)
    assert stop
    dashboard.post(stop.group(1), data={"csrf_token": token})
    assert backend.get(f"/v1/sessions/{stop.group(2)}").json()["status"] == "revoked"
    third = dashboard.post(f"/dashboard/users/{bob['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #2"})
    assert third.status_code == 303  # free again


def test_the_audit_log_names_people_with_their_ids_beside(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    operator_id = _operator(instance, "alice@support.test", "support")
    ada = create_user(backend, first_name="Ada", last_name="Lovelace")
    token = sign_in(dashboard, "alice@support.test")
    first = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #3"})
    dashboard.get(first.headers["location"])

    page = dashboard.get("/dashboard/audit").text

    assert f'<span>Alice</span><code class="id">{operator_id}</code>' in page
    assert f'>Ada Lovelace</a><code class="id">{ada["id"]}</code>' in page
    assert 'href="/dashboard/impersonations/sess_' in page


def test_a_viewer_is_not_offered_end_now(dashboard: TestClient, backend: TestClient,
                                         browser: TestClient, instance: Instance) -> None:
    from tests.support.flows import create_actor_token, redeem

    _operator(instance, "vera@support.test", "viewer")
    ada = create_user(backend)
    redeem(browser, create_actor_token(backend, ada["id"])["token"])
    sign_in(dashboard, "vera@support.test")
    page = dashboard.get("/dashboard/impersonations").text
    assert "Support ticket #4242" in page  # the live impersonation is listed
    assert "End now" not in page and "can see impersonations but not end them" in page


def test_a_mistyped_page_address_is_a_page_and_an_api_one_is_json(
        dashboard: TestClient, instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    page = dashboard.get("/dashboard/nothing-here")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and "Alice" in page.text  # with the signed-in header
    browsed = dashboard.get("/nope", headers={"Accept": "text/html,*/*"})
    assert browsed.status_code == 404 and "Not found" in browsed.text
    api = dashboard.get("/v1/nothing-here", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["errors"][0]["code"] == "resource_not_found"
