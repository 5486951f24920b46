"""Coordinator forms (shape only; the rules live in app/services/)."""
from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    Field,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from app.i18n import kronor_to_ore
from app.labels import lazy_choices
from app.web.converters import Int32Field, int32

FLAG_CHOICES = [
    ("overcharging", _l("Överpris")),
    ("double_selling", _l("Dubbelförsäljning")),
    ("cancellation", _l("Avbokning")),
    ("misrepresentation", _l("Vilseledande beskrivning")),
    ("other", _l("Annat")),
]


class DelegationForm(FlaskForm):
    name = StringField(_l("Organisationens namn"), validators=[DataRequired(), Length(max=200)])
    organisation_number = StringField(_l("Organisationsnummer"), validators=[DataRequired(), Length(max=20)])
    # Invoice details, all optional (API.md "Invoices organisations can pay").
    buyer_reference = StringField(_l("Er referens på fakturan"), validators=[Optional(), Length(max=100)])
    invoice_email = StringField(_l("E-post för fakturor"), validators=[Optional(), Length(max=254)])
    address = StringField(_l("Fakturaadress"), validators=[Optional(), Length(max=300)])
    postal_code = StringField(_l("Postnummer"), validators=[Optional(), Length(max=10)])
    city = StringField(_l("Ort"), validators=[Optional(), Length(max=100)])


class ContactForm(FlaskForm):
    phone = StringField(_l("Telefon"), validators=[Optional(), Length(max=40)])


class MemberForm(FlaskForm):
    name = StringField(_l("Namn"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-post"), validators=[DataRequired(), Length(max=254)])


class StayWishForm(FlaskForm):
    """A stay, a number of beds and the limits on walking time and price: what a search and a waiting-list
    entry both ask for (shape only; the limits themselves are the services')."""

    check_in = DateField(_l("Incheckning"), validators=[InputRequired()])
    check_out = DateField(_l("Utcheckning"), validators=[InputRequired()])
    beds = Int32Field(_l("Antal bäddar"), validators=[InputRequired()])
    max_walking_minutes = Int32Field(_l("Högst antal minuters promenad till Almedalen"), validators=[Optional()])
    max_price_kr = Int32Field(_l("Högsta pris per bädd och natt (kr)"), validators=[Optional()])

    @property
    def max_price_ore(self) -> int | None:
        return None if self.max_price_kr.data is None else kronor_to_ore(self.max_price_kr.data)


class SearchForm(StayWishForm):
    """Read from the query string: a search changes nothing, so it is a GET without CSRF."""

    class Meta:
        csrf = False


class StayForm(FlaskForm):
    """The chosen beds and stay, carried from the search results to the contract review."""

    class Meta:
        csrf = False

    check_in = DateField(_l("Incheckning"), validators=[InputRequired()])
    check_out = DateField(_l("Utcheckning"), validators=[InputRequired()])
    bed_ids = SelectMultipleField(_l("Bäddar"), coerce=int32, validate_choice=False,
                                  validators=[DataRequired(message=_l("Välj minst en bädd."))])


class BookForm(StayForm):
    class Meta:
        csrf = True

    delegation_id = SelectField(_l("Delegation"), coerce=int, validators=[InputRequired()])
    payment_method = RadioField(_l("Betalning"), choices=lazy_choices("payment_method"),
                                default="invoice", validators=[InputRequired()])
    accept_contract = BooleanField(_l("Jag accepterar det bindande avtalet"), validators=[
        DataRequired(message=_l("Kryssa i att du accepterar avtalet för att boka."))])


class BedGroupsField(Field):
    """Repeated values, each one part's bed ids separated by commas ("12,13"): [[12, 13], [20]].

    Carried in hidden inputs and query strings; the template writes them out itself."""

    data: list[list[int]] | None

    def process_formdata(self, valuelist):
        groups = []
        for value in valuelist:
            try:
                groups.append([int32(bed_id) for bed_id in value.split(",")])
            except ValueError:
                self.data = None
                raise ValueError(_l("Förslagets bäddar kunde inte läsas. Välj förslaget i sökningen igen.")) from None
        self.data = groups

    def pre_validate(self, form):
        # Not DataRequired: it would clear the reason a value could not be read.
        if not self.data and not self.process_errors:
            raise ValidationError(_l("Välj ett förslag i sökningen."))


class OrderStayForm(FlaskForm):
    """A group proposal carried from the search to the order's review: the stay and each part's beds."""

    class Meta:
        csrf = False

    check_in = DateField(_l("Incheckning"), validators=[InputRequired()])
    check_out = DateField(_l("Utcheckning"), validators=[InputRequired()])
    parts = BedGroupsField(_l("Delar"))
    delegation_id = Int32Field(_l("Delegation"), validators=[Optional()])


class OrderForm(OrderStayForm):
    """The whole proposal booked in one step. `token` is the page's one-time idempotency key: a second submit
    of the same form gets the first answer instead of a second order."""

    class Meta:
        csrf = True

    delegation_id = SelectField(_l("Delegation"), coerce=int, validators=[InputRequired()])
    payment_method = RadioField(_l("Betalning"), choices=lazy_choices("payment_method"),
                                default="invoice", validators=[InputRequired()])
    accept_contract = BooleanField(_l("Jag accepterar de bindande avtalen"), validators=[
        DataRequired(message=_l("Kryssa i att du accepterar avtalen för att boka."))])
    token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class ConfirmForm(FlaskForm):
    """Only the CSRF token: a POST that confirms what the page showed."""


def bed_night(value: str | tuple[int, date]) -> tuple[int, date]:
    """ "<bed id>:<night YYYY-MM-DD>", as a checkbox of the cancel page sends it, as (bed id, night)."""
    if isinstance(value, tuple):
        return value
    bed_id, _colon, night = str(value).partition(":")
    return int32(bed_id), date.fromisoformat(night)


class CancelLinesForm(FlaskForm):
    """The bed-nights ticked on the cancel page (which ones may go is the cancellation service's rule)."""

    part = HiddenField(default="lines")  # tells this form from the cancel-everything one on the same page
    lines = SelectMultipleField(_l("Bäddnätter att avboka"), coerce=bed_night, validate_choice=False)


class ReportForm(FlaskForm):
    """Bed-nights reported on arrival (which ones and when is cancellations.report_on_arrival's rule)."""

    lines = SelectMultipleField(_l("Bäddnätter som saknas eller inte är som beskrivet"), coerce=bed_night,
                                validate_choice=False)
    category = RadioField(_l("Vad är fel?"), choices=[("missing", _l("Bädden saknas")),
                                                       ("not_as_described", _l("Inte som beskrivet"))],
                          validators=[InputRequired()])
    description = TextAreaField(_l("Beskriv vad ni fann"), validators=[DataRequired(), Length(max=5000)])


class FlagForm(FlaskForm):
    category = SelectField(_l("Vad gäller det?"), choices=FLAG_CHOICES, validators=[InputRequired()])
    description = TextAreaField(_l("Beskriv vad som hände"), validators=[DataRequired(), Length(max=5000)])


def rooming_form(beds, members, current: dict):
    """One select per booked bed, listing the delegation's members (empty = nobody yet)."""

    class RoomingForm(FlaskForm):
        pass

    choices = [("", _l("— ingen ännu —"))] + [(str(m.id), m.name) for m in members]
    for bed_id, label in beds:
        setattr(RoomingForm, f"bed_{bed_id}", SelectField(label, choices=choices, default=current.get(bed_id, "")))
    return RoomingForm()
