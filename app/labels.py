"""Every enum's words, in one place: the pages, the PDF, CSV exports, mail and service messages ask here.

A label is a Swedish msgid (marked with N_ for extraction) translated when it is shown, so one
table serves both languages. Where an audience is told a status in its own words on purpose (the
coordinator reads "Avbokad av er" where everyone else reads "Avbokad av gästen"), the table holds
that audience's wording beside the common one and `label(..., audience=...)` picks it; nowhere
else spells a status out. `badge_class` gives the badge colour the pages show with it.

Kinds are named after their column: booking_status, bed_night_state, payment_method,
vetting_status, vetting_decision, payout_status, refund_status, payment_status (a Stripe
attempt), webhook_status, waitlist_status, allocation_status, allocation_round_status, bed_kind,
flag_category, flag_status, flag_source, role, locale, amendment_kind, flag_appeal_status,
invoice_payment_source.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple

from flask import has_app_context
from flask_babel import force_locale, lazy_gettext
from flask_babel import gettext as _

from app.i18n import N_

OK, WARN, BAD, PLAIN = "badge-ok", "badge-warn", "badge-bad", ""


class Words(NamedTuple):
    text: str
    badge: str = PLAIN
    by_audience: dict[str, str] | None = None


LABELS: dict[str, dict[str, Words]] = {
    "booking_status": {
        "awaiting_payment": Words(N_("Väntar på betalning"), WARN),
        "confirmed": Words(N_("Bekräftad"), OK),
        "cancelled_by_guest": Words(N_("Avbokad av gästen"), PLAIN, {"coordinator": N_("Avbokad av er")}),
        "cancelled_by_host": Words(N_("Avbokad av värden"), BAD,
                                   {"coordinator": N_("Avbokad av värden – avtalsbrott")}),
        "expired": Words(N_("Förfallen"), PLAIN),
        "completed": Words(N_("Genomförd"), OK),
        "offered": Words(N_("Ersättningsboende erbjudet"), WARN),
    },
    "order_status": {  # stored: what the order was when formed; shown: what its bookings make it now
        "awaiting_payment": Words(N_("Väntar på betalning"), WARN),
        "confirmed": Words(N_("Bekräftad"), OK),
        "partly_cancelled": Words(N_("Delvis avbokad"), WARN),
        "cancelled": Words(N_("Avbokad"), PLAIN),
    },
    "bed_night_state": {
        "held": Words(N_("Reserverad"), WARN),
        "booked": Words(N_("Bokad"), OK),
        "host_block": Words(N_("Spärrad"), PLAIN),
        "host_cancelled": Words(N_("Låst (avbokad av värden)"), BAD, {"host": N_("Låst (avbokad av dig)")}),
        "released": Words(N_("Släppt"), PLAIN),
    },
    "payment_method": {
        "invoice": Words(N_("Faktura")),
        "card": Words(N_("Kort")),
    },
    "vetting_status": {
        "pending": Words(N_("Väntar på granskning"), WARN),
        "approved": Words(N_("Godkänd"), OK),
        "rejected": Words(N_("Avslagen"), BAD),
        "suspended": Words(N_("Avstängd"), BAD),
    },
    "vetting_decision": {
        "approve": Words(N_("Godkänn")),
        "reject": Words(N_("Avslå")),
        "suspend": Words(N_("Stäng av")),
        "reinstate": Words(N_("Återinsätt")),
    },
    "amendment_kind": {
        "guest_cancellation": Words(N_("Avbokade bäddnätter enligt avtalets villkor")),
        "arrival_report": Words(N_("Bäddnätter anmälda vid ankomst som saknade eller inte som beskrivet")),
    },
    "payout_status": {
        "scheduled": Words(N_("Planerad"), WARN),
        "paid": Words(N_("Betald"), OK),
        "void": Words(N_("Makulerad"), PLAIN),
    },
    "refund_status": {
        "pending": Words(N_("Köad"), WARN),
        "sending": Words(N_("Skickas"), WARN),
        "succeeded": Words(N_("Återbetald"), OK),
        "failed": Words(N_("Misslyckades – försöks igen"), BAD),
        "rejected": Words(N_("Stoppad: för stort belopp"), BAD),
    },
    "payment_status": {
        "created": Words(N_("Påbörjad"), WARN),
        "requires_payment_method": Words(N_("Nekad"), BAD),
        "failed": Words(N_("Nekad"), BAD),
        "requires_confirmation": Words(N_("Väntar"), WARN),
        "requires_action": Words(N_("Väntar på 3-D Secure"), WARN),
        "processing": Words(N_("Behandlas"), WARN),
        "requires_capture": Words(N_("Reserverad"), WARN),
        "succeeded": Words(N_("Betald"), OK),
        "canceled": Words(N_("Avbruten"), BAD),
    },
    "webhook_status": {
        "processed": Words(N_("Behandlad"), OK),
        "failed": Words(N_("Misslyckades – försöks igen"), BAD),
    },
    "waitlist_status": {
        "waiting": Words(N_("Väntande"), WARN),
        "offered": Words(N_("Erbjuden"), OK),
        "booked": Words(N_("Bokad"), OK),
        "expired": Words(N_("Förfallen"), PLAIN),
        "cancelled": Words(N_("Avbruten"), PLAIN),
    },
    "allocation_status": {  # an allocation request's status
        "submitted": Words(N_("Inskickad"), WARN),
        "withdrawn": Words(N_("Tillbakadragen"), PLAIN),
        "allocated": Words(N_("Fick bäddar"), OK),
        "unallocated": Words(N_("Ingen plats – i väntelistan"), BAD),
    },
    "allocation_round_status": {  # a round as the public sees it (allocation.round_status)
        "scheduled": Words(N_("Ansökan har inte öppnat"), PLAIN),
        "open": Words(N_("Ansökan är öppen"), OK),
        "closed": Words(N_("Ansökan är stängd, dragningen väntar"), WARN),
        "drawn": Words(N_("Dragen"), OK),
    },
    "bed_kind": {
        "single": Words(N_("Enkelsäng")),
        "double_half": Words(N_("Halva dubbelsängen")),
        "bunk": Words(N_("Våningssäng")),
        "sofa": Words(N_("Bäddsoffa")),
    },
    "flag_category": {
        "overcharging": Words(N_("Överpris")),
        "double_selling": Words(N_("Dubbelförsäljning")),
        "cancellation": Words(N_("Avbokning")),
        "misrepresentation": Words(N_("Vilseledande uppgifter")),
        "other": Words(N_("Annat")),
    },
    "flag_status": {
        "open": Words(N_("Öppen"), WARN),
        "upheld": Words(N_("Fastställd"), BAD),
        "dismissed": Words(N_("Avskriven"), PLAIN),
    },
    "flag_appeal_status": {
        "open": Words(N_("Överklagad, prövas"), WARN),
        "upheld": Words(N_("Beslutet står fast"), PLAIN),
        "overturned": Words(N_("Beslutet upphävt"), OK),
    },
    "invoice_payment_source": {
        "manual": Words(N_("Registrerad för hand")),
        "bgmax": Words(N_("Bankgirots fil (BgMax)")),
    },
    "flag_source": {
        "coordinator": Words(N_("Samordnare")),
        "admin": Words(N_("Administratör")),
        "system": Words(N_("Systemet")),
    },
    "role": {
        "host": Words(N_("Värd")),
        "coordinator": Words(N_("Samordnare")),
        "admin": Words(N_("Administratör")),
    },
    "locale": {
        "sv": Words(N_("Svenska")),
        "en": Words(N_("Engelska")),
    },
}


def msgid(kind: str, value: str, audience: str | None = None) -> str | None:
    """The untranslated Swedish words for a value (the audience's own when it has some); None when unknown."""
    words = LABELS[kind].get(value)
    if words is None:
        return None
    return (words.by_audience or {}).get(audience or "", words.text)


def label(kind: str, value: str | None, audience: str | None = None, locale: str | None = None) -> str:
    """A value of an enum in words, capitalised as a badge or a table cell shows it.

    `locale` forces a language (the bilingual contract PDF); otherwise the current one. An unknown
    value is shown as itself rather than hidden.
    """
    text = msgid(kind, value, audience) if value is not None else None
    if text is None:
        return "–" if value is None else value
    if not has_app_context():
        return text
    with force_locale(locale) if locale else nullcontext():
        return _(text)


def in_sentence(kind: str, value: str | None, audience: str | None = None, locale: str | None = None) -> str:
    """The same words inside a sentence ("Bokningen är väntar på betalning" -> lower-case first letter)."""
    text = label(kind, value, audience, locale)
    return text[:1].lower() + text[1:]


def badge_class(kind: str, value: str | None) -> str:
    """The badge colour of a value (badge-ok, badge-warn, badge-bad, or none)."""
    words = LABELS[kind].get(value or "")
    return words.badge if words else PLAIN


def lazy_label(kind: str, value: str, audience: str | None = None):  # noqa: ANN201 (flask_babel's LazyString)
    """The words translated only when shown: for form classes built at import time."""
    return lazy_gettext(msgid(kind, value, audience) or value)


def lazy_choices(kind: str) -> list[tuple[str, object]]:
    """(value, words) for a select field, in the table's order, translated when the form is shown."""
    return [(value, lazy_label(kind, value)) for value in LABELS[kind]]
