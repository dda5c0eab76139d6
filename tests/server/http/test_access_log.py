"""The access log: every request but a successful token refresh, with secrets redacted."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from starlette.types import Message, Receive, Scope, Send

from actas.server.http.access_log import LOGGER, AccessLog, AccessLogFilter, install

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


def served(path: str, *, method: str = "GET", query: bytes = b"", status: int = 200,
           raises: type[BaseException] | None = None, raises_after_answer: bool = False,
           client: tuple[str, int] | None = ("203.0.113.7", 50123)) -> list[str]:
    """The lines ``AccessLog`` writes for one request to an app that answers ``status``
    (or raises before answering), through the filter ``install`` attaches."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if raises is not None:
            raise raises()
        await send({"type": "http.response.start", "status": status, "headers": []})
        if raises_after_answer:  # the client left while the body was being sent
            raise asyncio.CancelledError
        await send({"type": "http.response.body", "body": b""})

    scope: Scope = {"type": "http", "method": method, "path": path, "query_string": query,
                    "http_version": "1.1", "client": client, "root_path": ""}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(LOGGER)
    handler, level, filters = Collect(), logger.level, list(logger.filters)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        install()
        with contextlib.suppress(RuntimeError, asyncio.CancelledError):
            asyncio.run(AccessLog(app)(scope, receive, send))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.filters[:] = filters
    return lines


def test_actas_serve_logs_each_request_as_uvicorn_does() -> None:
    assert served("/v1/users", method="POST", status=201) == [
        '203.0.113.7:50123 - "POST /v1/users HTTP/1.1" 201']
    assert served("/healthz", client=None) == ['- - "GET /healthz HTTP/1.1" 200']
    assert served("/v1/users", raises=RuntimeError) == [
        '203.0.113.7:50123 - "GET /v1/users HTTP/1.1" 500']
    assert served("/v1/users", raises=asyncio.CancelledError) == [  # the client left
        '203.0.113.7:50123 - "GET /v1/users HTTP/1.1" 499']
    assert served("/v1/users", status=500, raises_after_answer=True) == [  # it was told
        '203.0.113.7:50123 - "GET /v1/users HTTP/1.1" 500']


def test_actas_serve_does_not_log_a_successful_refresh() -> None:
    assert served(REFRESH, method="POST") == []
    assert served(REFRESH, method="POST", query=b"_clerk_js_version=5") == []
    assert served(REFRESH, method="POST", status=401) == [
        f'203.0.113.7:50123 - "POST {REFRESH} HTTP/1.1" 401']
    assert len(served(REFRESH, method="OPTIONS")) == 1


def test_actas_serve_redacts_the_query_as_the_server_reads_it() -> None:
    assert served("/v1/tickets/accept", query=b"%74icket=tkt_abcdefgh&x=1", status=303) == [
        '203.0.113.7:50123 - "GET /v1/tickets/accept?%74icket=[redacted]&x=1 HTTP/1.1" 303']
    # A mail client that encoded the link's "?": the server hands the path decoded.
    (line,) = served("/v1/tickets/accept?ticket=tkt_abcdefgh", status=404)
    assert "tkt_abcdefgh" not in line and "[redacted]" in line


def test_a_decoded_path_cannot_forge_a_log_line() -> None:
    """The path comes percent-decoded: ``/x%0A10.0.0.9 - "POST /v1/users"…`` would print
    a second, made-up request. It is logged quoted, on one line."""
    (line,) = served('/x\n10.0.0.9 - "POST /v1/users HTTP/1.1" 200', status=404)
    assert "\n" not in line and "\r" not in line
    assert line == ('203.0.113.7:50123 - "GET /x%0A10.0.0.9%20-%20%22POST%20/v1/users'
                    '%20HTTP/1.1%22%20200 HTTP/1.1" 404')


def test_a_query_byte_a_log_reader_may_break_at_is_encoded() -> None:
    """NEL (0x85) ends a line for Python's splitlines; nothing above 0x7F is logged raw."""
    (line,) = served("/v1/users", query=b"q=a\x85203.0.113.9 - x&r=%41", status=404)
    assert len(line.splitlines()) == 1
    # granian refuses a lone byte above 0x7F but takes UTF-8: U+0085 is C2 85.
    (line,) = served("/v1/users", query=b"q=\xc2\x85x&c=\xc2\x9b2J", status=404)
    assert line.endswith('/v1/users?q=%C2%85x&c=%C2%9B2J HTTP/1.1" 404')
    (line,) = served("/v1/users", query=b"q=a\x85203.0.113.9 - x&r=%41", status=404)
    assert line == ('203.0.113.7:50123 - "GET /v1/users?q=a%85203.0.113.9%20-%20x&r=%41 '
                    'HTTP/1.1" 404')
    assert len(line.splitlines()) == 1


def test_a_forwarded_client_cannot_write_quotes_or_lines() -> None:
    """Behind a trusted proxy the client is what X-Forwarded-For said, unchecked."""
    (line,) = served("/healthz", client=('6.6.6.6 - "GET /admin HTTP/1.1" 200\x85x', 0))
    assert line.startswith('6.6.6.6%20-%20%22GET%20%2Fadmin%20HTTP%2F1.1%22%20200%C2%85x:0 - ')
    assert len(line.splitlines()) == 1 and line.count('"') == 2
    (line,) = served("/healthz", client=("::1", 5000))
    assert line.startswith("::1:5000 - ")


def test_a_quote_in_the_query_cannot_close_the_request() -> None:
    (line,) = served("/x", query=b'a="b\\c', status=404)
    assert line == '203.0.113.7:50123 - "GET /x?a=%22b%5Cc HTTP/1.1" 404'
