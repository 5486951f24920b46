"""Host forms (shape only; the rules live in app/services/)."""
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.i18n import MAX_KRONOR, current_locale, normalise_amount
from app.labels import lazy_choices

REQUIRED = DataRequired(message=_l("Fyll i det här fältet."))
WHOLE_NUMBER = InputRequired(message=_l("Ange ett heltal."))


class KronorField(DecimalField):
    """An amount in kronor as people type it: 650, 650,50 or 1 200 kr (Swedish); 650.50 or SEK 1,200 (English)."""

    data: Decimal | None

    def __init__(self, label=None, validators=None, **kwargs):
        limit = NumberRange(max=MAX_KRONOR, message=_l("Beloppet är orimligt stort."))
        super().__init__(label, [*(validators or []), limit], places=2, **kwargs)

    def process_formdata(self, valuelist):
        if valuelist:
            valuelist = [normalise_amount(valuelist[0])]
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(_l("Ange ett belopp i kronor, till exempel 650 eller 650,50."))

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        if self.data is None:
            return ""
        shown = f"{self.data:.2f}".removesuffix(".00")
        return shown if current_locale() == "en" else shown.replace(".", ",")


class ProfileForm(FlaskForm):
    legal_name = StringField(_l("Juridiskt namn (person eller företag)"), validators=[REQUIRED, Length(max=200)])
    phone = StringField(_l("Telefon"), validators=[REQUIRED, Length(max=40)])
    address = StringField(_l("Gatuadress på Gotland"), validators=[REQUIRED, Length(max=300)])
    postal_code = StringField(_l("Postnummer"), validators=[REQUIRED, Length(max=10)])
    right_to_rent = BooleanField(_l("Jag intygar att jag har rätt att hyra ut bostaden "
                                    "(äger den eller har hyresvärdens/föreningens tillstånd)."))
    organisation_number = StringField(_l("Organisationsnummer eller personnummer (på fakturan)"),
                                      validators=[Optional(), Length(max=20)])
    vat_number = StringField(_l("Momsregistreringsnummer"), validators=[Optional(), Length(max=20)])
    vat_rate_pct = SelectField(_l("Moms"), choices=[("", _l("Ingen moms (privat uthyrning)")), ("12", "12 %"),
                                                  ("25", "25 %"), ("6", "6 %")], default="")


class ListingForm(FlaskForm):
    title = StringField(_l("Rubrik"), validators=[REQUIRED, Length(max=200)])
    description = TextAreaField(_l("Beskrivning"), validators=[Optional(), Length(max=5000)])
    address = StringField(_l("Gatuadress"), validators=[REQUIRED, Length(max=300)])
    postal_code = StringField(_l("Postnummer"), validators=[REQUIRED, Length(max=10)])
    walking_minutes = IntegerField(_l("Promenad till Almedalen (minuter)"), validators=[WHOLE_NUMBER])


class RoomForm(FlaskForm):
    name = StringField(_l("Rummets namn"), validators=[REQUIRED, Length(max=120)])


class BedForm(FlaskForm):
    label = StringField(_l("Bäddens namn"), validators=[REQUIRED, Length(max=120)])
    kind = SelectField(_l("Typ av bädd"), choices=[SelectChoice(k, v) for k, v in lazy_choices("bed_kind")],
                       validators=[REQUIRED])


class PriceForm(FlaskForm):
    price = KronorField(_l("Pris per natt (kr, slutpris)"),
                        validators=[InputRequired(message=_l("Ange ett pris i kronor, till exempel 650."))])


class PublishForm(FlaskForm):
    terms_version = HiddenField()
    accept_terms = BooleanField(_l("Jag godkänner standardvillkoren och lämnar ett bindande anbud för alla "
                                   "bäddar till angivna priser."))


class ConfirmForm(FlaskForm):
    """A bare form: only the CSRF token (unpublish)."""


class BlockForm(FlaskForm):
    bed_id = SelectField(_l("Bädd"), coerce=int, validators=[InputRequired()])
    check_in = DateField(_l("Första natten"), validators=[InputRequired(message=_l("Välj ett datum."))])
    check_out = DateField(_l("Utcheckning (dagen efter sista natten)"),
                          validators=[InputRequired(message=_l("Välj ett datum."))])


class HostCancelForm(FlaskForm):
    reason = TextAreaField(_l("Skäl till avbokningen"), validators=[REQUIRED, Length(max=1000)])
    understand = BooleanField(_l("Jag förstår att avbokningen är ett avtalsbrott: jag får en prickning, "
                                 "gästen får tillbaka allt som betalats (en obetald faktura krediteras) och "
                                 "bäddarna låses för vistelsen."),
                              validators=[DataRequired(message=_l("Bekräfta att du förstår följderna."))])
