"""E-mail: the outbox, delivery to a real local SMTP server (aiosmtpd), retries, languages, notifications."""
from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import OutboxEmail
from app.services import accounts, cancellations, delegations, flags, jobs, mail, vetting
from app.services.base import Actor
from app.services.errors import Conflict
from tests.helpers import NOW, YEAR
from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp(app):
    """A real SMTP server on a free local port, and the app configured to send through it (not yet started)."""
    server = SmtpServer()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    yield server
    server.stop()


INVOICES = "ekonomi@example.se"


@pytest.fixture
def world(make_listing, make_user, make_delegation):
    listing = make_listing(beds=3, price_ore=50000)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    # Invoices (issue 16) go to the organisation's accounts mailbox, so the coordinator's inbox holds the
    # booking's own messages.
    delegations.update_invoice_details(Actor(coordinator.id, "coordinator"), delegation.id,
                                       {"invoice_email": INVOICES})
    return {"listing": listing, "bed_ids": [b.id for b in listing.beds()], "coordinator": coordinator,
            "delegation": delegation, "host": db.session.get(type(coordinator), listing.host_id)}


def outbox(to=None) -> list[OutboxEmail]:
    query = select(OutboxEmail).order_by(OutboxEmail.id)
    if to is not None:
        query = query.where(OutboxEmail.to_address == to)
    return list(db.session.scalars(query))


def test_invoice_booking_confirmation_arrives_with_the_contract_pdf(world, smtp, runner, make_booking):
    smtp.start()
    booking = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], now=NOW)
    number = booking.contract.number
    result = runner.invoke(args=["mail", "send"])
    assert result.exit_code == 0, result.output
    assert "sent" in result.output

    # The coordinator gets the confirmation with the contract, and (issue 16) the invoice with its own PDF.
    [confirmation] = smtp.inbox.to(world["coordinator"].email)
    assert number in confirmation["Subject"] and confirmation["From"]
    [invoice_mail] = smtp.inbox.to(INVOICES)
    assert booking.invoice_number in invoice_mail["Subject"]
    [invoice_pdf] = list(invoice_mail.iter_attachments())
    assert invoice_pdf.get_filename() == f"{booking.invoice_number}.pdf"
    assert invoice_pdf.get_content().startswith(b"%PDF")
    body = confirmation.get_body(("plain",)).get_content()
    assert booking.invoice_number in body and booking.contract.sha256 in body and "2\u00a0000 kr" in body
    [pdf] = list(confirmation.iter_attachments())
    assert pdf.get_filename() == f"{number}.pdf" and pdf.get_content_type() == "application/pdf"
    assert pdf.get_content().startswith(b"%PDF")

    [host_notice] = smtp.inbox.to(world["host"].email)[-1:]
    assert "Ny bokning" in host_notice["Subject"] and number in host_notice.get_content()
    assert all(e.status == "sent" and e.sent_at is not None for e in outbox())
    # Sent once: another run delivers nothing new.
    count = len(smtp.inbox.messages)
    runner.invoke(args=["mail", "send"])
    assert len(smtp.inbox.messages) == count


def test_mail_server_down_keeps_the_message_and_delivers_it_later(world, smtp, make_booking):
    make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], now=NOW)
    [confirmation] = outbox(world["coordinator"].email)
    created = confirmation.created_at

    report = mail.send_pending(now=created)  # nothing listens on the port yet
    assert report.sent == 0 and report.retrying >= 1
    db.session.refresh(confirmation)
    assert confirmation.status == "pending" and confirmation.attempts == 1
    assert "refused" in confirmation.last_error.lower() or "connect" in confirmation.last_error.lower()

    smtp.start()
    mail.send_pending(now=created + timedelta(seconds=30))  # backing off: not due again yet
    db.session.refresh(confirmation)
    assert confirmation.attempts == 1 and smtp.inbox.to(world["coordinator"].email) == []
    assert mail.send_pending(now=created + mail.RETRY_SCHEDULE[1]).sent >= 1
    db.session.refresh(confirmation)
    assert confirmation.status == "sent" and confirmation.attempts == 2 and confirmation.last_error is None
    [received] = smtp.inbox.to(world["coordinator"].email)
    assert next(received.iter_attachments()).get_content().startswith(b"%PDF")


def test_a_message_is_given_up_after_the_last_attempt(app, smtp):
    from app.services.base import unit_of_work
    with unit_of_work():
        message = mail.queue_email("someone@example.se", "Hej", "Text", now=NOW)
    for wait in mail.RETRY_SCHEDULE:
        mail.send_pending(now=NOW + wait)
    db.session.refresh(message)
    assert message.status == "failed" and message.attempts == mail.MAX_ATTEMPTS
    smtp.start()
    mail.send_pending(now=NOW + timedelta(days=30))
    assert smtp.inbox.messages == []


def test_an_unknown_mailbox_fails_at_once_and_others_still_go(app, smtp):
    from app.services.base import unit_of_work
    smtp.start()
    with unit_of_work():
        unknown = mail.queue_email("nobody@example.se", "Hej", "Text", now=NOW)
        known = mail.queue_email("somebody@example.se", "Hej", "Text", now=NOW)
    report = mail.send_pending(now=NOW)
    db.session.refresh(unknown)
    db.session.refresh(known)
    assert (report.failed, report.sent) == (1, 1)
    assert unknown.status == "failed" and unknown.attempts == 1 and "550" in unknown.last_error
    assert known.status == "sent" and [m["To"] for m in smtp.inbox.messages] == ["somebody@example.se"]


def test_texts_follow_the_recipients_language(world, smtp, make_booking):
    accounts.set_locale(world["coordinator"].id, "en")
    smtp.start()
    booking = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], now=NOW)
    mail.send_pending(now=NOW + timedelta(minutes=1))
    [english] = smtp.inbox.to(world["coordinator"].email)
    body = english.get_body(("plain",)).get_content()
    assert english["Subject"].startswith(f"Booking confirmation {booking.contract.number}")
    assert body.startswith(f"Hello {world['coordinator'].name},")
    assert "SEK 2,000" in body and f"June {YEAR}" in body and "Bokning" not in body
    [swedish] = smtp.inbox.to(world["host"].email)[-1:]
    assert swedish["Subject"].startswith("Ny bokning") and f"21 juni {YEAR}" in swedish["Subject"]
    assert swedish.get_content().startswith(f"Hej {world['host'].name}!")


def test_development_writes_eml_files(world, app, make_booking):
    app.config["MAIL_SERVER"] = ""
    booking = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], now=NOW)
    report = mail.send_pending(now=NOW + timedelta(minutes=1))
    files = sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    assert report.sent == len(files) >= 2
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    [confirmation] = [m for m in parsed if m["To"] == world["coordinator"].email]
    assert next(confirmation.iter_attachments()).get_filename() == f"{booking.contract.number}.pdf"


def test_nothing_is_queued_when_the_booking_fails(world, make_booking):
    make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], now=NOW)
    before = len(outbox())
    with pytest.raises(Conflict):
        # the same beds again: a conflict, rolled back
        make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], now=NOW)
    assert len(outbox()) == before


def test_card_bookings_are_confirmed_by_mail_only_when_confirmed(world, make_booking):
    booking = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], payment_method="card", now=NOW)
    assert outbox(world["coordinator"].email) == []
    from app.services import events
    from app.services.base import unit_of_work
    with unit_of_work():
        paid = db.session.get(type(booking), booking.id)
        paid.status, paid.confirmed_at = "confirmed", NOW
        events.emit(events.BOOKING_CONFIRMED, booking=paid, now=NOW)
        events.emit(events.BOOKING_CONFIRMED, booking=paid, now=NOW)  # a repeated event sends nothing more
    [confirmation] = outbox(world["coordinator"].email)
    assert confirmation.attachment_name == f"{booking.contract.number}.pdf"
    assert confirmation.attachment is None  # rendered when sent, not inside the booking's transaction


def test_cancellations_reach_the_other_party(world, make_booking):
    coordinator, host = world["coordinator"], world["host"]
    guest_cancelled = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:1], now=NOW)
    cancellations.cancel_by_guest(Actor(coordinator.id, "coordinator"), guest_cancelled.id, now=NOW)
    assert any(e.subject.startswith("Avbokning:") for e in outbox(host.email))
    assert any("Fakturan krediteras" in e.body_text for e in outbox(coordinator.email))  # an unpaid invoice
    host_cancelled = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][1:2], now=NOW)
    cancellations.cancel_by_host(Actor(host.id, "host"), host_cancelled.id, "Vattenskada", now=NOW)
    [breach] = [e for e in outbox(coordinator.email) if e.subject.startswith("Värden har avbokat")]
    assert "Vattenskada" in breach.body_text and "1\u00a0000 kr" in breach.body_text


def test_vetting_decisions_and_flag_outcomes(world, make_host, admin_actor):
    pending = make_host(approved=False)
    vetting.decide(admin_actor, pending.id, "reject", "Adressen stämmer inte.")
    [rejection] = outbox(pending.email)
    assert "inte godkänts" in rejection.subject and "Adressen stämmer inte." in rejection.body_text
    coordinator = world["coordinator"]
    flag = flags.create_flag(Actor(coordinator.id, "coordinator"), host_id=world["host"].id,
                             category="overcharging", description="Extra avgift vid ankomst.")
    flags.resolve_flag(admin_actor, flag.id, "upheld", "Styrkt med kvitto från gästen.")
    [to_reporter] = outbox(coordinator.email)
    assert "prövats" in to_reporter.subject and "bifallen" in to_reporter.body_text
    assert "Styrkt med kvitto från gästen." in to_reporter.body_text
    assert any("En anmälan mot dig" in e.subject for e in outbox(world["host"].email))


def test_hold_reminder_is_sent_once(world, make_booking):
    hold = make_booking(delegation=world["delegation"], bed_ids=world["bed_ids"][:2], payment_method="card", now=NOW)
    assert jobs.remind_expiring_holds(now=hold.expires_at - timedelta(minutes=10)) == []
    assert jobs.remind_expiring_holds(now=hold.expires_at - timedelta(minutes=4)) == [hold.id]
    assert jobs.remind_expiring_holds(now=hold.expires_at - timedelta(minutes=2)) == []
    [reminder] = outbox(world["coordinator"].email)
    assert reminder.subject.startswith("Er reservation går ut")
