"""The e-mail outbox: mail is queued in the business transaction and sent later, with retries.

`queue_email` only adds a row to the caller's unit of work, so a message exists exactly when the
change that caused it was committed. `send_pending` (run by the worker, `flask --app wsgi worker`, and
by `flask mail send`) delivers due messages over SMTP outside any write transaction: each attempt is first
claimed in a short transaction (attempts + 1, and `claimed_until` so that no other worker takes it while
it is being sent), then sent, then recorded as sent or as a failure to retry after a back-off. Delivery is
at least once: a crash between the SMTP hand-over and the record may send a message twice (after the
claim lapses), never lose it.

SMTP is configured by MAIL_SERVER, MAIL_PORT, MAIL_USERNAME, MAIL_PASSWORD (a login when a user is set)
and MAIL_SECURITY (`none`, `starttls`, or `tls` from the first byte; certificates are verified). Without
MAIL_SERVER, development and testing write .eml files into MAIL_OUTBOX_DIR; anywhere else mail stays
queued, untouched, and /healthz says `mail: "not_configured"`: it is never marked sent.
"""
from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update

from app.extensions import db
from app.models import Contract, CreditNote, Invoice, OutboxEmail
from app.services.base import now_or, unit_of_work
from app.services.contract_pdf import render_pdf
from app.services.errors import ValidationFailed
from config import SAFE_TO_TRY_ENVS, mail_port

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

# Attempt n (0-based) is due this long after the message was queued; after the last one it fails.
RETRY_SCHEDULE = (
    timedelta(0), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
    timedelta(hours=3), timedelta(hours=6), timedelta(hours=12), timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE)
CONTRACT_SUFFIX = ".pdf"
CONTRACT_MIME = "application/pdf"
BATCH_SIZE = 200
SMTP_TIMEOUT_SECONDS = 20
# A claimed message is left alone this long: far longer than one SMTP hand-over with its PDF; after it, a
# message whose sender died mid-send is taken again by its retry schedule.
CLAIM_LEASE = timedelta(minutes=5)


def queue_email(to_address: str, subject: str, body_text: str, *, attachment_name: str | None = None,
                attachment_mime: str | None = None, attachment: bytes | None = None,
                contract_number: str | None = None, invoice_number: str | None = None,
                now: datetime | None = None) -> OutboxEmail:
    """Add a message to the outbox inside the caller's unit of work (no flush, no network).

    `contract_number` attaches that contract's PDF, rendered when the message is sent: rendering
    takes a third of a second, far too long to hold a booking's write lock for, and the contract
    is immutable, so the PDF is the same whenever it is made.
    """
    to_address = (to_address or "").strip()
    if "@" not in parseaddr(to_address)[1] or "\n" in to_address or "\r" in to_address:
        raise ValidationFailed({"to_address": [_("Inte en e-postadress: %(address)r.", address=to_address)]})
    if (attachment is None) != (attachment_name is None):
        raise ValidationFailed({"attachment": [_("Ange en bilaga tillsammans med dess filnamn.")]})
    if contract_number is not None:
        attachment_name, attachment_mime = f"{contract_number}{CONTRACT_SUFFIX}", CONTRACT_MIME
    if invoice_number is not None:  # the invoice's PDF, rendered when sent, like a contract's
        attachment_name, attachment_mime = f"{invoice_number}{CONTRACT_SUFFIX}", CONTRACT_MIME
    email = OutboxEmail(
        to_address=to_address, subject=" ".join(subject.split())[:300], body_text=body_text,
        attachment_name=attachment_name, attachment_mime=attachment_mime or (
            "application/octet-stream" if attachment is not None else None),
        attachment=attachment, status="pending", attempts=0, created_at=now_or(now),
    )
    db.session.add(email)
    return email


def due_at(email: OutboxEmail) -> datetime | None:
    """When the next attempt may be made, or None when no attempt is left."""
    if email.attempts >= MAX_ATTEMPTS:
        return None
    return email.created_at + RETRY_SCHEDULE[email.attempts]


@dataclass(frozen=True)
class _Outgoing:
    """A message's plain values, read before the network so no transaction stays open meanwhile."""

    id: int
    attempt: int
    to_address: str
    subject: str
    body_text: str
    attachment_name: str | None
    attachment_mime: str | None
    attachment: bytes | None
    created_at: datetime


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    not_configured: bool = False  # MAIL_SERVER unset outside development: nothing was touched
    waiting: int = 0  # with not_configured: the messages that stay queued

    def __str__(self) -> str:
        if self.not_configured:
            return f"not configured (MAIL_SERVER is unset): {self.waiting} message(s) stay queued, none sent"
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} given up"


def delivery_mode() -> str:
    """`smtp` with MAIL_SERVER; without it `files` (.eml) in development and testing, else `not_configured`."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        return "smtp"
    return "files" if config.get("APP_ENV") in SAFE_TO_TRY_ENVS else "not_configured"


def tls_context() -> ssl.SSLContext:
    """The TLS settings of MAIL_SECURITY starttls and tls: the system's trusted certificates, names checked."""
    return ssl.create_default_context()


def build_message(item: _Outgoing) -> EmailMessage:
    sender = current_app.config["MAIL_FROM"]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = item.to_address
    message["Subject"] = item.subject
    message["Date"] = format_datetime(item.created_at)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sangplats.se"
    message["Message-ID"] = make_msgid(f"outbox{item.id}", domain=domain)
    message.set_content(item.body_text)
    if item.attachment is not None:
        maintype, _, subtype = (item.attachment_mime or "application/octet-stream").partition("/")
        message.add_attachment(item.attachment, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=item.attachment_name)
    return message


class _Transport:
    """One SMTP connection for a batch, opened on first use; or the .eml folder in development."""

    def __init__(self) -> None:
        config = current_app.config
        self.server = config.get("MAIL_SERVER") or ""
        self.port = mail_port(config)
        self.username = config.get("MAIL_USERNAME") or ""
        self.password = config.get("MAIL_PASSWORD") or ""
        self.security = config.get("MAIL_SECURITY") or "none"
        self.folder = Path(config["MAIL_OUTBOX_DIR"])
        self.smtp: smtplib.SMTP | None = None

    def deliver(self, item: _Outgoing, message: EmailMessage) -> None:
        if not self.server:
            self._write_file(item, message)
            return
        try:
            self._connection().send_message(message)
        except smtplib.SMTPServerDisconnected:
            # A connection kept from earlier in the batch may have timed out: reconnect once.
            self.close()
            self._connection().send_message(message)

    def _connection(self) -> smtplib.SMTP:
        if self.smtp is None:
            self.smtp = connect(self.server, self.port, self.security, self.username, self.password)
        return self.smtp

    def _write_file(self, item: _Outgoing, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", item.subject).strip("-")[:40] or "mail"
        (self.folder / f"{item.id:06d}-{slug}.eml").write_bytes(bytes(message))

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.smtp = None


def connect(server: str, port: int, security: str, username: str, password: str) -> smtplib.SMTP:
    """An SMTP connection as MAIL_SECURITY says (`tls`: TLS from the first byte; `starttls`: upgraded before
    anything else is said, refused if the server cannot), logged in when a user name is given."""
    smtp: smtplib.SMTP
    if security == "tls":
        smtp = smtplib.SMTP_SSL(server, port, timeout=SMTP_TIMEOUT_SECONDS, context=tls_context())
    else:
        smtp = smtplib.SMTP(server, port, timeout=SMTP_TIMEOUT_SECONDS)
    try:
        if security == "starttls":
            smtp.starttls(context=tls_context())  # raises SMTPNotSupportedError without STARTTLS: nothing in clear
        if username:
            smtp.login(username, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _not_claimed(now: datetime):
    return or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until <= now)


def _due(now: datetime, limit: int) -> list[_Outgoing]:
    due = or_(*(and_(OutboxEmail.attempts == n, OutboxEmail.created_at <= now - wait)
                for n, wait in enumerate(RETRY_SCHEDULE)))
    rows = db.session.scalars(select(OutboxEmail).where(OutboxEmail.status == "pending", due, _not_claimed(now))
                              .order_by(OutboxEmail.id).limit(limit)).all()
    items = [_Outgoing(e.id, e.attempts, e.to_address, e.subject, e.body_text, e.attachment_name,
                       e.attachment_mime, e.attachment, e.created_at) for e in rows]
    db.session.commit()  # end the read transaction before any network traffic
    return items


def _with_attachment(item: _Outgoing) -> _Outgoing:
    """The message with its contract PDF rendered, when it refers to a contract by number."""
    if item.attachment is not None or item.attachment_name is None:
        return item
    number = item.attachment_name.removesuffix(CONTRACT_SUFFIX)
    contract = db.session.scalar(select(Contract).where(Contract.number == number))
    pdf = render_pdf(contract) if contract is not None else None
    if pdf is None:
        from app.services import invoices
        from app.services.invoice_pdf import render as render_invoice
        invoice = db.session.scalar(select(Invoice).where(Invoice.number == number))
        pdf = render_invoice(invoices.invoice_document(invoice)) if invoice is not None else None
        note = db.session.scalar(select(CreditNote).where(CreditNote.number == number)) if pdf is None else None
        if note is not None:
            pdf = render_invoice(invoices.credit_note_document(note))
    db.session.commit()  # end the read transaction again
    return replace(item, attachment=pdf)


def is_permanent(error: Exception) -> bool:
    """A 5xx answer about the message (unknown mailbox, refused sender) will not change by retrying. A refused
    login is the configuration's fault, not the message's: it is retried once MAIL_USERNAME/PASSWORD are right."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return False
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and 500 <= error.smtp_code < 600


def _claim(item: _Outgoing, now: datetime) -> bool:
    """Count this attempt and hold the message for CLAIM_LEASE before sending; False when another sender has
    it (claimed first, or still sending it: its retry may already be due by the schedule)."""
    with unit_of_work():
        claimed = cast("CursorResult[Any]", db.session.execute(update(OutboxEmail).where(
            OutboxEmail.id == item.id, OutboxEmail.status == "pending", OutboxEmail.attempts == item.attempt,
            _not_claimed(now),
        ).values(attempts=item.attempt + 1, claimed_until=now + CLAIM_LEASE))).rowcount  # an UPDATE's result
    return claimed == 1


def _record(item: _Outgoing, error: str | None, now: datetime, *, permanent: bool = False) -> str:
    with unit_of_work():
        email = db.session.get_one(OutboxEmail, item.id)
        email.claimed_until = None
        if error is None:
            email.status, email.sent_at, email.last_error = "sent", now, None
        else:
            email.last_error = error[:500]
            email.status = "failed" if permanent or email.attempts >= MAX_ATTEMPTS else "pending"
        return email.status


def send_pending(now: datetime | None = None, *, limit: int = BATCH_SIZE) -> SendReport:
    """Deliver every due message once; failures are retried after a back-off, given up after the last
    attempt or at once on a permanent (5xx) refusal."""
    now = now_or(now)
    if delivery_mode() == "not_configured":
        waiting = db.session.scalar(select(func.count(OutboxEmail.id)).where(OutboxEmail.status == "pending"))
        db.session.commit()
        log.error("mail is not configured (MAIL_SERVER is unset): %s message(s) stay queued", waiting)
        return SendReport(not_configured=True, waiting=waiting or 0)
    report = SendReport()
    transport = _Transport()
    try:
        for item in _due(now, limit):
            if not _claim(item, now):
                continue
            error, permanent = None, False
            try:
                item = _with_attachment(item)
                transport.deliver(item, build_message(item))
            except (TimeoutError, smtplib.SMTPException, OSError) as exc:
                permanent = is_permanent(exc)
                if not isinstance(exc, smtplib.SMTPRecipientsRefused):
                    transport.close()  # the connection may be unusable; a refused recipient leaves it fine
                error = f"{type(exc).__name__}: {exc}"
                log.warning("mail %s to %s not sent (attempt %s): %s", item.id, item.to_address,
                            item.attempt + 1, error)
            status = _record(item, error, now, permanent=permanent)
            if status == "sent":
                report.sent += 1
            elif status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
    finally:
        transport.close()
    return report
