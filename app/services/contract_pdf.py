"""The contract as a PDF: the full snapshot in Swedish and English, with its checksum."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import WrapMode

from app.i18n import kr
from app.labels import label
from app.models import Contract
from app.services.contracts import amendments_of, snapshot_of
from app.services.links import external_url

FONT_DIR = Path(__file__).resolve().parent.parent / "static" / "fonts"


def local_time(iso: str | None) -> str:
    """An ISO timestamp from the snapshot as Stockholm local time, e.g. 2027-03-01 09:15 (Europe/Stockholm)."""
    if not iso:
        return "–"
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo("Europe/Stockholm"))
    return f"{moment:%Y-%m-%d %H:%M:%S} (Europe/Stockholm)"


def verify_link(contract: Contract) -> str:
    """The absolute verify address, from the configured BASE_URL (never a request's Host header)."""
    query = urlencode({"number": contract.number, "sha256": contract.sha256})
    return f"{external_url('public.verify_contract')}?{query}"


def render_pdf(contract: Contract) -> bytes:
    """Render the immutable snapshot; the PDF is derived, the snapshot and its hash are the record."""
    data = snapshot_of(contract)
    pdf = FPDF(format="A4")
    pdf.set_title(f"Avtal {contract.number}")
    pdf.set_author("Sängplats")
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def heading(text: str, size: int = 13) -> None:
        pdf.set_font("DejaVu", "B", size)
        pdf.multi_cell(width, 7, text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def para(text: str, size: int = 10) -> None:
        pdf.set_font("DejaVu", "", size)
        pdf.multi_cell(width, 5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    parties = data["parties"]
    heading(f"Bindande bokningsavtal / Binding booking contract {data['number']}", 15)
    para(f"Säsong / Season: {data['season']['name']} ({data['season']['year']}) · "
         f"Villkor / Terms version {data['terms']['version']}")
    heading("Parter / Parties")
    host = parties["host"]
    para(f"Värd / Host: {host['legal_name']}, {host.get('address') or ''} {host.get('postal_code') or ''}")
    org = parties["organisation"]
    para(f"Beställare / Client: {org['name']} (org.nr {org['organisation_number']}), "
         f"genom / represented by {parties['coordinator']['name']} <{parties['coordinator']['email']}>")
    heading("Boende / Property")
    prop = data["property"]
    para(f"{prop['title']}, {prop['address']}, {prop['postal_code']} Gotland · "
         f"{prop['walking_minutes']} min promenad till Almedalen / walk to Almedalen")
    para(f"Incheckning / Check-in {data['stay']['check_in']} · Utcheckning / Check-out {data['stay']['check_out']}")
    heading("Bäddar och nätter / Beds and nights")
    pdf.set_font("DejaVu", "B", 9)
    cols = (width * 0.25, width * 0.5, width * 0.25)
    for text, w in zip(("Natt / Night", "Bädd / Bed", "Pris / Price"), cols, strict=False):
        pdf.cell(w, 6, text, border="B")
    pdf.ln()
    pdf.set_font("DejaVu", "", 9)
    for line in data["lines"]:
        pdf.cell(cols[0], 5, line["night"])
        pdf.cell(cols[1], 5, line["bed"][:60])
        pdf.cell(cols[2], 5, kr(line["price_ore"], "sv"), align="R")
        pdf.ln()
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(cols[0] + cols[1], 7, "Totalt (slutpris) / Total (all-in)")
    pdf.cell(cols[2], 7, kr(data["total_ore"], "sv"), align="R")
    pdf.ln(9)
    heading("Betalning / Payment")
    pay = data["payment"]
    method = " / ".join(label("payment_method", pay["method"], locale=locale) for locale in ("sv", "en"))
    if pay["method"] == "invoice":
        para(f"{method} {pay['invoice_number']}, förfaller / due {pay['invoice_due_on']}.")
    else:
        para(f"{method} (Stripe).")
    heading("Avbokning / Cancellation")
    cancel = data["cancellation"]
    para(f"Gästen: kostnadsfri avbokning till och med {cancel['guest_free_until']}, därefter återbetalas "
         f"{cancel['guest_late_refund_pct']} %. / Guest: free cancellation up to and including "
         f"{cancel['guest_free_until']}, after that {cancel['guest_late_refund_pct']} % is refunded.")
    para("Värden: avbokning är avtalsbrott – full återbetalning, bäddarna låses och värden får en prickning. / "
         "Host: cancellation is a breach – full refund, the beds are locked and the host receives a strike.")
    heading("Accept / Acceptance")
    para("Värdens stående anbud accepterat / Host's standing offer accepted: "
         f"{local_time(data['host_offer_accepted_at'])} "
         f"(villkor / terms {data['host_offer_terms_version']})")
    acc = data["coordinator_acceptance"]
    para(f"Beställarens accept / Client's acceptance: {local_time(acc['at'])} (användare / user {acc['actor_id']}, "
         f"IP {acc['ip'] or '-'})")
    heading("Standardvillkor / Standard terms")
    para(data["terms"]["text"], 9)
    heading("Kontrollsumma / Checksum")
    para(f"SHA-256: {contract.sha256}", 8)
    verify_url = verify_link(contract)
    pdf.set_font("DejaVu", "", 8)
    # The whole address, wrapped wherever the line ends, and clickable.
    pdf.multi_cell(width, 5, f"Verifiera / Verify: {verify_url}", align="L", link=verify_url, wrapmode=WrapMode.CHAR,
                   new_x="LMARGIN", new_y="NEXT")
    amendments = amendments_of(contract.id)
    if amendments:
        # The document's keywords name what it holds, for a reader (or a search) that does not parse the pages.
        pdf.set_keywords(" ".join([contract.number, *(amendment.number for amendment in amendments)]))
        pdf.ln(3)
        heading("Ändringar / Amendments")
        para("Avtalet ovan är oförändrat; ändringarna läggs till efter det och ingår inte i kontrollsumman. / "
             "The contract above is unchanged; amendments are appended after it and are not covered by its checksum.",
             9)
    for amendment in amendments:
        heading(f"{amendment.number} · {local_time(amendment.at.isoformat())}", 11)
        para("Avbokade av beställaren enligt avtalets villkor / Cancelled by the client under the contract's terms:", 9)
        pdf.set_font("DejaVu", "", 9)
        for line in amendment.lines:
            pdf.cell(cols[0], 5, line["night"])
            pdf.cell(cols[1], 5, str(line.get("bed") or line["bed_id"])[:60])
            pdf.cell(cols[2], 5, kr(line["price_ore"], "sv"), align="R")
            pdf.ln()
        if pay["method"] == "invoice":
            money = (f"Fakturan krediteras / Invoice credited: {kr(amendment.invoice_credit_ore, 'sv')}")
        else:
            money = f"Återbetalning / Refund: {kr(amendment.refund_ore, 'sv')}"
        para(f"Värde / Value {kr(amendment.lines_ore, 'sv')} · {money}", 9)
    return bytes(pdf.output())
