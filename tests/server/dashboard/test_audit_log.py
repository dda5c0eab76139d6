"""The audit log as an investigation tool: filters by person and time, paging, one event
in detail with its place in the chain, and exports a spreadsheet cannot be tricked by."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.clock import FrozenClock
from actas.server.dashboard import audit_log
from tests.support.dashboard import _operator, sign_in
from tests.support.flows import create_actor_token, create_user, redeem


def _minute(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def _seqs(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/dashboard/audit/(\d+)" aria-label', page)]


def test_filters_take_emails_and_a_time_range(dashboard: TestClient, backend: TestClient,
                                              browser: TestClient, instance: Instance,
                                              clock: FrozenClock) -> None:
    _operator(instance, "alice@support.test", "support")
    early = clock.now_ms()
    browser.post("/v1/client/sign_ins", json={"identifier": "early@example.com",
                                              "password": "a wrong guess"})
    clock.advance(seconds=7200)
    sign_in(dashboard, "alice@support.test")
    ada = create_user(backend, "ada@example.com", first_name="Ada")
    create_user(backend, "grace@example.com")
    redeem(browser, create_actor_token(backend, ada["id"])["token"])

    by_user = dashboard.get("/dashboard/audit", params={"user": "ada@example.com"}).text
    assert "<code>actor_token.accepted</code>" in by_user
    assert "grace@example.com" not in by_user
    by_actor = dashboard.get("/dashboard/audit", params={"actor": "alice@support.test"}).text
    assert "<code>operator.signed_in</code>" in by_actor
    assert "<code>actor_token.accepted</code>" not in by_actor
    unknown = dashboard.get("/dashboard/audit", params={"actor": "nobody@support.test"}).text
    assert 'data-testid="empty"' in unknown and "No events match" in unknown

    # Only the early guess was made in the first hour; the To minute is inclusive.
    first_hour = dashboard.get("/dashboard/audit", params={
        "from": _minute(early - 60_000), "to": _minute(early)}).text
    assert "tried early@example.com" in first_hour
    assert "<code>operator.signed_in</code>" not in first_hour
    later = dashboard.get("/dashboard/audit", params={"from": _minute(early + 60_000)}).text
    assert "<code>operator.signed_in</code>" in later and "early@example.com" not in later
    # As a person types it: a space for the T, or a whole day.
    spaced = dashboard.get("/dashboard/audit", params={
        "from": _minute(early - 60_000).replace("T", " "), "to": _minute(early)}).text
    assert "tried early@example.com" in spaced
    day = _minute(early)[:10]
    whole_day = dashboard.get("/dashboard/audit", params={"from": day, "to": day}).text
    assert "tried early@example.com" in whole_day


def test_a_bad_time_range_is_explained_not_a_500(dashboard: TestClient,
                                                 instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    bad = dashboard.get("/dashboard/audit", params={"from": "yesterday"})
    assert bad.status_code == 400 and "is not a time" in bad.text
    backwards = dashboard.get("/dashboard/audit", params={"from": "2026-01-02T00:00",
                                                          "to": "2026-01-01T00:00"})
    assert backwards.status_code == 400 and "The time range is empty" in backwards.text
    export = dashboard.get("/dashboard/audit/export.csv", params={"to": "soon"})
    assert export.status_code == 400 and "is not a time" in export.text


def test_keyset_pages_carry_the_filters(dashboard: TestClient, backend: TestClient,
                                        instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    ada = create_user(backend)
    for _ in range(audit_log.PAGE_SIZE + 5):
        backend.post(f"/v1/users/{ada['id']}/ban")
        backend.post(f"/v1/users/{ada['id']}/unban")
    first = dashboard.get("/dashboard/audit", params={"type": "user.banned"}).text
    seqs = _seqs(first)
    assert len(seqs) == audit_log.PAGE_SIZE and seqs == sorted(seqs, reverse=True)
    older = re.search(r'href="(/dashboard/audit\?[^"]*before=\d+)">Older', first)
    assert older and "type=user.banned" in older.group(1)
    second = dashboard.get(older.group(1).replace("&amp;", "&")).text
    rest = _seqs(second)
    assert len(rest) == 5 and max(rest) < min(seqs)
    assert "← Newest" in second and "Older →" not in second


def test_an_event_in_detail_with_its_chain_position_and_its_impersonation(
        dashboard: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    ada = create_user(backend, "ada@example.com", first_name="Ada", last_name="Lovelace")
    token = create_actor_token(backend, ada["id"], reason="Ticket #7: empty invoice")
    redeem(browser, token["token"])
    [accepted] = backend.get("/v1/audit_events",
                             params={"type": "actor_token.accepted"}).json()["data"]
    page = dashboard.get(f"/dashboard/audit/{accepted['seq']}")
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text and "Ticket #7: empty invoice" in page.text
    assert accepted["hash"] in page.text and accepted["prev_hash"] in page.text
    related = page.text.split('data-testid="related-events"')[1]
    for event in ("actor_token.created", "actor_token.accepted", "session.created"):
        assert f"<code>{event}</code>" in related
    assert "operator.signed_in" not in related
    assert dashboard.get("/dashboard/audit/999999").status_code == 404
    assert dashboard.get("/dashboard/audit/not-a-number").status_code == 422


def test_csv_export_names_people_and_defuses_formulas(dashboard: TestClient,
                                                       backend: TestClient,
                                                       browser: TestClient,
                                                       instance: Instance) -> None:
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    ada = create_user(backend, "ada@example.com", first_name="Ada")
    # A reason is typed by a person; opened in a spreadsheet it must stay text.
    redeem(browser, create_actor_token(backend, ada["id"],
                                       reason='=HYPERLINK("http://evil.test","x")')["token"])
    export = dashboard.get("/dashboard/audit/export.csv", params={"user": "ada@example.com"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {"session.created", "actor_token.accepted"} <= {r["type"] for r in rows}
    assert [int(r["seq"]) for r in rows] == sorted((int(r["seq"]) for r in rows), reverse=True)
    assert {r["user_name"] for r in rows} == {"Ada"}
    reasons = {r["reason"] for r in rows if r["reason"]}
    assert reasons == {"'=HYPERLINK(\"http://evil.test\",\"x\")"}
    assert all(r["occurred_at"].endswith("+00:00") for r in rows)


def test_jsonl_export_is_the_backend_api_objects_all_of_them(dashboard: TestClient,
                                                             backend: TestClient,
                                                             instance: Instance,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr(audit_log, "_EXPORT_BATCH", 7)  # several batches, keyset-joined
    _operator(instance, "alice@support.test", "support")
    sign_in(dashboard, "alice@support.test")
    ada = create_user(backend)
    for _ in range(10):
        backend.post(f"/v1/users/{ada['id']}/ban")
        backend.post(f"/v1/users/{ada['id']}/unban")
    export = dashboard.get("/dashboard/audit/export.jsonl")
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.text.splitlines()]
    api = backend.get("/v1/audit_events", params={"limit": 500}).json()["data"]
    assert lines == api  # every event once, newest first, hashes included
    assert len(lines) >= 21


def test_export_needs_a_signed_in_operator(dashboard: TestClient) -> None:
    response = dashboard.get("/dashboard/audit/export.jsonl")
    assert response.status_code == 303 and "/dashboard/sign_in" in response.headers["location"]
