"""Admin forms (shape only; the rules live in app/services/)."""
from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField, TimeField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from app.i18n import kronor_to_ore, ore_to_kronor
from app.labels import lazy_choices
from app.models import Season
from app.web.common import required
from app.web.converters import Int32Field
from app.web.host.forms import REQUIRED, KronorField

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NUMBER = InputRequired(message=_l("Ange ett heltal."))
DATE = InputRequired(message=_l("Välj ett datum."))


def choices(kind: str) -> list[SelectChoice]:
    """A select field's options: an enum's values in the words of app.labels."""
    return [SelectChoice(value, words) for value, words in lazy_choices(kind)]


class DecisionForm(FlaskForm):
    decision = SelectField(_l("Beslut"), choices=choices("vetting_decision"), validators=[InputRequired()])
    reason = TextAreaField(_l("Motivering"), validators=[Optional(), Length(max=1000)])
    # A suspension from the page takes a second POST: "yes" once the admin has seen what it leaves standing,
    # and how many live bookings that page showed (a different number now shows the page again).
    confirmed = HiddenField()
    live_seen = HiddenField()


class SeasonForm(FlaskForm):
    year = IntegerField(_l("År"), validators=[NUMBER])
    name = StringField(_l("Namn"), validators=[REQUIRED, Length(max=120)])
    first_night = DateField(_l("Första natten"), validators=[DATE])
    last_night = DateField(_l("Sista natten"), validators=[DATE])
    bookings_open_on = DateField(_l("Bokningen öppnar, datum"), validators=[DATE])
    bookings_open_time = TimeField(_l("Bokningen öppnar, klockslag (svensk tid)"),
                                   validators=[InputRequired(message=_l("Ange ett klockslag, till exempel 09:00."))])
    price_cap = KronorField(_l("Pristak per bädd och natt (kr)"),
                            validators=[InputRequired(message=_l("Ange pristaket i kronor."))])
    max_increase_pct = IntegerField(_l("Högsta höjning mot förra året (procent)"), validators=[NUMBER])
    strike_limit = IntegerField(_l("Prickningar som leder till avstängning"), validators=[NUMBER])
    hold_minutes = IntegerField(_l("Reservationstid vid kortbetalning (minuter)"), validators=[NUMBER])
    free_cancellation_until = DateField(_l("Kostnadsfri avbokning till och med"), validators=[DATE])
    late_cancellation_refund_pct = IntegerField(_l("Återbetalning vid senare avbokning (procent)"),
                                                validators=[NUMBER])
    max_beds_per_organisation = Int32Field(_l("Högst antal bäddnätter per organisation"), validators=[Optional()])
    max_open_holds = Int32Field(_l("Högst antal obetalda kortreservationer per organisation"),
                                validators=[Optional()])
    unpaid_invoice_cancel_days = Int32Field(_l("Dagar efter förfallodagen innan en obetald fakturabokning avbokas"),
                                            validators=[Optional()])
    terms_version = StringField(_l("Villkorsversion"), validators=[Optional(), Length(max=40)])
    terms_text = TextAreaField(_l("Villkorstext"), validators=[Optional()])
    # The allocation round (optional): a date and a time each, both times or neither (the service's rule).
    requests_open_on = DateField(_l("Ansökan till fördelningen öppnar, datum"), validators=[Optional()])
    requests_open_time = TimeField(_l("Ansökan öppnar, klockslag (svensk tid)"), validators=[Optional()])
    allocation_on = DateField(_l("Dragningen, datum"), validators=[Optional()])
    allocation_time = TimeField(_l("Dragningen, klockslag (svensk tid)"), validators=[Optional()])
    allocation_payment_hours = Int32Field(_l("Betaltid med kort efter dragningen (timmar)"), validators=[Optional()])

    # Service field -> form field, to show a service's refusal next to the right input.
    SERVICE_FIELDS: ClassVar[dict[str, str]] = {"price_cap_ore": "price_cap", "bookings_open_at": "bookings_open_on",
                                                "requests_open_at": "requests_open_on",
                                                "allocation_at": "allocation_on"}
    # (date field, time field, the service's value) of each moment the form takes as a date and a time.
    ROUND_MOMENTS: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("requests_open_on", "requests_open_time", "requests_open_at"),
        ("allocation_on", "allocation_time", "allocation_at"))

    def validate(self, extra_validators=None) -> bool:
        """Shape only: each of the round's moments has a date and a time, or neither."""
        valid = super().validate(extra_validators)
        for day, clock, _value in self.ROUND_MOMENTS:
            if (self[day].data is None) != (self[clock].data is None) and not self[day].errors + self[clock].errors:
                missing = self[clock] if self[clock].data is None else self[day]
                missing.errors = [*missing.errors, _l("Ange både datum och klockslag, eller inget av dem.")]
                valid = False
        return valid

    def values(self, season: Season | None = None) -> dict:
        """The season's values as the seasons service takes them (aware times, öre). A round's moment shown to the
        minute and left as it was keeps `season`'s exact time (a drawn round's times cannot change at all)."""
        moments = {name for moment in self.ROUND_MOMENTS for name in moment[:2]}
        values = {name: field.data for name, field in self._fields.items()
                  if name not in ("csrf_token", "bookings_open_on", "bookings_open_time", "price_cap", *moments)}
        values["bookings_open_at"] = datetime.combine(self.bookings_open_on.data, self.bookings_open_time.data,
                                                      tzinfo=STOCKHOLM)
        for day, clock, value in self.ROUND_MOMENTS:
            values[value] = (datetime.combine(self[day].data, self[clock].data, tzinfo=STOCKHOLM)
                             if self[day].data is not None and self[clock].data is not None else None)
            kept = getattr(season, value) if season is not None else None
            if kept is not None and values[value] is not None and values[value] == _to_minute(kept):
                values[value] = kept
        values["price_cap_ore"] = kronor_to_ore(required(self.price_cap.data))
        for name in ("terms_version", "terms_text"):
            values[name] = (values.get(name) or "").strip() or None
        return values

    @staticmethod
    def data_of(season: Season) -> dict:
        local_open = season.bookings_open_at.astimezone(STOCKHOLM)
        data = {name: getattr(season, name) for name in (
            "year", "name", "first_night", "last_night", "max_increase_pct", "strike_limit", "hold_minutes",
            "free_cancellation_until", "late_cancellation_refund_pct", "terms_version", "terms_text",
            "max_beds_per_organisation", "max_open_holds", "allocation_payment_hours",
            "unpaid_invoice_cancel_days")}
        for day, clock, value in SeasonForm.ROUND_MOMENTS:
            moment = getattr(season, value)
            if moment is not None:
                data[day], data[clock] = moment.astimezone(STOCKHOLM).date(), moment.astimezone(STOCKHOLM).time()
        return {**data, "bookings_open_on": local_open.date(), "bookings_open_time": local_open.time(),
                "price_cap": ore_to_kronor(season.price_cap_ore)}


def _to_minute(moment: datetime) -> datetime:
    """A moment as the form shows it: Stockholm time, to the minute."""
    return moment.astimezone(STOCKHOLM).replace(second=0, microsecond=0)


class ResolveFlagForm(FlaskForm):
    decision = RadioField(_l("Beslut"), choices=[SelectChoice("upheld", _l("Fastställ (ger en prickning)")),
                                                 SelectChoice("dismissed", _l("Avskriv"))],
                          validators=[InputRequired(message=_l("Välj fastställ eller avskriv."))])
    note = TextAreaField(_l("Anteckning"), validators=[Optional(), Length(max=5000)])


class AppealDecisionForm(FlaskForm):
    decision = RadioField(_l("Beslut om överklagandet"), choices=[
        SelectChoice("upheld", _l("Beslutet står fast")),
        SelectChoice("overturned", _l("Upphäv beslutet (prickningen tas bort)"))],
        validators=[InputRequired(message=_l("Välj står fast eller upphäv."))])
    note = TextAreaField(_l("Motivering till värden (minst 20 tecken)"), validators=[Optional(), Length(max=5000)])


class NewFlagForm(FlaskForm):
    host_id = SelectField(_l("Värd"), coerce=int, validators=[InputRequired(message=_l("Välj en värd."))])
    category = SelectField(_l("Kategori"), choices=choices("flag_category"), validators=[InputRequired()])
    booking_id = Int32Field(_l("Bokningsnummer (valfritt)"), validators=[Optional()])
    description = TextAreaField(_l("Vad har hänt?"), validators=[REQUIRED, Length(max=5000)])
