"""Account forms: password, two-factor, reset, vetting document (shape only)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import EmailField, PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Nuvarande lösenord"), validators=[DataRequired(), Length(max=1000)])
    password = PasswordField(_l("Nytt lösenord (minst 10 tecken)"), validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField(_l("Upprepa det nya lösenordet"),
                            validators=[DataRequired(), EqualTo("password", message=_l("Lösenorden är olika."))])


class EnrolTotpForm(FlaskForm):
    code = StringField(_l("Sexsiffrig kod från appen"), validators=[DataRequired(), Length(min=6, max=7)])


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-post"), validators=[DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("Nytt lösenord (minst 10 tecken)"), validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField(_l("Upprepa det nya lösenordet"),
                            validators=[DataRequired(), EqualTo("password", message=_l("Lösenorden är olika."))])


class DocumentForm(FlaskForm):
    document = FileField(_l("Dokument (PDF, JPEG eller PNG, högst 5 MB)"), validators=[FileRequired()])


class LocaleForm(FlaskForm):
    locale = RadioField(_l("Språk"), choices=[("sv", "Svenska"), ("en", "English")], validators=[DataRequired()])
