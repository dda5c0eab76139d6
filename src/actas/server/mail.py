"""The mail outbox: email is queued in the database and sent by the worker, never by a
request, so a slow or dead mail server slows nobody down.

A message is queued once (``dedupe_key`` is unique: the notice of one session's start
is one row however often it is asked for). The worker claims due messages with a lease
that names it (so two replicas never send the same one at the same time), sends each
through SMTP (``smtplib``, from the standard library), and marks it sent; a failure is
retried with growing waits (1 min, 5 min, 30 min, 2 h, then every 6 h) up to
``MAX_ATTEMPTS`` times, then marked failed. Each message carries a ``Message-ID`` of its
own row, so that in the one case a send can repeat (a crash between sending and
marking it sent) a mail system can tell the copy.

With ``ACTAS_MAIL_CONSOLE`` (``actas dev``), messages are printed instead of sent.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session as Db

from actas.server import ids
from actas.server.db.schema import MailMessage
from actas.server.settings import Settings

if TYPE_CHECKING:
    from actas.server.instance import Instance

log = logging.getLogger("actas.mail")

MAIL = "mail"
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (60, 300, 1800, 7200, 21600)
LEASE_MS = 120_000
SMTP_TIMEOUT_SECONDS = 10
PER_ROUND = 5
ROUND_BUDGET_SECONDS = 30.0  # a round stops sending after this, well inside the lease


def enabled(settings: Settings) -> bool:
    """Whether mail goes anywhere: queued only then."""
    return settings.smtp_url is not None or settings.mail_console


def sender(settings: Settings) -> str:
    if settings.mail_from:
        return settings.mail_from
    host = urlsplit(settings.frontend_api_url).hostname or "localhost"
    return formataddr(("actas", f"no-reply@{host}"))


@dataclass(frozen=True)
class Outgoing:
    kind: str
    dedupe_key: str
    to_address: str
    subject: str
    text_body: str
    html_body: str
    user_id: str | None = None


def queue(db: Db, instance: Instance, message: Outgoing) -> bool:
    """Queue ``message`` in the caller's transaction, unless one with its key already is;
    return whether it was queued."""
    if not enabled(instance.settings):
        return False
    if db.scalar(select(MailMessage.id).where(MailMessage.dedupe_key == message.dedupe_key)):
        return False
    now = instance.now_ms()
    db.add(MailMessage(
        id=ids.new_id(MAIL, now), dedupe_key=message.dedupe_key, kind=message.kind,
        user_id=message.user_id, to_address=message.to_address, subject=message.subject[:300],
        text_body=message.text_body, html_body=message.html_body, status="pending",
        attempts=0, next_attempt_at=now, lease_holder=None, lease_until=None,
        last_error=None, sent_at=None, created_at=now, updated_at=now))
    db.flush()
    return True


Send = Callable[[EmailMessage], None]


def deliver_due(instance: Instance, *, send: Send | None = None, limit: int = PER_ROUND) -> int:
    """Send what is due; return how many were sent. Stops at the first failure of the
    round: a mail server that is down for one message is down for the next."""
    settings = instance.settings
    if not enabled(settings):
        return 0
    transport = send or transport_of(settings)
    holder = secrets.token_hex(8)
    sent = 0
    deadline = time.monotonic() + ROUND_BUDGET_SECONDS
    claimed = _claim(instance, holder, limit)
    for index, message_id in enumerate(claimed):
        if time.monotonic() > deadline:  # a slow server: the rest go back for another round
            _release(instance, claimed[index:], holder)
            break
        with instance.transaction() as db:
            row = db.get(MailMessage, message_id)
        if row is None or row.lease_holder != holder:
            continue
        try:
            transport(_email(settings, row))
        # Any error: a message that cannot be sent must not block the ones behind it.
        except Exception as error:
            _failed(instance, row, holder, error)
            if isinstance(error, OSError | smtplib.SMTPServerDisconnected):
                _release(instance, claimed[index + 1:], holder)
                break  # the server is down or gone: the next ones would fail the same way
            continue
        _sent(instance, row, holder)
        sent += 1
    return sent


def _release(instance: Instance, message_ids: list[str], holder: str) -> None:
    if not message_ids:
        return
    with instance.transaction() as db:
        db.execute(update(MailMessage)
                   .where(MailMessage.id.in_(message_ids), MailMessage.lease_holder == holder)
                   .values(lease_holder=None, lease_until=None))


def _claim(instance: Instance, holder: str, limit: int) -> list[str]:
    now = instance.now_ms()
    with instance.transaction() as db:
        due = db.scalars(
            select(MailMessage.id)
            .where(MailMessage.status == "pending", MailMessage.next_attempt_at <= now,
                   or_(MailMessage.lease_until.is_(None), MailMessage.lease_until < now))
            .order_by(MailMessage.next_attempt_at, MailMessage.id).limit(limit)).all()
        claimed = []
        for message_id in due:
            # Compare-and-set: another replica's claim of the same row wins or loses here.
            result = db.execute(
                update(MailMessage)
                .where(MailMessage.id == message_id, MailMessage.status == "pending",
                       or_(MailMessage.lease_until.is_(None), MailMessage.lease_until < now))
                .values(lease_holder=holder, lease_until=now + LEASE_MS, updated_at=now))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(message_id)
        return claimed


def _sent(instance: Instance, row: MailMessage, holder: str) -> None:
    now = instance.now_ms()
    with instance.transaction() as db:
        db.execute(update(MailMessage)
                   .where(MailMessage.id == row.id, MailMessage.lease_holder == holder)
                   .values(status="sent", sent_at=now, attempts=row.attempts + 1,
                           lease_holder=None, lease_until=None, last_error=None,
                           updated_at=now))


def _failed(instance: Instance, row: MailMessage, holder: str, error: Exception) -> None:
    now = instance.now_ms()
    attempts = row.attempts + 1
    wait = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
    reason = describe(error)
    log.warning("mail %s not sent (attempt %d): %s", row.id, attempts, reason)
    with instance.transaction() as db:
        db.execute(update(MailMessage)
                   .where(MailMessage.id == row.id, MailMessage.lease_holder == holder)
                   .values(status="failed" if attempts >= MAX_ATTEMPTS else "pending",
                           attempts=attempts, next_attempt_at=now + wait * 1000,
                           lease_holder=None, lease_until=None, last_error=reason,
                           updated_at=now))


def describe(error: Exception) -> str:
    """What went wrong, for the log and ``last_error``: the error's class and the SMTP
    reply code, never its text (a refused recipient's address is in it)."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__}: SMTP {error.smtp_code}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _text in error.recipients.values()})
        return f"SMTPRecipientsRefused: SMTP {', '.join(map(str, codes))}"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error.strerror or 'connection failed'}"
    return type(error).__name__


def _email(settings: Settings, row: MailMessage) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender(settings)
    message["To"] = row.to_address
    message["Subject"] = row.subject
    domain = urlsplit(settings.frontend_api_url).hostname or "localhost"
    message["Message-ID"] = make_msgid(idstring=row.id, domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


def transport_of(settings: Settings) -> Send:
    if settings.smtp_url is None:
        return _print
    url = urlsplit(settings.smtp_url.reveal())
    host, user, password = url.hostname or "localhost", url.username, url.password

    def send(message: EmailMessage) -> None:
        if url.scheme == "smtps":
            context = ssl.create_default_context()
            with smtplib.SMTP_SSL(host, url.port or 465, timeout=SMTP_TIMEOUT_SECONDS,
                                  context=context) as smtp:
                _login_and_send(smtp, user, password, message)
            return
        with smtplib.SMTP(host, url.port or 25, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            elif user:  # never a password in the clear (a stripped STARTTLS, say)
                raise smtplib.SMTPNotSupportedError(
                    "the mail server offers no STARTTLS; not sending the password in clear")
            _login_and_send(smtp, user, password, message)

    return send


def _login_and_send(smtp: smtplib.SMTP, user: str | None, password: str | None,
                    message: EmailMessage) -> None:
    if user:
        smtp.login(unquote(user), unquote(password or ""))
    smtp.send_message(message)


def _print(message: EmailMessage) -> None:
    """The development mailer: the whole message on stdout, for a person to read."""
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    print(f"\n--- mail (ACTAS_MAIL_CONSOLE) ---\nFrom: {message['From']}\nTo: {message['To']}\n"
          f"Subject: {message['Subject']}\n\n{text}--- end of mail ---\n", file=sys.stdout,
          flush=True)
