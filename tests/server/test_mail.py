"""Notices to the impersonated user, by email, end to end against a real SMTP server
(aiosmtpd) started on loopback: what they say, that they are sent once, that a mail
server that is down delays them and loses none, and that an install can reword them."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from starlette.testclient import TestClient

from actas.server import Instance, mail
from actas.server.clock import FrozenClock
from actas.server.db.schema import MailMessage
from tests.support.flows import create_actor_token, create_user, redeem
from tests.support.processes import free_port


class Inbox:
    """An SMTP server's handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def settings_overrides(smtp_port: int) -> dict[str, Any]:
    return {"smtp_url": f"smtp://127.0.0.1:{smtp_port}",
            "complaints_contact": "privacy@example.com"}


def _serve(port: int) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    controller, inbox = _serve(smtp_port)
    yield inbox
    controller.stop()


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def _html(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def _impersonate(backend: TestClient, browser: TestClient, **fields: Any) -> tuple[str, str]:
    user = create_user(backend, first_name="Ada", last_name="Lovelace")
    token = create_actor_token(backend, user["id"], sub="op_01SAM",
                               reason="Ticket #4242: the invoice page is empty",
                               actor={"name": "Sam Support"}, mode="read_only",
                               session_max_duration_in_seconds=1800, **fields)
    return user["id"], redeem(browser, token["token"])


def test_the_user_is_told_when_an_impersonation_starts_and_ends(
        backend: TestClient, browser: TestClient, instance: Instance, inbox: Inbox) -> None:
    _user_id, session_id = _impersonate(backend, browser)
    assert mail.deliver_due(instance) == 1
    [started] = inbox.messages
    assert started["To"] == "ada@example.com"
    assert started["Subject"] == "Sam Support signed in to your account"
    assert started["Auto-Submitted"] == "auto-generated"
    text = _text(started)
    for said in ("Hello Ada Lovelace", "Sam Support signed in to your account at",
                 "Ticket #4242: the invoice page is empty", "cannot change anything",
                 "(30 minutes)", "contact privacy@example.com", "http://localhost:3000"):
        assert said in text, said
    assert "op_01SAM" not in text and "op_01SAM" not in _html(started)  # never a raw id
    assert "<strong>Sam Support</strong>" in _html(started)

    backend.post(f"/v1/sessions/{session_id}/revoke")
    assert mail.deliver_due(instance) == 1
    ended = inbox.messages[1]
    assert ended["Subject"] == "Sam Support's access to your account has ended"
    assert "it was ended early" in _text(ended)
    assert mail.deliver_due(instance) == 0  # each once


def test_a_reason_cannot_inject_markup_into_the_html_mail(
        backend: TestClient, browser: TestClient, instance: Instance, inbox: Inbox) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"], reason='<a href="http://evil.test">x</a>')
    redeem(browser, token["token"])
    mail.deliver_due(instance)
    [started] = inbox.messages
    assert "&lt;a href=" in _html(started) and '<a href="http://evil.test">' not in _html(started)


def test_a_mail_server_that_is_down_delays_notices_and_loses_none(
        backend: TestClient, browser: TestClient, instance: Instance, smtp_port: int,
        clock: FrozenClock) -> None:
    _impersonate(backend, browser)
    assert mail.deliver_due(instance) == 0  # nothing listens on the port yet
    with instance.transaction() as db:
        [row] = db.scalars(select(MailMessage)).all()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error and "ConnectionRefusedError" in row.last_error
        assert "ada@example.com" not in row.last_error
    assert mail.deliver_due(instance) == 0  # not due again before its wait

    controller, inbox = _serve(smtp_port)
    try:
        clock.advance(seconds=mail.BACKOFF_SECONDS[0])
        assert mail.deliver_due(instance) == 1
        assert len(inbox.messages) == 1
        clock.advance(seconds=3600)
        assert mail.deliver_due(instance) == 0 and len(inbox.messages) == 1
    finally:
        controller.stop()


def test_two_senders_never_send_the_same_message(backend: TestClient, browser: TestClient,
                                                 instance: Instance, inbox: Inbox) -> None:
    _impersonate(backend, browser)
    sent: list[str] = []

    def slow_send(message: EmailMessage) -> None:
        # While this sender holds the lease, a second one finds nothing to claim.
        assert mail.deliver_due(instance, send=lambda m: sent.append("second")) == 0
        sent.append("first")

    assert mail.deliver_due(instance, send=slow_send) == 1
    assert sent == ["first"]


def test_an_install_rewords_a_notice_with_its_own_template(
        tmp_path: Path, backend: TestClient, browser: TestClient, instance: Instance,
        inbox: Inbox) -> None:
    import dataclasses

    (tmp_path / "impersonation_started.txt").write_text(
        "Dear {{ user_name }}, {{ actor_name }} looked at your account ({{ reason }}).\n")
    object.__setattr__(instance, "settings",
                       dataclasses.replace(instance.settings, mail_templates_dir=tmp_path))
    _impersonate(backend, browser)
    mail.deliver_due(instance)
    [started] = inbox.messages
    assert _text(started) == ("Dear Ada Lovelace, Sam Support looked at your account "
                              "(Ticket #4242: the invoice page is empty).\n")
    assert "signed in to your account at" in _html(started)  # the HTML is still ours


def test_notices_can_be_turned_off_but_an_override_is_always_told(
        backend: TestClient, browser: TestClient, instance: Instance, inbox: Inbox) -> None:
    import dataclasses

    object.__setattr__(instance, "settings",
                       dataclasses.replace(instance.settings, impersonation_notices=()))
    _user_id, session_id = _impersonate(backend, browser)
    backend.post(f"/v1/sessions/{session_id}/revoke")
    assert mail.deliver_due(instance) == 0  # neither start nor end
    grace = create_user(backend, "grace@example.com", impersonation_preference="never")
    token = create_actor_token(backend, grace["id"], override=True, reason="Fraud #7")
    redeem(browser, token["token"])
    assert mail.deliver_due(instance) == 1
    [told] = inbox.messages
    assert told["To"] == "grace@example.com"
    assert "(your preference was overridden)" in str(told["Subject"])
    assert "an owner overrode that" in _text(told)


def test_someone_asking_for_access_is_mailed_to_the_user(
        backend: TestClient, instance: Instance, inbox: Inbox) -> None:
    user = create_user(backend, first_name="Ada", impersonation_preference="ask")
    backend.post("/v1/access_requests", json={
        "user_id": user["id"], "actor": {"sub": "op_1", "name": "Sam Support"},
        "reason": "Ticket #9", "session_max_duration_in_seconds": 900})
    assert mail.deliver_due(instance) == 1
    [asked] = inbox.messages
    assert asked["Subject"] == "Sam Support asks to sign in to your account"
    assert "for up to 15 minutes at a time" in _text(asked)
    assert "Nobody signs in unless you allow it" in _text(asked)


def test_without_a_mail_server_nothing_is_queued(backend: TestClient, browser: TestClient,
                                                 instance: Instance) -> None:
    import dataclasses

    object.__setattr__(instance, "settings",
                       dataclasses.replace(instance.settings, smtp_url=None))
    _impersonate(backend, browser)
    with instance.transaction() as db:
        assert db.scalars(select(MailMessage)).all() == []


def test_a_daily_digest_instead_of_a_mail_each_time(
        backend: TestClient, browser: TestClient, instance: Instance, inbox: Inbox,
        clock: FrozenClock) -> None:
    import dataclasses

    from actas.server import notices

    notices._digested.clear()
    object.__setattr__(instance, "settings", dataclasses.replace(
        instance.settings, impersonation_notices=("digest",)))
    _user_id, first = _impersonate(backend, browser)
    backend.post(f"/v1/sessions/{first}/revoke")
    assert mail.deliver_due(instance) == 0  # nothing at the time
    clock.advance(seconds=notices.DAY_MS // 1000)
    assert notices.queue_digests(instance) == 1
    assert notices.queue_digests(instance) == 0  # once a day
    notices._digested.clear()  # another process, or a restart: still queued once
    assert notices.queue_digests(instance) == 0
    assert mail.deliver_due(instance) == 1
    [digest] = inbox.messages
    assert "Your account was accessed by support 1 time on" in str(digest["Subject"])
    assert "- Sam Support, at" in _text(digest) and "Ticket #4242" in _text(digest)


def test_a_name_with_line_breaks_is_one_line_and_blocks_nobody(
        backend: TestClient, browser: TestClient, instance: Instance, inbox: Inbox) -> None:
    """An actor's name is free text from the Backend API; in a subject, a line break
    would be a header of its own. It is flattened, and a message that cannot be sent
    at all is counted as failed rather than holding back the ones behind it."""
    user = create_user(backend)
    token = create_actor_token(backend, user["id"], actor={"name": "Sam\r\nBcc: x@evil.test"})
    redeem(browser, token["token"])
    with instance.transaction() as db:
        mail.queue(db, instance, mail.Outgoing(
            kind="test", dedupe_key="test:bad", to_address="bob@example.com",
            subject="broken\nsubject", text_body="x", html_body="<p>x</p>"))
        mail.queue(db, instance, mail.Outgoing(
            kind="test", dedupe_key="test:good", to_address="carol@example.com",
            subject="fine", text_body="x", html_body="<p>x</p>"))
    assert mail.deliver_due(instance) == 2
    subjects = [str(m["Subject"]) for m in inbox.messages]
    assert "Sam Bcc: x@evil.test signed in to your account" in subjects and "fine" in subjects
    assert all("Bcc" not in m for m in inbox.messages)
    with instance.transaction() as db:
        bad = db.scalars(select(MailMessage).where(MailMessage.dedupe_key == "test:bad")).one()
        assert (bad.status, bad.attempts, bad.last_error) == ("pending", 1, "ValueError")


def test_refused_recipients_are_not_written_to_the_log() -> None:
    import smtplib

    refused = smtplib.SMTPRecipientsRefused({"ada@example.com": (550, b"no such user")})
    assert mail.describe(refused) == "SMTPRecipientsRefused: SMTP 550"
    assert "ada@" not in mail.describe(smtplib.SMTPDataError(554, b"ada@example.com"))
