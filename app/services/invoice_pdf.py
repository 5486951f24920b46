"""The invoice (and credit note) as PDF, in the buyer's language (the coordinator's locale), with fpdf2 like the
contract PDF. What it says comes from app.services.invoices (Document), as the e-invoice's does."""
from __future__ import annotations

from fpdf import FPDF

from app.i18n import kr
from app.services.contract_pdf import FONT_DIR
from app.services.invoices import Document

TEXTS = {
    "sv": {
        "invoice": "Faktura", "credit_note": "Kreditfaktura", "number": "Fakturanummer",
        "credit_number": "Kreditfakturanummer", "credits": "Krediterar faktura", "issued": "Fakturadatum",
        "due": "Förfallodag", "seller": "Säljare (värd)", "buyer": "Köpare", "payee": "Betalningsmottagare",
        "agent": "som ombud för säljaren", "orgnr": "Org.nr/personnr", "vat_no": "Momsreg.nr",
        "reference": "Er referens", "booking": "Bokning", "bed": "Bädd", "nights": "Nätter",
        "period": "Nätter från–till", "unit": "Pris per natt", "amount": "Belopp", "net": "Summa exkl. moms",
        "vat": "Moms", "rounding": "Öresavrundning", "total": "Att betala", "credited": "Krediteras",
        "bankgiro": "Bankgiro", "ocr": "OCR-nummer",
        "outside_vat": "Momsfri uthyrning av privatbostad: uthyrningen ligger utanför mervärdesskattens "
                       "tillämpningsområde, ingen moms debiteras.",
        "with_vat": "Priserna ovan är exklusive moms; moms {rate} % tillkommer enligt nedan. Att betala är "
                    "det avtalade totalpriset inklusive moms.",
        "pay": "Betala till bankgiro {bankgiro} och ange OCR-nummer {ocr}, senast {due}.",
        "credit_note_text": "Beloppet krediteras och dras av från faktura {invoice}.",
    },
    "en": {
        "invoice": "Invoice", "credit_note": "Credit note", "number": "Invoice number",
        "credit_number": "Credit note number", "credits": "Credits invoice", "issued": "Invoice date",
        "due": "Due date", "seller": "Seller (host)", "buyer": "Buyer", "payee": "Payee",
        "agent": "as the seller's payment agent", "orgnr": "Org./personal no.", "vat_no": "VAT no.",
        "reference": "Your reference", "booking": "Booking", "bed": "Bed", "nights": "Nights",
        "period": "Nights from–to", "unit": "Price per night", "amount": "Amount", "net": "Total excl. VAT",
        "vat": "VAT", "rounding": "Rounding", "total": "Amount due", "credited": "Credited",
        "bankgiro": "Bankgiro", "ocr": "OCR reference",
        "outside_vat": "VAT-free letting of a private home: the letting is outside the scope of Swedish VAT, "
                       "no VAT is charged.",
        "with_vat": "Prices above exclude VAT; VAT at {rate} % is added below. The amount due is the agreed "
                    "all-in price including VAT.",
        "pay": "Pay to bankgiro {bankgiro} quoting OCR reference {ocr} by {due}.",
        "credit_note_text": "This amount is credited against invoice {invoice}.",
    },
}


def render(doc: Document) -> bytes:
    lang = doc.language if doc.language in TEXTS else "sv"
    t = TEXTS[lang]
    credit = doc.kind == "credit_note"

    def money(ore: int) -> str:
        return kr(ore, lang)

    pdf = FPDF(format="A4")
    pdf.set_title(f"{t['credit_note' if credit else 'invoice']} {doc.number}")
    pdf.set_author(doc.payee["name"])
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def text(value: str, size: int = 10, bold: bool = False) -> None:
        pdf.set_font("DejaVu", "B" if bold else "", size)
        pdf.multi_cell(width, 5 if size <= 10 else 8, value, align="L", new_x="LMARGIN", new_y="NEXT")

    text(f"{t['credit_note' if credit else 'invoice']} {doc.number}", 18, bold=True)
    pdf.ln(2)
    facts = [(t["credit_number" if credit else "number"], doc.number), (t["issued"], doc.issued_on.isoformat())]
    if credit:
        facts.append((t["credits"], doc.invoice_number))
    else:
        facts.append((t["due"], doc.due_on.isoformat() if doc.due_on else "–"))
    facts += [(t["ocr"], doc.ocr), (t["reference"], doc.buyer["reference"]), (t["booking"], str(doc.booking_id))]
    for label, value in facts:
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width * 0.3, 5, label)
        pdf.set_font("DejaVu", "", 10)
        pdf.cell(width * 0.7, 5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    seller, buyer, payee = doc.seller, doc.buyer, doc.payee
    seller_lines = [seller["name"], f"{seller.get('address') or ''}, {seller.get('postal_code') or ''}"]
    if seller.get("organisation_number"):
        seller_lines.append(f"{t['orgnr']} {seller['organisation_number']}")
    if doc.vat_rate_pct and seller.get("vat_number"):
        seller_lines.append(f"{t['vat_no']} {seller['vat_number']}")
    buyer_lines = [buyer["name"], f"{t['orgnr']} {buyer['organisation_number']}",
                   " ".join(x for x in (buyer.get("address"), buyer.get("postal_code"), buyer.get("city")) if x),
                   f"{t['reference']}: {buyer['reference']}"]
    payee_lines = [payee["name"], t["agent"], f"{t['orgnr']} {payee['organisation_number']}",
                   f"{t['bankgiro']} {payee['bankgiro']}"]
    top = pdf.get_y()
    column = width / 3
    for index, (title, lines) in enumerate(((t["seller"], seller_lines), (t["buyer"], buyer_lines),
                                            (t["payee"], payee_lines))):
        pdf.set_xy(pdf.l_margin + index * column, top)
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(column - 2, 5, title, new_x="LEFT", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)
        pdf.multi_cell(column - 2, 4.5, "\n".join(line for line in lines if line.strip(", ")),
                       new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, top + 40)
    cols = (width * 0.34, width * 0.26, width * 0.1, width * 0.15, width * 0.15)
    pdf.set_font("DejaVu", "B", 9)
    for label, w in zip((t["bed"], t["period"], t["nights"], t["unit"], t["amount"]), cols, strict=True):
        pdf.cell(w, 6, label, border="B")
    pdf.ln()
    pdf.set_font("DejaVu", "", 9)
    for line in doc.lines:
        period = f"{line.first_night} – {line.last_night}" if line.first_night else ""
        for value, w in zip((line.bed, period, str(line.quantity), money(line.unit_net_ore), money(line.net_ore)),
                            cols, strict=True):
            pdf.cell(w, 5, value[:48])
        pdf.ln()
    pdf.ln(2)
    totals = doc.totals
    rows = []
    if doc.vat_rate_pct:
        rows += [(t["net"], totals.line_extension_ore), (f"{t['vat']} {doc.vat_rate_pct} %", totals.vat_ore)]
        if totals.rounding_ore:
            rows.append((t["rounding"], totals.rounding_ore))
    rows.append((t["credited"] if credit else t["total"], totals.payable_ore))
    for label, ore in rows:
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width * 0.7, 6, label, align="R")
        pdf.cell(width * 0.3, 6, money(ore), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    text(t["with_vat"].format(rate=doc.vat_rate_pct) if doc.vat_rate_pct else t["outside_vat"], 9)
    pdf.ln(2)
    if credit:
        text(t["credit_note_text"].format(invoice=doc.invoice_number), 10, bold=True)
    else:
        text(t["pay"].format(bankgiro=payee["bankgiro"], ocr=doc.ocr,
                             due=doc.due_on.isoformat() if doc.due_on else "–"), 11, bold=True)
    return bytes(pdf.output())
