"""E-mail notifications: domain event handlers that queue mail in the outbox, in the recipient's language.

Each handler runs inside the unit of work that emitted the event and only adds outbox rows, so a
message is sent exactly when its cause was committed. Texts are Swedish msgids translated with
the recipient's `locale` (Flask-Babel's force_locale); money and dates are formatted for it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import force_locale, format_date, format_datetime
from flask_babel import gettext as _
from sqlalchemy import distinct, func, select

from app.extensions import db
from app.i18n import kr
from app.labels import in_sentence
from app.models import (
    AllocationRequest,
    Amendment,
    BedNight,
    Booking,
    Contract,
    Delegation,
    Flag,
    HostProfile,
    Listing,
    Order,
    OutboxEmail,
    Season,
    User,
    WaitlistEntry,
)
from app.services import events, mail
from app.services.base import now_or
from app.services.links import external_url
from app.services.offers import is_offer
from app.services.vetting import suspension_impact

if TYPE_CHECKING:
    from app.services.itineraries import Itinerary, Stay

HOLD_REMINDED = "booking.hold_reminder_queued"


# ---------------------------------------------------------------------------------------------
# Formatting in the recipient's language
# ---------------------------------------------------------------------------------------------


def _day(value: date) -> str:
    return format_date(value, "d MMMM y")


def _moment(value: datetime) -> str:
    return format_datetime(value, "d MMMM y HH:mm")


def _url(endpoint: str, **values) -> str | None:
    """An absolute link on BASE_URL (never the request's Host)."""
    return external_url(endpoint, **values)


def _queue(user: User, build: Callable[[], tuple[str, list[str | None]]], *, now: datetime,
           contract_number: str | None = None) -> OutboxEmail:
    """Build subject and paragraphs in the user's language and put them in the outbox."""
    with force_locale(user.locale or "sv"):
        subject, paragraphs = build()
        greeting = _("Hej %(name)s!", name=user.name)
        signature = _("Vänliga hälsningar\nSängplats")
    body = "\n\n".join([greeting, *[p for p in paragraphs if p], signature]) + "\n"
    return mail.queue_email(user.email, subject, body, contract_number=contract_number, now=now)


def _stay_facts(booking: Booking) -> dict:
    """What the mails say about a booking, read once per event (the locale-free part)."""
    return _stays_facts([booking])[booking.id]


def _stays_facts(bookings: list[Booking]) -> dict[int, dict]:
    """`_stay_facts` of several bookings (an order's) in one query whatever their number; `contract` is the
    contract's (number, sha256) or None."""
    # The beds counted in the database: a delegation's booking has dozens of lines, and loading them as objects
    # costs more than the rest of the mail.
    beds = (select(BedNight.booking_id, func.count(distinct(BedNight.bed_id)).label("beds"))
            .where(BedNight.booking_id.in_([booking.id for booking in bookings]))
            .group_by(BedNight.booking_id).subquery())
    rows = db.session.execute(
        select(Booking.id, Listing.title, Listing.address, Listing.postal_code, Listing.walking_minutes,
               Delegation.name, Contract.number, Contract.sha256, beds.c.beds)
        .join(Listing, Listing.id == Booking.listing_id).join(Delegation, Delegation.id == Booking.delegation_id)
        .outerjoin(Contract, Contract.booking_id == Booking.id).outerjoin(beds, beds.c.booking_id == Booking.id)
        .where(Booking.id.in_([booking.id for booking in bookings]))).all()
    found = {row.id: row for row in rows}
    facts = {}
    for booking in bookings:
        row = found[booking.id]
        contract = ContractRef(row.number, row.sha256) if row.number is not None else None
        facts[booking.id] = {
            "title": row.title, "address": f"{row.address}, {row.postal_code} Visby",
            "walking": row.walking_minutes, "delegation": row.name,
            "nights": (booking.check_out - booking.check_in).days, "beds": row.beds or 0,
            "number": contract.number if contract else "", "contract": contract,
        }
    return facts


@dataclass(frozen=True)
class ContractRef:
    """What a mail says of a contract: its number (the PDF attached by it) and its SHA-256."""

    number: str
    sha256: str


def _stay(booking: Booking, facts: dict | None = None) -> dict:
    """The booking's facts with dates and money in the current (recipient's) locale."""
    facts = facts if facts is not None else _stay_facts(booking)
    return {**facts, "check_in": _day(booking.check_in), "check_out": _day(booking.check_out),
            "total": kr(booking.total_ore)}


def _stay_line(s: dict) -> str:
    return _("Boende: %(title)s, %(address)s (%(walking)s minuters promenad till Almedalen).\n"
             "Vistelse: %(check_in)s – %(check_out)s, %(nights)s nätter, %(beds)s bäddar.",
             title=s["title"], address=s["address"], walking=s["walking"], check_in=s["check_in"],
             check_out=s["check_out"], nights=s["nights"], beds=s["beds"])


def _user(user_id: int | None) -> User | None:
    return db.session.get(User, user_id) if user_id is not None else None


# ---------------------------------------------------------------------------------------------
# Bookings
# ---------------------------------------------------------------------------------------------


def _confirmation_queued(user: User, contract: ContractRef) -> bool:
    return db.session.scalar(select(OutboxEmail.id).where(
        OutboxEmail.to_address == user.email,
        OutboxEmail.attachment_name == f"{contract.number}{mail.CONTRACT_SUFFIX}").limit(1)
    ) is not None


def _confirm_to_coordinator(booking: Booking, now: datetime, facts: dict, *, new_contract: bool = False) -> None:
    """The booking confirmation with the contract PDF, once per contract."""
    coordinator = _user(booking.coordinator_id)
    contract = facts["contract"]
    if coordinator is None or contract is None:
        return
    if not new_contract and _confirmation_queued(coordinator, contract):
        return

    def build():
        s = _stay(booking, facts)
        if booking.payment_method == "invoice":
            payment = _("Betalning: faktura %(invoice)s, %(total)s, förfaller %(due)s.",
                        invoice=booking.invoice_number or "", total=s["total"],
                        due=_day(booking.invoice_due_on) if booking.invoice_due_on else "–")
        else:
            payment = _("Betalning: %(total)s, betalt med kort.", total=s["total"])
        verify = _url("public.verify_contract", number=contract.number, sha256=contract.sha256)
        return _("Bokningsbekräftelse %(number)s: %(title)s", number=contract.number, title=s["title"]), [
            _("Bokningen för %(delegation)s är bekräftad. Avtalet %(number)s är bindande för er och värden; "
              "det finns bifogat som PDF.", delegation=s["delegation"], number=contract.number),
            _stay_line(s),
            payment,
            _("Avtalets kontrollsumma (SHA-256): %(sha)s", sha=contract.sha256),
            _("Vem som helst kan kontrollera avtalet här: %(url)s", url=verify) if verify else None,
            _("Avbokning: kostnadsfritt till och med %(free)s, därefter återbetalas %(pct)s %%.",
              free=_day(booking.season.free_cancellation_until), pct=booking.season.late_cancellation_refund_pct),
        ]

    _queue(coordinator, build, now=now, contract_number=contract.number)


def _notify_host_of_booking(booking: Booking, now: datetime, facts: dict) -> None:
    host = _user(booking.host_id)

    def build():
        s = _stay(booking, facts)
        return _("Ny bokning: %(title)s, %(check_in)s – %(check_out)s", title=s["title"],
                 check_in=s["check_in"], check_out=s["check_out"]), [
            _("%(delegation)s har bokat %(beds)s bäddar hos dig. Avtal %(number)s, totalt %(total)s.",
              delegation=s["delegation"], beds=s["beds"], number=s["number"], total=s["total"]),
            _stay_line(s),
            _("Avtalet är bindande. Avbokar du blir gästen återbetald i sin helhet, bäddarna spärras för "
              "vistelsen och du får en prickning."),
        ]

    if host is not None:
        _queue(host, build, now=now)


def on_booking_created(booking: Booking, now: datetime, **_ignored) -> None:
    """Invoice bookings are confirmed at once: confirmation to the coordinator, notice to the host."""
    if booking.status == "confirmed":
        facts = _stay_facts(booking)
        # The contract was formed in this very transaction, so no confirmation can be queued for it yet.
        _confirm_to_coordinator(booking, now, facts, new_contract=True)
        _notify_host_of_booking(booking, now, facts)


def on_booking_confirmed(booking: Booking, now: datetime, **_ignored) -> None:
    """A paid card hold or an accepted waiting-list offer is now a booking."""
    facts = _stay_facts(booking)
    _confirm_to_coordinator(booking, now, facts)
    _notify_host_of_booking(booking, now, facts)


def on_cancelled_by_guest(booking: Booking, now: datetime, refund_ore: int | None = None,
                          credit_ore: int | None = None, **_ignored) -> None:
    """The host hears of every cancellation of a booking they were told about; the coordinator gets a receipt
    of this cancellation's refund or credit (after partial cancellations, the booking's totals are more)."""
    if booking.confirmed_at is None:
        return  # an unpaid hold or an unaccepted offer: no one was told of a booking
    s_refund = booking.refund_ore if refund_ore is None else refund_ore
    s_credit = (booking.invoice_credited_ore or 0) if credit_ore is None else credit_ore
    host, coordinator = _user(booking.host_id), _user(booking.coordinator_id)

    def build_host():
        s = _stay(booking)
        return _("Avbokning: %(title)s, %(check_in)s – %(check_out)s", title=s["title"], check_in=s["check_in"],
                 check_out=s["check_out"]), [
            _("%(delegation)s har avbokat sin bokning (avtal %(number)s) enligt avtalets villkor.",
              delegation=s["delegation"], number=s["number"]),
            _stay_line(s),
            _("Bäddarna är lediga igen och kan bokas av andra."),
        ]

    def build_coordinator():
        s = _stay(booking)
        return _("Avbokningen är registrerad: %(title)s", title=s["title"]), [
            _("Ni har avbokat bokningen med avtal %(number)s.", number=s["number"]),
            _stay_line(s),
            (_("Fakturan krediteras enligt avtalet med %(credit)s; resten ska betalas.", credit=kr(s_credit))
             if booking.payment_method == "invoice" else
             _("Återbetalning enligt avtalet: %(refund)s.", refund=kr(s_refund))),
        ]

    if host is not None:
        _queue(host, build_host, now=now)
    if coordinator is not None:
        _queue(coordinator, build_coordinator, now=now)


def _amended_lines(amendment: Amendment) -> str:
    """The cancelled bed-nights of an amendment, one per line, in the current (recipient's) locale."""
    return "\n".join(_("%(night)s: %(bed)s, %(price)s", night=_day(date.fromisoformat(line["night"])),
                        bed=line.get("bed") or line["bed_id"], price=kr(line["price_ore"]))
                      for line in amendment.lines)


def on_lines_cancelled(booking: Booking, amendment: Amendment, now: datetime, **_ignored) -> None:
    """Some bed-nights were cancelled and the booking stands: the host and the coordinator get the amendment."""
    host, coordinator = _user(booking.host_id), _user(booking.coordinator_id)

    def build_host():
        s = _stay(booking)
        return _("Ändring %(number)s: %(title)s", number=amendment.number, title=s["title"]), [
            _("%(delegation)s har avbokat %(count)s bäddnätter av sin bokning (avtal %(contract)s) enligt avtalets "
              "villkor. Resten av bokningen gäller som förut.", delegation=s["delegation"],
              count=len(amendment.lines), contract=s["number"]),
            _amended_lines(amendment),
            _("Bäddnätterna är lediga igen och kan bokas av andra."),
        ]

    def build_coordinator():
        s = _stay(booking)
        return _("Ändring %(number)s är registrerad: %(title)s", number=amendment.number, title=s["title"]), [
            _("Ni har avbokat %(count)s bäddnätter av bokningen med avtal %(contract)s. Resten av bokningen "
              "gäller som förut.", count=len(amendment.lines), contract=s["number"]),
            _amended_lines(amendment),
            (_("Fakturan krediteras enligt avtalet med %(credit)s.", credit=kr(amendment.invoice_credit_ore))
             if booking.payment_method == "invoice" else
             _("Återbetalning enligt avtalet: %(refund)s.", refund=kr(amendment.refund_ore))),
        ]

    if host is not None:
        _queue(host, build_host, now=now)
    if coordinator is not None:
        _queue(coordinator, build_coordinator, now=now)


def on_cancelled_by_host(booking: Booking, now: datetime, **_ignored) -> None:
    """The coordinator learns of the breach and the refund; the host gets the record of it."""
    host, coordinator = _user(booking.host_id), _user(booking.coordinator_id)
    reason = booking.cancel_reason or "–"

    def build_coordinator():
        s = _stay(booking)
        return _("Värden har avbokat: %(title)s", title=s["title"]), [
            _("Värden har avbokat er bokning (avtal %(number)s). Det är ett avtalsbrott: fakturan på %(credit)s "
              "krediteras i sin helhet och värden får en prickning.", number=s["number"],
              credit=kr(booking.invoice_credited_ore))
            if booking.invoice_credited_ore else
            _("Värden har avbokat er bokning (avtal %(number)s). Det är ett avtalsbrott: ni får tillbaka "
              "%(refund)s och värden får en prickning.", number=s["number"], refund=kr(booking.refund_ore)),
            _stay_line(s),
            _("Värdens motivering: %(reason)s", reason=reason),
            _("Sök nya bäddar på Sängplats, eller ställ er i väntelistan om det är fullt."),
        ]

    def build_host():
        s = _stay(booking)
        return _("Du har avbokat: %(title)s", title=s["title"]), [
            _("Du har avbokat bokningen med avtal %(number)s. Gästens faktura på %(credit)s krediteras, bäddarna "
              "är spärrade för vistelsen och du har fått en prickning.", number=s["number"],
              credit=kr(booking.invoice_credited_ore))
            if booking.invoice_credited_ore else
            _("Du har avbokat bokningen med avtal %(number)s. Gästen återbetalas %(refund)s, bäddarna är spärrade "
              "för vistelsen och du har fått en prickning.", number=s["number"], refund=kr(booking.refund_ore)),
            _stay_line(s),
        ]

    if coordinator is not None:
        _queue(coordinator, build_coordinator, now=now)
    if host is not None:
        _queue(host, build_host, now=now)


def on_booking_expired(booking: Booking, now: datetime, **_ignored) -> None:
    """An unpaid hold or an unaccepted offer ran out: the coordinator is told the beds are gone."""
    coordinator = _user(booking.coordinator_id)
    offer = is_offer(booking)

    def build():
        s = _stay(booking)
        if booking.rehoused_from_id is not None and booking.contract is None:
            return _("Erbjudandet om ersättningsboende har gått ut"), [
                _("Erbjudandet om %(beds)s bäddar i %(title)s antogs inte inom 48 timmar. Bäddarna är släppta; "
                  "återbetalningen för den avbokade bokningen gäller som förut.", beds=s["beds"], title=s["title"]),
                _stay_line(s),
            ]
        if offer:
            return _("Erbjudandet från väntelistan har gått ut"), [
                _("Erbjudandet om %(beds)s bäddar i %(title)s accepterades inte i tid. Bäddarna har gått vidare "
                  "till nästa på väntelistan.", beds=s["beds"], title=s["title"]),
                _stay_line(s),
            ]
        return _("Reservationen har gått ut: %(title)s", title=s["title"]), [
            _("Reservationen betalades inte i tid och har gått ut. Bäddarna är släppta; ingen bokning "
              "gjordes och inget avtal gäller."),
            _stay_line(s),
        ]

    if coordinator is not None and booking.expires_at is not None and booking.expires_at <= now:
        _queue(coordinator, build, now=now)


def queue_hold_reminder(booking: Booking, *, now: datetime) -> bool:
    """Queue the reminder that a hold or offer expires soon (the job `jobs.remind_expiring_holds` picks them)."""
    coordinator = _user(booking.coordinator_id)
    if coordinator is None:
        return False
    _queue(coordinator, _reminder_builder(booking), now=now)
    return True


def _reminder_builder(booking: Booking):
    def build():
        s = _stay(booking)
        assert booking.expires_at is not None  # a hold or an offer always has an expiry  # nosec B101
        when = _moment(booking.expires_at)
        if is_offer(booking):
            return _("Erbjudandet från väntelistan går ut %(when)s", when=when), [
                _("Bäddarna i %(title)s är reserverade för %(delegation)s till %(when)s. Acceptera erbjudandet "
                  "under Väntelista innan dess, annars går de vidare till nästa på listan.",
                  title=s["title"], delegation=s["delegation"], when=when),
                _stay_line(s),
            ]
        return _("Er reservation går ut %(when)s", when=when), [
            _("Reservationen av %(beds)s bäddar i %(title)s går ut %(when)s. Betala innan dess, annars släpps "
              "bäddarna.", beds=s["beds"], title=s["title"], when=when),
            _stay_line(s),
        ]

    return build


def on_waitlist_offered(entry, booking: Booking, now: datetime, **_ignored) -> None:
    """A waiting delegation is offered freed beds, reserved for 48 hours."""
    coordinator = _user(booking.coordinator_id)

    def build():
        s = _stay(booking)
        link = _url("waitlist.index")
        assert booking.expires_at is not None  # an offer always has an expiry  # nosec B101
        return _("Lediga bäddar till er från väntelistan: %(title)s", title=s["title"]), [
            _("%(beds)s bäddar har blivit lediga i %(title)s. De är reserverade för %(delegation)s till "
              "%(expires)s.", beds=s["beds"], title=s["title"], delegation=s["delegation"],
              expires=_moment(booking.expires_at)),
            _stay_line(s),
            _("Pris: %(total)s, betalas mot faktura.", total=s["total"]),
            _("Acceptera erbjudandet under Väntelista på Sängplats; då bildas det bindande avtalet. Annars går "
              "bäddarna vidare till nästa på listan."),
            link,
        ]

    if coordinator is not None:
        _queue(coordinator, build, now=now)


def on_rehousing_offered(breached: Booking, booking_ids: list[int], expires_at: datetime, now: datetime,
                         **_ignored) -> None:
    """The coordinator of a breached booking is offered comparable beds, held for 48 hours, with the link to the
    offer's page (accept with its contract, or decline)."""
    coordinator = _user(breached.coordinator_id)
    parts = [db.session.get_one(Booking, booking_id) for booking_id in booking_ids]

    def build():
        breached_facts = _stay(breached)
        paragraphs: list[str | None] = [
            _("Värden avbokade er bokning (avtal %(number)s). Sängplats har reserverat jämförbara bäddar åt "
              "%(delegation)s till %(expires)s, till högst samma pris per bäddnatt som i det brutna avtalet; "
              "en eventuell prisskillnad betalas av värden som avbokade.", number=breached_facts["number"],
              delegation=breached_facts["delegation"], expires=_moment(expires_at)),
        ]
        for part in parts:
            s = _stay(part)
            paragraphs += [_stay_line(s), _("Pris: %(total)s.", total=s["total"])]
        paragraphs += [
            _("Ta emot erbjudandet och godkänn dess avtal, eller tacka nej, på sidan för erbjudandet:"),
            _url("coordinator.rehousing_offer", booking_id=parts[0].id),
        ]
        return _("Ersättningsboende reserverat åt er: %(delegation)s", delegation=_stay(breached)["delegation"]), \
            paragraphs

    if coordinator is not None:
        _queue(coordinator, build, now=now)


def on_flag_created(flag: Flag, now: datetime, **_ignored) -> None:
    """The host is told of every flag about them and may answer within 7 days."""
    host = _user(flag.host_id)

    def build():
        return _("En anmälan har gjorts mot dig (%(category)s)", category=_category(flag.category)), [
            _("Det har kommit en anmälan mot dig på Sängplats (%(category)s):", category=_category(flag.category)),
            flag.description,
            _("Du kan svara inom 7 dagar under Anmälningar på Sängplats. Administratörerna läser ditt svar innan de "
              "prövar anmälan."),
            _url("host.flags_page"),
        ]

    if host is not None:
        _queue(host, build, now=now)


def on_flag_appeal_decided(flag: Flag, appeal, now: datetime, **_ignored) -> None:
    """The host hears the outcome of their appeal, with the statement of reasons."""
    host = _user(flag.host_id)

    def build():
        if appeal.status == "overturned":
            outcome = _("Beslutet är upphävt: anmälan är avskriven och prickningen borttagen.")
        else:
            outcome = _("Beslutet står fast.")
        return _("Ditt överklagande har prövats"), [
            outcome, _("Motivering: %(note)s", note=appeal.note), _url("host.flags_page")]

    if host is not None:
        _queue(host, build, now=now)


def on_refund_queued(booking: Booking, reason: str, amount_ore: int, now: datetime, **_ignored) -> None:
    """Tell the coordinator that a card payment is paid back, and why (`reason` is a Swedish msgid)."""
    coordinator = _user(booking.coordinator_id)

    def build():
        return _("Sängplats: återbetalning för bokning %(id)s", id=booking.id), [
            _(reason),
            _("Belopp: %(amount)s.", amount=kr(amount_ore)),
            _("Bokning: %(id)s", id=booking.id),
        ]

    if coordinator is not None:
        _queue(coordinator, build, now=now)


def queue_password_reset(user: User, link: str, *, now: datetime | None = None) -> None:
    """Send a password reset link (valid one hour) in the user's language."""
    def build():
        return _("Återställ ditt lösenord på Sängplats"), [
            _("Någon, förhoppningsvis du, bad om att få byta lösenord för ditt konto. Öppna länken inom en timme "
              "för att välja ett nytt lösenord:"),
            link,
            _("Om du inte bad om det kan du strunta i det här meddelandet; lösenordet är oförändrat."),
        ]

    _queue(user, build, now=now_or(now))


# ---------------------------------------------------------------------------------------------
# Vetting and flags
# ---------------------------------------------------------------------------------------------


def on_host_decided(profile: HostProfile, decision: str, reason: str, now: datetime, **_ignored) -> None:
    """The host hears the outcome of vetting, a suspension or a reinstatement, with the reason."""
    host = _user(profile.user_id)

    def build():
        why = _("Motivering: %(reason)s", reason=reason) if reason else None
        if decision == "approve":
            return _("Du är godkänd som värd på Sängplats"), [
                _("Dina uppgifter är granskade och godkända. Du kan nu sätta priser och publicera dina boenden."),
                why]
        if decision == "reject":
            return _("Din ansökan som värd har inte godkänts"), [
                _("Vi har granskat dina uppgifter och kan inte godkänna dig som värd."), why,
                _("Du kan rätta uppgifterna och skicka in dem igen.")]
        if decision == "suspend":
            return _("Ditt värdkonto är avstängt"), [
                _("Dina boenden är dolda och du kan inte ta emot nya bokningar. Ingångna avtal gäller fortfarande."),
                why]
        return _("Ditt värdkonto är återställt"), [
            _("Du kan åter ta emot bokningar. Dina publicerade boenden syns igen."), why]

    if host is not None:
        _queue(host, build, now=now)


def on_host_suspended(profile: HostProfile, now: datetime, **_ignored) -> None:
    """A suspended host's confirmed bookings stand: each coordinator hears so, once per booking."""
    for booking, coordinator, _delegation in suspension_impact(profile.user_id, now=now).told:
        facts = _stay_facts(booking)

        def build(booking=booking, facts=facts):
            s = _stay(booking, facts)
            return _("Värden för %(title)s är avstängd — er bokning gäller", title=s["title"]), [
                _("Sängplats har stängt av värden för %(title)s, %(check_in)s – %(check_out)s (avtal %(number)s).",
                  title=s["title"], check_in=s["check_in"], check_out=s["check_out"], number=s["number"]),
                _("Ert avtal gäller oförändrat och bokningen står kvar. Kontakta oss om något inte blir som "
                  "avtalat; avbokar värden får ni hela beloppet tillbaka."),
            ]

        _queue(coordinator, build, now=now)


def _category(category: str) -> str:
    return in_sentence("flag_category", category)


def on_flag_resolved(flag: Flag, now: datetime, **_ignored) -> None:
    """The reporter (if any) and the host learn whether the flag was upheld."""
    reporter, host = _user(flag.reporter_id), _user(flag.host_id)
    profile = db.session.get(HostProfile, flag.host_id)
    host_name = profile.legal_name if profile else (host.name if host else "")

    def outcome():
        if flag.status == "upheld":
            return _("bifallen: värden har fått en prickning")
        return _("avslagen")

    def build_reporter():
        return _("Din anmälan har prövats"), [
            _("Din anmälan av %(host)s (%(category)s) har prövats och är %(outcome)s.", host=host_name,
              category=_category(flag.category), outcome=outcome()),
            _("Kommentar: %(note)s", note=flag.resolution) if flag.resolution else None,
        ]

    def build_host():
        return _("En anmälan mot dig har prövats"), [
            _("En anmälan mot dig (%(category)s) har prövats och är %(outcome)s.",
              category=_category(flag.category), outcome=outcome()),
            _("Motivering (fakta, regel och följd): %(note)s", note=flag.resolution) if flag.resolution else None,
            _("Du kan överklaga beslutet en gång under Anmälningar på Sängplats; en annan administratör prövar "
              "det."),
            _url("host.flags_page"),
        ]

    if reporter is not None and reporter.id != flag.resolved_by_id:
        _queue(reporter, build_reporter, now=now)
    if host is not None:
        _queue(host, build_host, now=now)


# ---------------------------------------------------------------------------------------------
# The allocation draw
# ---------------------------------------------------------------------------------------------


def on_allocation_decided(request: AllocationRequest, order: Order | None, entry: WaitlistEntry | None,
                          place: int | None, now: datetime, **_ignored) -> None:
    """The coordinator hears the draw's answer: the order with its contracts, or the waiting-list place.

    An invoice order's bookings are confirmed at once and each sends its confirmation with the contract as PDF
    (`on_booking_created`); a card order's bookings wait for payment, so each card booking's contract comes here,
    with the time to pay by."""
    coordinator = _user(request.coordinator_id)
    if coordinator is None:
        return
    season = db.session.get_one(Season, request.season_id)
    bookings = list(order.bookings) if order is not None else []
    facts = _stays_facts(bookings) if bookings else {}
    result = _url("fordelning.round_page", year=season.year)

    def build():
        draw = _("Er ansökan %(ref)s fick plats %(rank)s i dragningen.", ref=request.ref, rank=request.rank)
        if order is None:
            return _("Fördelningen %(year)s: ingen plats i dragningen, ni står i väntelistan", year=season.year), [
                draw,
                _("Ingen kombination av lediga bäddar uppfyllde er ansökan när det blev er tur: %(beds)s bäddar "
                  "%(check_in)s – %(check_out)s inom era gränser.", beds=request.beds,
                  check_in=_day(request.check_in), check_out=_day(request.check_out)),
                _("Ni står nu i väntelistan för vistelsen, som nummer %(place)s. Blir bäddar lediga får ni ett "
                  "erbjudande, reserverat i 48 timmar.", place=place or "–"),
                _url("waitlist.index"),
                _("Den vanliga bokningen öppnar %(opens)s för det som finns kvar.",
                  opens=_moment(season.bookings_open_at)),
                _("Hela dragningen, med fröet som vem som helst kan kontrollera: %(url)s", url=result),
            ]
        lines = []
        for booking in bookings:
            s = _stay(booking, facts[booking.id])
            lines.append(_("Avtal %(number)s: %(beds)s bäddar i %(title)s, %(total)s.", number=s["number"],
                           beds=s["beds"], title=s["title"], total=s["total"]))
        if request.payment_method == "card":
            expires = bookings[0].expires_at if bookings else None
            payment = _("Betala med kort senast %(when)s, annars släpps bäddarna. Varje avtal kommer med en länk "
                        "till betalningen i ett eget meddelande.", when=_moment(expires) if expires else "–")
        else:
            payment = _("Bokningarna är bekräftade och betalas mot faktura. Varje bekräftelse kommer med avtalet "
                        "som PDF i ett eget meddelande.")
        return _("Fördelningen %(year)s: ni har fått %(beds)s bäddar", year=season.year, beds=request.beds), [
            draw,
            _("Ni har fått bäddar för %(check_in)s – %(check_out)s. Avtalen ni godkände i förväg är nu bindande "
              "för er och värdarna:", check_in=_day(request.check_in), check_out=_day(request.check_out)),
            "\n".join(lines),
            payment,
            _("Hela dragningen, med fröet som vem som helst kan kontrollera: %(url)s", url=result),
        ]

    _queue(coordinator, build, now=now)
    for booking in bookings:
        if booking.payment_method == "card" and facts[booking.id]["contract"] is not None:
            _queue(coordinator, _allocated_card_builder(booking, facts[booking.id]), now=now,
                   contract_number=facts[booking.id]["number"])


def _allocated_card_builder(booking: Booking, facts: dict):
    def build():
        s = _stay(booking, facts)
        assert booking.expires_at is not None  # a card hold always has an expiry  # nosec B101
        return _("Avtal %(number)s från fördelningen: betala senast %(when)s", number=s["number"],
                 when=_moment(booking.expires_at)), [
            _("Avtalet %(number)s för %(delegation)s är bildat i fördelningen och finns bifogat som PDF. Betala "
              "%(total)s med kort senast %(when)s, annars släpps bäddarna.", number=s["number"],
              delegation=s["delegation"], total=s["total"], when=_moment(booking.expires_at)),
            _stay_line(s),
            _url("payments.pay", booking_id=booking.id),
        ]

    return build


def register() -> None:
    """Subscribe the mail handlers to the domain events (idempotent)."""
    events.subscribe(events.BOOKING_CREATED, on_booking_created)
    events.subscribe(events.BOOKING_CONFIRMED, on_booking_confirmed)
    events.subscribe(events.BOOKING_CANCELLED_BY_GUEST, on_cancelled_by_guest)
    events.subscribe(events.BOOKING_LINES_CANCELLED, on_lines_cancelled)
    events.subscribe(events.BOOKING_CANCELLED_BY_HOST, on_cancelled_by_host)
    events.subscribe(events.BOOKING_EXPIRED, on_booking_expired)
    events.subscribe(events.HOST_DECIDED, on_host_decided)
    events.subscribe(events.HOST_SUSPENDED, on_host_suspended)
    events.subscribe(events.FLAG_RESOLVED, on_flag_resolved)
    events.subscribe(events.FLAG_CREATED, on_flag_created)
    events.subscribe(events.FLAG_APPEAL_DECIDED, on_flag_appeal_decided)
    events.subscribe(events.WAITLIST_OFFERED, on_waitlist_offered)
    events.subscribe(events.REHOUSING_OFFERED, on_rehousing_offered)
    events.subscribe(events.REFUND_QUEUED, on_refund_queued)
    events.subscribe(events.ALLOCATION_DECIDED, on_allocation_decided)


# ---------------------------------------------------------------------------------------------
# Members' itineraries
# ---------------------------------------------------------------------------------------------


def _itinerary_stay(stay: Stay) -> str:
    """One stay of an itinerary as a paragraph, in the current (recipient's) locale."""
    lines = [
        _("%(check_in)s – %(check_out)s (nätter: %(nights)s)", check_in=format_date(stay.check_in, "EEEE d MMMM y"),
          check_out=format_date(stay.check_out, "EEEE d MMMM y"), nights=stay.nights),
        _("Boende: %(title)s", title=stay.listing_title),
        _("Adress: %(address)s, %(postal_code)s", address=stay.address, postal_code=stay.postal_code),
        _("%(walking)s minuters promenad till Almedalen", walking=stay.walking_minutes),
        _("Rum: %(room)s, bädd: %(bed)s (%(kind)s)", room=stay.room, bed=stay.bed,
          kind=in_sentence("bed_kind", stay.bed_kind)),
        (_("Värd: %(name)s, telefon %(phone)s", name=stay.host.name, phone=stay.host.phone) if stay.host.phone
         else _("Värd: %(name)s", name=stay.host.name)),
    ]
    if not stay.confirmed:
        lines.append(_("Bokningen är inte betald än; värdens telefonnummer kommer när den är bekräftad."))
    return "\n".join(lines)


def on_itinerary_changed(itinerary: Itinerary, first: bool, now: datetime, **_ignored) -> None:
    """A member hears where they sleep when they first get a bed and again whenever that changes, with the link
    to their itinerary; a member without an e-mail address hears nothing. The message is in the coordinator's
    language (members have no language setting; the page follows the reader's)."""
    if not (itinerary.email or "").strip():
        return
    c = itinerary.coordinator

    def build():
        ask = (_("Frågor? Kontakta er samordnare %(name)s, %(email)s, %(phone)s.", name=c.name, email=c.email,
                 phone=c.phone) if c.phone else
               _("Frågor? Kontakta er samordnare %(name)s, %(email)s.", name=c.name, email=c.email))
        if not itinerary.stays:
            return _("Du har inte längre någon bädd: %(delegation)s", delegation=itinerary.delegation), [
                _("Du har inte längre någon bädd genom %(delegation)s på Sängplats: bokningen är avbokad eller "
                  "du har flyttats ur rumsfördelningen.", delegation=itinerary.delegation),
                ask,
            ]
        if first:
            subject = _("Här bor du under Almedalsveckan: %(delegation)s", delegation=itinerary.delegation)
            intro = _("%(delegation)s har gett dig en bädd genom Sängplats. Här bor du:",
                      delegation=itinerary.delegation)
        else:
            subject = _("Din resplan är ändrad: %(delegation)s", delegation=itinerary.delegation)
            intro = _("Din resplan för %(delegation)s är ändrad. Så här ser den ut nu:",
                      delegation=itinerary.delegation)
        return subject, [
            intro,
            *[_itinerary_stay(stay) for stay in itinerary.stays],
            _("Din resplan, alltid aktuell (länken är personlig, dela den inte):\n%(url)s", url=itinerary.url),
            ask,
        ]

    with force_locale(itinerary.locale):
        subject, paragraphs = build()
        greeting = _("Hej %(name)s!", name=itinerary.member_name)
        signature = _("Vänliga hälsningar\nSängplats")
    body = "\n\n".join([greeting, *[p for p in paragraphs if p], signature]) + "\n"
    mail.queue_email(itinerary.email, subject, body, now=now)


def register_itinerary_mail() -> None:
    """Subscribe the itinerary mail to its event (idempotent)."""
    events.subscribe(events.ITINERARY_CHANGED, on_itinerary_changed)


# ---------------------------------------------------------------------------------------------
# Invoices (app.services.invoices): the invoice to the organisation's accounts mailbox, and reminders
# ---------------------------------------------------------------------------------------------


def _invoice_recipient(booking: Booking) -> tuple[str, User]:
    """The organisation's invoice address (else the coordinator's), and the coordinator (whose language it is)."""
    delegation = db.session.get_one(Delegation, booking.delegation_id)
    coordinator = db.session.get_one(User, booking.coordinator_id)
    return delegation.invoice_email or coordinator.email, coordinator


def queue_invoice(invoice, booking: Booking, now: datetime) -> None:
    """The invoice, its PDF attached (rendered when the mail is sent), to the invoice address."""
    address, coordinator = _invoice_recipient(booking)
    bankgiro = current_app.config["PLATFORM_BANKGIRO"]
    with force_locale(coordinator.locale or "sv"):
        subject = _("Faktura %(number)s från Sängplats", number=invoice.number)
        body = "\n\n".join([
            _("Hej!"),
            _("Här är fakturan %(number)s för bokning %(booking)s, %(total)s, att betala senast %(due)s.",
              number=invoice.number, booking=booking.id, total=kr(invoice.amount_ore), due=_day(invoice.due_on)),
            _("Betala till bankgiro %(bankgiro)s och ange OCR-nummer %(ocr)s.", bankgiro=bankgiro, ocr=invoice.ocr),
            _("Fakturan finns som bilaga (PDF) och som e-faktura (Peppol BIS Billing 3.0) på bokningens sida."),
            _("Vänliga hälsningar\nSängplats"),
        ]) + "\n"
    mail.queue_email(address, subject, body, invoice_number=invoice.number, now=now)


def queue_invoice_reminder(invoice, booking: Booking, money, step: int, now: datetime) -> None:
    """A reminder of an overdue invoice (one per step)."""
    address, coordinator = _invoice_recipient(booking)
    bankgiro = current_app.config["PLATFORM_BANKGIRO"]
    with force_locale(coordinator.locale or "sv"):
        subject = _("Påminnelse %(step)s: faktura %(number)s har förfallit", step=step, number=invoice.number)
        body = "\n\n".join([
            _("Hej!"),
            _("Fakturan %(number)s för bokning %(booking)s förföll %(due)s. Kvar att betala: %(balance)s.",
              number=invoice.number, booking=booking.id, due=_day(invoice.due_on), balance=kr(money.balance_ore)),
            _("Betala till bankgiro %(bankgiro)s och ange OCR-nummer %(ocr)s.", bankgiro=bankgiro, ocr=invoice.ocr),
            _("En bokning som inte betalats alls %(days)s dagar efter förfallodagen avbokas enligt säsongens villkor "
              "och bäddarna frigörs.", days=booking.season.unpaid_invoice_cancel_days),
            _("Vänliga hälsningar\nSängplats"),
        ]) + "\n"
    mail.queue_email(address, subject, body, invoice_number=invoice.number, now=now)


def queue_credit_note(note, invoice, booking: Booking, now: datetime) -> None:
    """A credit note (its PDF attached, rendered when sent) to the invoice address."""
    address, coordinator = _invoice_recipient(booking)
    with force_locale(coordinator.locale or "sv"):
        subject = _("Kreditfaktura %(number)s från Sängplats", number=note.number)
        body = "\n\n".join([
            _("Hej!"),
            _("Kreditfakturan %(number)s krediterar %(amount)s av faktura %(invoice)s (bokning %(booking)s).",
              number=note.number, amount=kr(note.amount_ore), invoice=invoice.number, booking=booking.id),
            _("Vänliga hälsningar\nSängplats"),
        ]) + "\n"
    mail.queue_email(address, subject, body, invoice_number=note.number, now=now)
