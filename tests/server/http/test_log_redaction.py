"""Tickets never reach the access log."""

from __future__ import annotations

import logging

from actas.server.http.log_redaction import RedactSecrets, redact


def test_ticket_values_are_redacted() -> None:
    assert redact("/v1/tickets/accept?ticket=tkt_secret123") == \
        "/v1/tickets/accept?ticket=[redacted]"
    assert redact("/x?a=1&ticket=tkt_s&b=2") == "/x?a=1&ticket=[redacted]&b=2"
    assert redact("/v1/users?query=ticket") == "/v1/users?query=ticket"


def test_uvicorn_access_records_are_rewritten() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/v1/tickets/accept?ticket=tkt_abc",
                                "1.1", 303), None)
    assert RedactSecrets().filter(record)
    assert "tkt_abc" not in record.getMessage() and "[redacted]" in record.getMessage()
