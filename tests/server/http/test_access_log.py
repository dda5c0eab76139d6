"""The access log: every request but a successful token refresh, with secrets redacted."""

from __future__ import annotations

import logging

import pytest

from actas.server.http.access_log import AccessLogFilter, install

REFRESH = "/v1/client/sessions/sess_2b1c9Zq/tokens"


def record(method: str, path: str, status: int) -> logging.LogRecord:
    """An access record as uvicorn writes it."""
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                             '%s - "%s %s HTTP/%s" %d',
                             ("127.0.0.1:5000", method, path, "1.1", status), None)


@pytest.mark.parametrize("path", [REFRESH, f"{REFRESH}?_clerk_js_version=5.0.0"])
def test_a_successful_refresh_is_not_logged(path: str) -> None:
    assert not AccessLogFilter().filter(record("POST", path, 200))


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", REFRESH, 401),                    # a refused refresh is logged
    ("POST", REFRESH, 404),
    ("POST", REFRESH, 429),
    ("POST", REFRESH, 503),
    ("OPTIONS", REFRESH, 200),                 # a preflight is another request
    ("GET", REFRESH, 200),
    ("POST", "/v1/client/sign_ins", 200),
    ("POST", f"{REFRESH}/more", 200),          # not the refresh route
    ("POST", "/v1/sessions/sess_2b1c9Zq/tokens", 200),  # the Backend API's mint
])
def test_every_other_request_is_logged(method: str, path: str, status: int) -> None:
    assert AccessLogFilter().filter(record(method, path, status))


def test_a_ticket_is_still_redacted() -> None:
    logged = record("GET", "/v1/tickets/accept?ticket=tkt_abcdefgh", 303)
    assert AccessLogFilter().filter(logged)
    assert "tkt_abcdefgh" not in logged.getMessage() and "[redacted]" in logged.getMessage()


def test_a_record_of_another_shape_is_kept() -> None:
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("x",), None)
    assert AccessLogFilter().filter(other) and other.getMessage() == "x"


def test_install_adds_the_filter_once() -> None:
    logger = logging.getLogger("uvicorn.access")
    before = list(logger.filters)
    try:
        install()
        install()
        assert sum(isinstance(each, AccessLogFilter) for each in logger.filters) == 1
    finally:
        logger.filters[:] = before


def granian_record(method: str, path: str, query: str, status: int) -> logging.LogRecord:
    """An access record as granian writes it (actas serve): its atoms, the query apart."""
    return logging.LogRecord("granian.access", logging.INFO, __file__, 1,
                             '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d',
                             ({"addr": "127.0.0.1", "method": method, "path": path,
                               "query_string": query, "protocol": "HTTP/1.1",
                               "status": status, "dt_ms": 1.0},), None)


def test_granians_records_are_judged_alike() -> None:
    assert not AccessLogFilter().filter(granian_record("POST", REFRESH, "", 200))
    assert not AccessLogFilter().filter(granian_record("POST", REFRESH, "_clerk_js=5", 200))
    refused = granian_record("POST", REFRESH, "", 401)
    assert AccessLogFilter().filter(refused)
    assert refused.getMessage() == f'127.0.0.1 - "POST {REFRESH} HTTP/1.1" 401'


def test_granians_query_is_logged_with_its_path_and_redacted() -> None:
    ticket = granian_record("GET", "/v1/tickets/accept", "%74icket=tkt_abcdefgh&x=1", 303)
    assert AccessLogFilter().filter(ticket)
    assert ticket.getMessage() == \
        '127.0.0.1 - "GET /v1/tickets/accept?%74icket=[redacted]&x=1 HTTP/1.1" 303'
    # A mail client that encoded the link's "?": granian hands the path decoded.
    for path in ("/v1/tickets/accept?ticket=tkt_abcdefgh",
                 "/v1/tickets/accept%3Fticket%3Dtkt_abcdefgh"):
        secret_path = granian_record("GET", path, "", 404)
        assert AccessLogFilter().filter(secret_path)
        assert "tkt_abcdefgh" not in secret_path.getMessage()
        assert "[redacted]" in secret_path.getMessage()


def test_granians_decoded_path_cannot_forge_a_log_line() -> None:
    """granian hands the path percent-decoded: ``/x%0A127.0.0.1 - "GET /admin"…``
    would print a second, made-up request. It is logged quoted, on one line."""
    forged = granian_record(
        "GET", '/x\n10.0.0.9 - "POST /v1/users HTTP/1.1" 200', "", 404)
    assert AccessLogFilter().filter(forged)
    message = forged.getMessage()
    assert "\n" not in message and "\r" not in message
    assert message == ('127.0.0.1 - "GET /x%0A10.0.0.9%20-%20%22POST%20/v1/users'
                       '%20HTTP/1.1%22%20200 HTTP/1.1" 404')
