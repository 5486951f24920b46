"""Sign-in and sign-up forms (shape only; the rules live in app/services/accounts.py)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, RadioField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Optional


class LoginForm(FlaskForm):
    email = EmailField(_l("E-post"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Lösenord"), validators=[DataRequired(), Length(max=1000)])
    otp = StringField(_l("Engångskod (admin)"), validators=[Optional(), Length(max=10)])
    submit = SubmitField(_l("Logga in"))


class RegisterForm(FlaskForm):
    name = StringField(_l("Namn"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-post"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Lösenord (minst 10 tecken)"), validators=[DataRequired(), Length(max=1000)])
    role = RadioField(_l("Jag är"), choices=[("host", _l("Värd på Gotland")),
                                               ("coordinator", _l("Samordnare för en delegation"))],
                      validators=[DataRequired()])
    submit = SubmitField(_l("Skapa konto"))
