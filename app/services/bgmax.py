"""Bankgirot's BgMax payment file: parsing (pure) and importing (each payment recorded by its OCR reference).

Records are 80-character lines, the first two characters the transaction code (TK). Field positions (1-based,
inclusive), after Bankgirot's BgMax manual:

  01 start      3-22 layout name "BGMAX", 23-24 version, 25-44 timestamp YYYYMMDDHHMMSSµµµµµµ, 45 test mark T/P
  05 opening    3-12 payee bankgiro, 13-22 payee plusgiro, 23-25 currency
  20 payment    3-12 payer bankgiro, 13-37 reference, 38-55 amount in öre, 56 reference code, 57 payment
                channel, 58-69 BGC serial number, 70 image mark
  21 deduction  as 20, 71 deduction code          22/23 extra reference (+/-): as 20
  25 information 3-52 text    26 name 3-37, 38-72    27 address 3-37, postal code 38-46
  28 address 2  3-37 city, 38-72 country, 73-74 country code    29 organisation number 3-14
  15 deposit    3-37 payee bank account, 38-45 payment date YYYYMMDD, 46-50 deposit serial, 51-68 deposit
                amount in öre, 69-71 currency, 72-79 number of payments, 80 deposit type
  70 end        3-10 payment records, 11-18 deduction records, 19-26 extra reference records,
                27-34 deposit records

Reference codes: 0/1 no reference, 2 a correct OCR number, 3 one or more references, 4 one reference, 5 an
incorrect reference. A file whose counts (TK70) or deposit sums (TK15) do not add up is refused whole.

Importing: a payment (TK20) and a positive extra reference (TK22) are each recorded on the invoice whose OCR
reference they carry, with the unique bank reference "bgmax:<BGC serial>:<TK>:<reference>" so that a file imported
twice pays once. Deductions (TK21) and negative extra references (TK23) are money the payer took off: they are
listed for the bookkeeper and not recorded (an invoice payment is never negative). A reference that matches no
invoice is listed and left alone, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _

from app.services.errors import ValidationFailed


@dataclass(frozen=True)
class BgPayment:
    kind: str  # "20", "21", "22" or "23"
    payer_bankgiro: str
    reference: str
    amount_ore: int
    reference_code: str
    serial: str
    paid_on: date | None = None  # from the deposit record that closes its section


@dataclass
class BgMaxFile:
    test: bool
    timestamp: str
    payee_bankgiro: str
    payments: list[BgPayment] = field(default_factory=list)
    deposits: list[dict] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # BGC serial -> payer name (TK26)


def _field(line: str, start: int, end: int) -> str:
    return line[start - 1:end]


def _amount(text: str, what: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValidationFailed({"file": [_("BgMax: ogiltigt belopp i %(what)s: %(value)r.", what=what, value=text)]})
    return int(text)


def _count(text: str) -> int:
    text = text.strip() or "0"
    if not text.isdigit():
        raise ValidationFailed({"file": [_("BgMax: ogiltigt antal i slutposten: %(value)r.", value=text)]})
    return int(text)


def parse(content: str) -> BgMaxFile:
    """Parse a BgMax file (text; Bankgirot sends ISO 8859-1) into its payments, checking its counts and sums."""
    lines = [line.rstrip("\r\n") for line in content.splitlines() if line.strip()]
    if not lines or _field(lines[0], 1, 2) != "01" or _field(lines[0], 3, 22).strip() != "BGMAX":
        raise ValidationFailed({"file": [_("Inte en BgMax-fil: första posten ska vara 01 med BGMAX.")]})
    start = lines[0].ljust(80)
    parsed = BgMaxFile(test=_field(start, 45, 45) == "T", timestamp=_field(start, 25, 44).strip(), payee_bankgiro="")
    section: list[BgPayment] = []
    counts = {"20": 0, "21": 0, "22": 0, "23": 0, "15": 0}
    ended = None
    for raw in lines[1:]:
        line = raw.ljust(80)
        code = _field(line, 1, 2)
        if ended is not None:
            raise ValidationFailed({"file": [_("BgMax: poster efter slutposten 70.")]})
        if code == "05":
            parsed.payee_bankgiro = _field(line, 3, 12).strip().lstrip("0")
            section = []
        elif code in ("20", "21", "22", "23"):
            counts[code] += 1
            payment = BgPayment(kind=code, payer_bankgiro=_field(line, 3, 12).strip().lstrip("0"),
                                reference=_field(line, 13, 37).strip(),
                                amount_ore=_amount(_field(line, 38, 55), f"TK{code}"),
                                reference_code=_field(line, 56, 56), serial=_field(line, 58, 69).strip())
            section.append(payment)
        elif code == "26" and section:
            parsed.names[section[-1].serial] = _field(line, 3, 37).strip()
        elif code in ("25", "27", "28", "29"):
            continue  # information, address and organisation number: not needed to book the payment
        elif code == "15":
            counts["15"] += 1
            try:
                paid_on = datetime.strptime(_field(line, 38, 45), "%Y%m%d").date()
            except ValueError:
                raise ValidationFailed({"file": [_("BgMax: ogiltig betalningsdag i insättningsposten.")]}) from None
            amount = _amount(_field(line, 51, 68), "TK15")
            number = _count(_field(line, 72, 79))
            positive = sum(p.amount_ore for p in section if p.kind in ("20", "22"))
            negative = sum(p.amount_ore for p in section if p.kind in ("21", "23"))
            payments_in_section = sum(1 for p in section if p.kind == "20")
            if positive - negative != amount or payments_in_section != number:
                raise ValidationFailed({"file": [_(
                    "BgMax: insättningen %(serial)s stämmer inte: %(amount)s öre i %(number)s betalningar enligt "
                    "posten, %(sum)s öre i %(count)s betalningar i filen.", serial=_field(line, 46, 50).strip(),
                    amount=amount, number=number, sum=positive - negative, count=payments_in_section)]})
            parsed.payments.extend(BgPayment(**{**p.__dict__, "paid_on": paid_on}) for p in section)
            parsed.deposits.append({"paid_on": paid_on, "amount_ore": amount, "payments": number})
            section = []
        elif code == "70":
            ended = (_count(_field(line, 3, 10)), _count(_field(line, 11, 18)), _count(_field(line, 19, 26)),
                     _count(_field(line, 27, 34)))
        else:
            continue  # Bankgirot: records one does not know are to be ignored
    if ended is None:
        raise ValidationFailed({"file": [_("BgMax: slutposten 70 saknas.")]})
    found = (counts["20"], counts["21"], counts["22"] + counts["23"], counts["15"])
    if ended != found:
        raise ValidationFailed({"file": [_(
            "BgMax: slutposten anger %(ended)s (betalningar, avdrag, extra referenser, insättningar) men filen "
            "har %(found)s.", ended=list(ended), found=list(found))]})
    if section:
        raise ValidationFailed({"file": [_("BgMax: betalningar utan insättningspost 15.")]})
    return parsed
