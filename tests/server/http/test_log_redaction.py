"""Tickets never reach the access log, however the query spells them."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from actas.server.http.log_redaction import RedactSecrets, redact
from tests.support.flows import create_actor_token, create_user

TICKET = "tkt_Zm9vYmFyLWJhei1xdXV4LTEyMzQ1Njc4OTA"


def test_ticket_values_are_redacted() -> None:
    assert redact("/v1/tickets/accept?ticket=tkt_secret123") == \
        "/v1/tickets/accept?ticket=[redacted]"
    assert redact("/x?a=1&ticket=tkt_s&b=2") == "/x?a=1&ticket=[redacted]&b=2"
    assert redact("/v1/users?query=ticket") == "/v1/users?query=ticket"


@pytest.mark.parametrize("query", [
    f"%74icket={TICKET}",                    # the server decodes the name to "ticket"
    f"%74%69%63%6B%65%74={TICKET}",
    f"ticket=%74kt_{TICKET[4:]}",            # and the value
    f"ticket={TICKET}&ticket={TICKET}",      # repeated
    f"a=1&%74icket={TICKET}&ticket={TICKET}&b=2",
    f"a=1;ticket={TICKET}",                  # ';' is no separator: one value "1;ticket=tkt_…"
    f"a=1;%74icket={TICKET}",
    f"TICKET={TICKET}",                      # not what the server redeems, hidden all the same
    f"Ticket={TICKET}",
    f"next=/v1/tickets/accept%3Fticket%3D{TICKET}",  # a ticket under any other name
    f"x={TICKET.upper()}",
    f"{TICKET}",                             # a secret sent as a name
    f"{TICKET}=1",
    f"token={TICKET}",
    f"ticket={TICKET}#frag",
])
def test_a_ticket_is_redacted_however_the_query_spells_it(query: str) -> None:
    logged = redact(f"/v1/tickets/accept?{query}")
    assert TICKET[4:] not in logged and TICKET[4:].upper() not in logged.upper(), logged
    assert "[redacted]" in logged


def test_only_secret_parameters_change_and_the_rest_is_logged_as_sent() -> None:
    path = f"/v1/users?q=a%20b+c&%74icket={TICKET}&email_address=a%40b.c&x=&y&desk_lamp=sk"
    assert redact(path) == \
        "/v1/users?q=a%20b+c&%74icket=[redacted]&email_address=a%40b.c&x=&y&desk_lamp=sk"
    assert redact("/v1/users") == "/v1/users"
    assert redact("/v1/users?") == "/v1/users?"
    assert redact("/v1/users?limit=10&&offset=0") == "/v1/users?limit=10&&offset=0"


def test_uvicorn_access_records_are_rewritten() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/v1/tickets/accept?ticket=tkt_abc",
                                "1.1", 303), None)
    assert RedactSecrets().filter(record)
    assert "tkt_abc" not in record.getMessage() and "[redacted]" in record.getMessage()


def test_the_percent_encoded_name_is_what_redeems_and_it_is_redacted(
        backend: TestClient, browser: TestClient) -> None:
    """The attack, end to end: the server decodes ``%74icket`` to ``ticket`` and redeems;
    names are case-sensitive to it (``TICKET`` is not the parameter)."""
    ticket = create_actor_token(backend, create_user(backend)["id"])["token"]
    refused = browser.get(f"/v1/tickets/accept?TICKET={ticket}", follow_redirects=False)
    assert refused.status_code == 422
    path = f"/v1/tickets/accept?%74icket={ticket}"
    redeemed = browser.get(path, follow_redirects=False)
    assert redeemed.status_code == 303, redeemed.text
    assert ticket not in redact(path)


@pytest.mark.parametrize("path", [
    "/v1/tickets/accept%3Fticket%3Dtkt_SECRETSECRET",
    "/v1/tickets/accept%253Fticket%253Dtkt_SECRETSECRET",
    "/v1/tickets/accept/tkt_SECRETSECRET",
    "/v1/tickets/accept%3Fticket%3Dtkt_SECRETSECRET?x=1",
])
def test_a_ticket_in_the_path_is_redacted_too(path: str) -> None:
    logged = redact(path)
    assert "SECRETSECRET" not in logged and "[redacted]" in logged
    assert logged.startswith("/v1/tickets/accept")
