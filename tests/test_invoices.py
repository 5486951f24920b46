"""Issue 16: invoices organisations can pay: OCR references, the e-invoice, the ledger, BgMax files, reminders."""
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from stdnum import luhn

from app.extensions import db
from app.models import Booking, CreditNote, HostProfile, Invoice, OutboxEmail
from app.services import cancellations, einvoice, invoices
from app.services.base import Actor
from app.services.errors import ValidationFailed
from app.services.ledger import host_share_ore
from app.services.ocr import is_valid_ocr, ocr_for_invoice_number
from tests.helpers import NOW, YEAR, api_book, csrf_from, signed_in

NS = {"inv": einvoice.NS_INVOICE, "cn": einvoice.NS_CREDIT_NOTE, "cac": einvoice.CAC, "cbc": einvoice.CBC}
TOTAL = 200000  # two beds, two nights, 500 kr each


def invoice_of(booking) -> Invoice:
    invoice = invoices.invoice_for_booking(booking.id)
    assert invoice is not None
    return invoice


def admin(make_admin):
    return Actor(make_admin().id, "admin")


# ---------------------------------------------------------------------------------------------
# OCR
# ---------------------------------------------------------------------------------------------


def test_ocr_is_digits_with_length_and_luhn_digits_unique_and_stable(make_booking):
    bookings = [make_booking() for _ in range(3)]
    references = [invoice_of(b).ocr for b in bookings]
    print("OCR references", references)
    assert len(set(references)) == 3
    for booking, reference in zip(bookings, references, strict=True):
        assert reference.isdigit() and luhn.is_valid(reference) and is_valid_ocr(reference)
        assert reference[-2] == str(len(reference) % 10)  # Bankgirot's length digit
        assert ocr_for_invoice_number(booking.invoice_number) == reference  # stable: derived from the number
    assert ocr_for_invoice_number(f"F-{YEAR}-000123") == f"{YEAR}000123" + "2" + luhn.calc_check_digit(
        f"{YEAR}0001232")
    assert not is_valid_ocr(references[0][:-1] + str((int(references[0][-1]) + 1) % 10))


def test_invoice_rows_are_append_only(make_booking):
    invoice = invoice_of(make_booking())
    with pytest.raises(Exception):  # noqa: B017 - the database's trigger refuses, whatever the driver calls it
        db.session.execute(Invoice.__table__.update().where(Invoice.id == invoice.id).values(amount_ore=1))
        db.session.flush()
    db.session.rollback()


# ---------------------------------------------------------------------------------------------
# The API: the booking's invoice, the documents and who may see them
# ---------------------------------------------------------------------------------------------


def test_booking_answer_carries_the_invoice(api_world):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2]).get_json()["id"]
    answer = api_world["coord"].get(f"/bookings/{booking_id}").get_json()
    print("invoice", answer["invoice"])
    invoice = answer["invoice"]
    assert invoice["number"].startswith(f"F-{YEAR}-") and invoice["status"] == "open" and invoice["paid_ore"] == 0
    assert is_valid_ocr(invoice["ocr"]) and invoice["due_on"]
    assert answer["total_ore"] == TOTAL and "lines" in answer and "payments" in answer


def test_invoice_documents_only_for_its_coordinator_host_and_admin(app, api_world, make_user, make_listing, api_as,
                                                                   make_admin):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()["id"]
    app.config["PROPAGATE_EXCEPTIONS"] = True
    other_coordinator = api_as(make_user("coordinator"))
    other_host = api_as(db.session.get(HostProfile, make_listing().host_id).user)
    admin_api = api_as(make_admin())
    for kind, mime in (("pdf", "application/pdf"), ("xml", "application/xml")):
        path = f"/bookings/{booking_id}/invoice.{kind}"
        for who in (api_world["coord"], api_world["host"], admin_api):
            response = who.get(path)
            assert response.status_code == 200 and response.mimetype == mime
            assert response.headers["Cache-Control"] == "no-store"
        assert other_coordinator.get(path).status_code == 404
        assert other_host.get(path).status_code == 404
    card = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][1:2],
                    method="card").get_json()["id"]
    assert api_world["coord"].get(f"/bookings/{card}/invoice.xml").status_code == 404


def test_delegation_invoice_details_and_host_vat_details(api_world):
    created = api_world["coord"].post("/delegations", json={
        "name": "Region Gotland", "organisation_number": "212000-0803", "buyer_reference": "ABC-123",
        "invoice_email": "Faktura@Region.se", "address": "Visborgsallén 19", "postal_code": "62181",
        "city": "Visby"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["buyer_reference"], body["invoice_email"], body["postal_code"]) == (
        "ABC-123", "faktura@region.se", "621 81")
    patched = api_world["coord"].patch(f"/delegations/{body['id']}", json={"buyer_reference": None, "city": "Slite"})
    assert patched.status_code == 200
    got = api_world["coord"].get(f"/delegations/{body['id']}").get_json()
    assert got["buyer_reference"] is None and got["city"] == "Slite" and got["address"] == "Visborgsallén 19"
    bad = api_world["coord"].patch(f"/delegations/{body['id']}", json={"invoice_email": "nope", "postal_code": "1"})
    assert bad.status_code == 422 and {"invoice_email", "postal_code"} <= set(bad.get_json()["errors"])
    profile = {"legal_name": "Anna Värd", "phone": "+46701234567", "address": "Strandgatan 1",
               "postal_code": "62155", "right_to_rent": True}
    ok = api_world["host"].put("/host/profile", json={**profile, "organisation_number": "556677-8899",
                                                      "vat_number": "SE556677889901", "vat_rate_pct": 12})
    assert ok.status_code == 200, ok.get_json()
    assert (ok.get_json()["vat_number"], ok.get_json()["vat_rate_pct"]) == ("SE556677889901", 12)
    half = api_world["host"].put("/host/profile", json={**profile, "vat_number": "SE556677889901"})
    assert half.status_code == 422 and "vat_rate_pct" in half.get_json()["errors"]


# ---------------------------------------------------------------------------------------------
# The e-invoice (Peppol BIS Billing 3.0, UBL 2.1): every rule implemented is checked here
# ---------------------------------------------------------------------------------------------


def amount(root, path) -> Decimal:
    return Decimal(root.findtext(path, namespaces=NS))


def check_totals(root, prefix: str, line: str) -> None:
    """BR-CO-10 .. BR-CO-16 (no allowances, charges or prepaid amounts), to the öre; BR-16 at least one line."""
    lines = root.findall(f"cac:{line}", NS)
    assert lines, "BR-16: at least one line"
    total = "cac:LegalMonetaryTotal/cbc:"
    line_sum = sum(Decimal(x.findtext("cbc:LineExtensionAmount", namespaces=NS)) for x in lines)
    assert amount(root, total + "LineExtensionAmount") == line_sum  # BR-CO-10
    assert amount(root, total + "TaxExclusiveAmount") == line_sum  # BR-CO-13 (no allowances or charges)
    tax = amount(root, "cac:TaxTotal/cbc:TaxAmount")
    assert tax == sum(Decimal(x.text) for x in root.findall("cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount", NS))  # CO-14
    assert amount(root, total + "TaxInclusiveAmount") == line_sum + tax  # BR-CO-15
    rounding = Decimal(root.findtext(total + "PayableRoundingAmount", default="0", namespaces=NS))
    assert amount(root, total + "PayableAmount") == line_sum + tax + rounding  # BR-CO-16
    for node in lines:  # PEPPOL-EN16931-R120: line amount = quantity x price
        quantity = Decimal(node.findtext(f"cbc:{'CreditedQuantity' if prefix == 'cn' else 'InvoicedQuantity'}",
                                         namespaces=NS))
        assert Decimal(node.findtext("cbc:LineExtensionAmount", namespaces=NS)) == quantity * Decimal(
            node.findtext("cac:Price/cbc:PriceAmount", namespaces=NS))
    for text in root.iter():  # amounts with at most two decimals (BR-DEC-*)
        if text.get("currencyID"):
            assert text.get("currencyID") == "SEK" and len(text.text.split(".")[1]) == 2


MANDATORY = ("cbc:CustomizationID", "cbc:ProfileID", "cbc:ID", "cbc:IssueDate", "cbc:DocumentCurrencyCode",
             "cbc:BuyerReference",
             "cac:AccountingSupplierParty/cac:Party/cbc:EndpointID",
             "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
             "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
             "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID",
             "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
             "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
             "cac:TaxTotal/cbc:TaxAmount", "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID",
             "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cac:TaxScheme/cbc:ID",
             "cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount",
             "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", "cac:LegalMonetaryTotal/cbc:PayableAmount")


def test_invoice_xml_has_every_mandatory_element_and_adds_up(api_world, tmp_path):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2]).get_json()["id"]
    response = api_world["coord"].get(f"/bookings/{booking_id}/invoice.xml")
    (tmp_path / "invoice.xml").write_bytes(response.data)
    root = etree.fromstring(response.data)
    assert root.tag == f"{{{einvoice.NS_INVOICE}}}Invoice"
    for path in MANDATORY + ("cbc:InvoiceTypeCode", "cbc:DueDate", "cac:PaymentMeans/cbc:PaymentMeansCode"):
        assert root.findtext(path, namespaces=NS), f"missing {path}"
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == einvoice.CUSTOMIZATION_ID
    assert root.findtext("cbc:ProfileID", namespaces=NS) == einvoice.PROFILE_ID
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "380"
    booking = db.session.get(Booking, booking_id)
    invoice = invoice_of(booking)
    assert root.findtext("cbc:ID", namespaces=NS) == invoice.number
    assert root.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == invoice.ocr
    assert root.findtext("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", namespaces=NS).isdigit()
    assert root.findtext("cac:PayeeParty/cac:PartyName/cbc:Name", namespaces=NS)
    assert root.findtext("cbc:BuyerReference", namespaces=NS) == str(booking_id)  # no buyer reference given
    buyer_id = root.find("cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID", NS)
    assert buyer_id.text == api_world["delegation"].organisation_number.replace("-", "")
    check_totals(root, "inv", "InvoiceLine")
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal(TOTAL) / 100
    # Outside VAT: category O (BR-O-*): an exemption reason, no rate anywhere, no tax, no seller VAT identifier.
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category.findtext("cbc:ID", namespaces=NS) == "O" and category.find("cbc:Percent", NS) is None
    assert category.findtext("cbc:TaxExemptionReason", namespaces=NS)
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == 0
    assert all(x.find("cbc:Percent", NS) is None for x in root.iter(f"{{{einvoice.CAC}}}ClassifiedTaxCategory"))
    assert root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme", NS) is None
    seller = "cac:AccountingSupplierParty/cac:Party/"
    assert (root.findtext(seller + "cac:PartyIdentification/cbc:ID", namespaces=NS)  # BR-CO-26
            or root.findtext(seller + "cac:PartyLegalEntity/cbc:CompanyID", namespaces=NS))
    for scheme_id in root.xpath("//*[@schemeID='0007']"):  # Swedish organisation numbers: 10 digits, Luhn
        assert len(scheme_id.text) == 10 and luhn.is_valid(scheme_id.text), scheme_id.text
    for element in root.iter():  # PEPPOL-EN16931-R008: no empty elements
        assert len(element) or (element.text or "").strip(), element.tag


def test_vat_registered_host_lines_net_and_payable_all_in(make_booking, make_listing):
    listing = make_listing(price_ore=53700)  # 537 kr all-in a night: its net does not come out even
    profile = db.session.get(HostProfile, listing.host_id)
    db.session.execute(HostProfile.__table__.update().where(HostProfile.user_id == profile.user_id).values(
        organisation_number="556677-8899", vat_number="SE556677889901", vat_rate_pct=12))
    db.session.commit()
    booking = make_booking(listing=listing)
    root = etree.fromstring(einvoice.build(invoices.invoice_document(invoice_of(booking))))
    check_totals(root, "inv", "InvoiceLine")
    taxable = amount(root, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount")
    tax = amount(root, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount")
    assert tax == (taxable * 12 / 100).quantize(Decimal("0.01"))  # BR-CO-17
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal(booking.total_ore) / 100
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category.findtext("cbc:ID", namespaces=NS) == "S" and category.findtext("cbc:Percent", namespaces=NS) == "12"
    assert root.findtext("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID",
                         namespaces=NS) == "SE556677889901"  # BR-S-02
    assert root.findtext("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", namespaces=NS) == "5566778899"


def test_cancellation_makes_a_numbered_credit_note_referencing_its_invoice(make_booking, tmp_path):
    booking = make_booking()
    invoice = invoice_of(booking)
    actor = Actor(booking.coordinator_id, "coordinator")
    cancellations.cancel_by_guest(actor, booking.id, now=NOW)
    notes = db.session.scalars(select(CreditNote).where(CreditNote.invoice_id == invoice.id)).all()
    assert len(notes) == 1 and notes[0].amount_ore == TOTAL and notes[0].number == f"K-{YEAR}-000001"
    other = make_booking()
    cancellations.cancel_by_guest(Actor(other.coordinator_id, "coordinator"), other.id, now=NOW)
    assert invoice_of(other).credit_notes[0].number == f"K-{YEAR}-000002"  # consecutive, its own series
    xml = einvoice.build(invoices.credit_note_document(notes[0]))
    (tmp_path / "credit_note.xml").write_bytes(xml)
    root = etree.fromstring(xml)
    assert root.tag == f"{{{einvoice.NS_CREDIT_NOTE}}}CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    assert root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS) == invoice.number
    for path in MANDATORY:
        assert root.findtext(path, namespaces=NS), f"missing {path}"
    check_totals(root, "cn", "CreditNoteLine")
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal(TOTAL) / 100
    assert invoices.figures(invoice, NOW.date()).status == "credited"


# ---------------------------------------------------------------------------------------------
# The ledger: partial payment, over-payment, payment after a credit; payouts count money received
# ---------------------------------------------------------------------------------------------


def test_partial_over_and_after_credit_payments_in_the_ledger(api_world, make_admin, api_as, make_booking):
    admin_api = api_as(make_admin())
    partial, over, credited = (make_booking(bed_ids=[bed]) for bed in api_world["bed_ids"])
    share = 100000  # one bed, two nights
    day = NOW.date().isoformat()
    numbers = [b.invoice_number for b in (partial, over, credited)]
    assert host_share_ore(partial) == 0  # nothing received yet: the host has earned nothing of it
    answer = admin_api.post(f"/admin/invoices/{numbers[0]}/payments", json={"amount_ore": 40000, "paid_on": day})
    assert answer.status_code == 201, answer.get_json()
    assert (answer.get_json()["invoice"]["status"], answer.get_json()["invoice"]["balance_ore"]) == ("open", 60000)
    assert host_share_ore(db.session.get(Booking, partial.id)) == 40000  # only what was received
    admin_api.post(f"/admin/invoices/{numbers[1]}/payments", json={"amount_ore": share + 5000, "paid_on": day})
    cancellations.cancel_by_guest(Actor(credited.coordinator_id, "coordinator"), credited.id, now=NOW)
    admin_api.post(f"/admin/invoices/{numbers[2]}/payments", json={"amount_ore": share, "paid_on": day})
    ledger = admin_api.get("/admin/invoices").get_json()
    rows = {row["number"]: row for row in ledger["invoices"]}
    print("ledger", rows, ledger["sums"])
    assert (rows[numbers[0]]["status"], rows[numbers[0]]["paid_ore"], rows[numbers[0]]["balance_ore"]) == (
        "open", 40000, 60000)
    assert (rows[numbers[1]]["status"], rows[numbers[1]]["to_refund_ore"], rows[numbers[1]]["balance_ore"]) == (
        "paid", 5000, 0)
    assert (rows[numbers[2]]["status"], rows[numbers[2]]["credited_ore"], rows[numbers[2]]["to_refund_ore"]) == (
        "paid", share, share)
    assert host_share_ore(db.session.get(Booking, over.id)) == share  # the excess is never the host's
    assert host_share_ore(db.session.get(Booking, credited.id)) == 0
    assert ledger["sums"]["paid"]["to_refund_ore"] == 5000 + share and ledger["sums"]["open"]["count"] == 1
    only_paid = admin_api.get("/admin/invoices?status=paid").get_json()["invoices"]
    assert {row["number"] for row in only_paid} == set(numbers[1:])
    assert admin_api.get("/admin/invoices?status=nope").status_code == 422
    assert api_world["coord"].get("/admin/invoices").status_code == 403
    bad = admin_api.post(f"/admin/invoices/{numbers[0]}/payments", json={"amount_ore": 0, "paid_on": day})
    assert bad.status_code == 422
    assert admin_api.post("/admin/invoices/F-0-1/payments",
                          json={"amount_ore": 1, "paid_on": day}).status_code == 404


def test_guest_cancellation_of_a_partly_paid_invoice_refunds_nothing_and_credits(make_booking, make_admin):
    booking = make_booking()
    invoices.record_payment(admin(make_admin), booking.invoice_number, 50000, NOW.date(), now=NOW)
    cancelled = cancellations.cancel_by_guest(Actor(booking.coordinator_id, "coordinator"), booking.id, now=NOW)
    assert cancelled.refund_ore == 0 and cancelled.invoice_credited_ore == TOTAL  # no Stripe refund of bank money
    money = invoices.figures(invoice_of(booking), NOW.date())
    assert (money.status, money.to_refund_ore) == ("paid", 50000)  # the 500 kr received is shown as to pay back


# ---------------------------------------------------------------------------------------------
# BgMax
# ---------------------------------------------------------------------------------------------


def record(code: str, fields: list[tuple[int, int, str, str]]) -> str:
    """An 80-character BgMax record: fields (start, end, value, 'n' right-aligned zero-filled or 'a' left)."""
    line = [" "] * 80
    line[0:2] = code
    for start, end, value, kind in fields:
        width = end - start + 1
        text = value.rjust(width, "0") if kind == "n" else value.ljust(width)
        assert len(text) == width
        line[start - 1:end] = text
    return "".join(line)


def bgmax_file(payments: list[tuple[str, int, str]], *, paid_on: date, deposit_sum: int | None = None,
               counts: tuple[int, int, int, int] | None = None) -> str:
    """A BgMax file with one deposit of TK20 payments [(reference, öre, BGC serial)], written by field position."""
    lines = [record("01", [(3, 22, "BGMAX", "a"), (23, 24, "01", "n"), (25, 44, "20270301120000123456", "n"),
                           (45, 45, "P", "a")]),
             record("05", [(3, 12, "50501055", "n"), (23, 25, "SEK", "a")])]
    for reference, ore, serial in payments:
        lines.append(record("20", [(3, 12, "9912346", "n"), (13, 37, reference, "a"), (38, 55, str(ore), "n"),
                                   (56, 56, "2", "n"), (57, 57, "1", "n"), (58, 69, serial, "n"), (70, 70, "0", "n")]))
        lines.append(record("26", [(3, 37, "Region Gotland", "a")]))
    total = sum(p[1] for p in payments) if deposit_sum is None else deposit_sum
    lines.append(record("15", [(3, 37, "99123456789", "a"), (38, 45, paid_on.strftime("%Y%m%d"), "n"),
                               (46, 50, "1", "n"), (51, 68, str(total), "n"), (69, 71, "SEK", "a"),
                               (72, 79, str(len(payments)), "n"), (80, 80, "K", "a")]))
    n20, n21, n22, n15 = counts or (len(payments), 0, 0, 1)
    lines.append(record("70", [(3, 10, str(n20), "n"), (11, 18, str(n21), "n"), (19, 26, str(n22), "n"),
                               (27, 34, str(n15), "n")]))
    return "\r\n".join(lines) + "\r\n"


def test_bgmax_import_pays_by_ocr_once_and_lists_unknown_references(make_booking, runner, tmp_path):
    first, second = make_booking(), make_booking()
    content = bgmax_file([(invoice_of(first).ocr, TOTAL, "1001"), (invoice_of(second).ocr, 30000, "1002"),
                          ("1234567897", 12300, "1003")], paid_on=NOW.date())
    path = tmp_path / "bgmax.txt"
    path.write_bytes(content.encode("iso-8859-1"))
    result = runner.invoke(args=["invoices", "import-bgmax", str(path)])
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "Payments recorded: 2, already recorded: 0, unknown references: 1" in result.output
    assert "unknown    reference 1234567897" in result.output
    again = runner.invoke(args=["invoices", "import-bgmax", str(path)])
    print(again.output)
    assert "Payments recorded: 0, already recorded: 2, unknown references: 1" in again.output
    today = NOW.date()
    assert invoices.figures(invoice_of(first), today).status == "paid"
    partly = invoices.figures(invoice_of(second), today)
    assert (partly.status, partly.paid_ore, partly.balance_ore) == ("open", 30000, TOTAL - 30000)


def test_bgmax_files_that_do_not_add_up_are_refused(make_booking):
    ocr = invoice_of(make_booking()).ocr
    with pytest.raises(ValidationFailed) as counts:
        invoices.import_bgmax(bgmax_file([(ocr, 100, "1")], paid_on=NOW.date(), counts=(2, 0, 0, 1)))
    assert "slutposten" in counts.value.errors["file"][0]
    with pytest.raises(ValidationFailed) as sums:
        invoices.import_bgmax(bgmax_file([(ocr, 100, "1")], paid_on=NOW.date(), deposit_sum=101))
    assert "insättningen" in sums.value.errors["file"][0]
    with pytest.raises(ValidationFailed):
        invoices.import_bgmax("not a bgmax file\n")
    assert invoices.figures(invoice_of(db.session.scalar(select(Booking))), NOW.date()).paid_ore == 0


# ---------------------------------------------------------------------------------------------
# Reminders and cancellation for non-payment; the invoice e-mail
# ---------------------------------------------------------------------------------------------


def mails_to(address: str) -> list[OutboxEmail]:
    return list(db.session.scalars(select(OutboxEmail).where(OutboxEmail.to_address == address)
                                   .order_by(OutboxEmail.id)))


def test_invoice_mailed_to_the_invoice_address_with_its_pdf(api_world):
    api_world["coord"].patch(f"/delegations/{api_world['delegation'].id}", json={"invoice_email": "ekonomi@org.se"})
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()["id"]
    number = db.session.get(Booking, booking_id).invoice_number
    sent = mails_to("ekonomi@org.se")
    assert len(sent) == 1 and number in sent[0].subject and sent[0].attachment_name == f"{number}.pdf"
    assert invoice_of(db.session.get(Booking, booking_id)).ocr in sent[0].body_text


def test_overdue_reminders_once_per_step_then_unpaid_booking_cancelled(make_booking):
    booking = make_booking()
    invoice = invoice_of(booking)
    address = db.session.get(Booking, booking.id).delegation.coordinator.email
    before = len(mails_to(address))
    assert invoices.remind_due(now=NOW) == {"reminded": [], "cancelled": []}
    late = NOW + timedelta(days=(invoice.due_on - NOW.date()).days + 2)
    assert invoices.remind_due(now=late)["reminded"] == [invoice.number]
    assert invoices.remind_due(now=late)["reminded"] == []  # once per step
    assert len(mails_to(address)) == before + 1
    assert invoices.figures(invoice, late.date()).status == "overdue"
    later = late + timedelta(days=8)
    assert invoices.remind_due(now=later)["reminded"] == [invoice.number]  # the second step
    gone = later + timedelta(days=14)
    assert invoices.remind_due(now=gone)["cancelled"] == [invoice.number]
    db.session.expire_all()
    cancelled = db.session.get(Booking, booking.id)
    assert cancelled.status == "cancelled_by_guest" and cancelled.cancel_reason == "unpaid_invoice"
    assert not cancelled.live_lines  # the beds are free again
    assert invoices.remind_due(now=gone)["cancelled"] == []


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def test_pages_link_the_invoice_and_only_its_parties_get_it(app, make_booking, make_user):
    from app.models import User
    booking = make_booking()
    coordinator = db.session.get(User, booking.coordinator_id)
    browser = signed_in(app, coordinator)
    page = browser.get(f"/coordinator/bookings/{booking.id}").get_data(as_text=True)
    assert f"/bookings/{booking.id}/invoice.pdf" in page and f"/bookings/{booking.id}/invoice.xml" in page
    assert f'<dd class="ocr">{invoice_of(booking).ocr}</dd>' in page
    pdf = browser.get(f"/bookings/{booking.id}/invoice.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert browser.get(f"/bookings/{booking.id}/invoice.xml").status_code == 200
    stranger = signed_in(app, make_user("coordinator"))
    assert stranger.get(f"/bookings/{booking.id}/invoice.pdf").status_code == 404
    host = signed_in(app, db.session.get(User, booking.host_id))
    assert f"/bookings/{booking.id}/invoice.pdf" in host.get(f"/host/bookings/{booking.id}").get_data(as_text=True)
    assert host.get(f"/bookings/{booking.id}/invoice.pdf").status_code == 200


def test_admin_ledger_page_records_a_payment(app, client, admin_login, make_booking):
    booking = make_booking()
    admin_login()
    page = client.get("/admin/payments/invoices")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and booking.invoice_number in html
    response = client.post(f"/admin/payments/invoices/{booking.invoice_number}/payments", data={
        "csrf_token": csrf_from(page), "amount": "500", "paid_on": NOW.date().isoformat()})
    assert response.status_code == 302
    money = invoices.figures(invoice_of(booking), NOW.date())
    assert (money.paid_ore, money.status) == (50000, "open")
    assert "1\u00a0500 kr" in client.get("/admin/payments/invoices?status=open").get_data(as_text=True)


def test_delegation_form_takes_invoice_details(app, make_user):
    from app.models import Delegation
    browser = signed_in(app, make_user("coordinator"))
    page = browser.get("/coordinator/delegations/new")
    response = browser.post("/coordinator/delegations/new", data={
        "csrf_token": csrf_from(page), "name": "Förening", "organisation_number": "802000-1239",
        "buyer_reference": "Kst 4411", "invoice_email": "ekonomi@forening.se", "address": "Gatan 1",
        "postal_code": "11122", "city": "Stockholm"})
    assert response.status_code == 302, response.get_data(as_text=True)
    delegation = db.session.scalar(select(Delegation).where(Delegation.name == "Förening"))
    assert (delegation.buyer_reference, delegation.postal_code, delegation.city) == ("Kst 4411", "111 22", "Stockholm")


def test_season_decides_when_an_unpaid_invoice_booking_is_cancelled(make_booking, make_admin, api_as):
    booking = make_booking()
    invoice = invoice_of(booking)
    admin_api = api_as(make_admin())
    assert admin_api.patch(f"/admin/seasons/{YEAR}", json={"unpaid_invoice_cancel_days": 5}).status_code == 422
    changed = admin_api.patch(f"/admin/seasons/{YEAR}", json={"unpaid_invoice_cancel_days": 30})
    assert changed.status_code == 200 and changed.get_json()["unpaid_invoice_cancel_days"] == 30
    day_22 = NOW + timedelta(days=(invoice.due_on - NOW.date()).days + 22)
    assert invoices.remind_due(now=day_22)["cancelled"] == []  # 14 days would have cancelled it; 30 does not
    invoices.record_payment(admin(make_admin), invoice.number, 100, day_22.date(), now=day_22)
    day_40 = day_22 + timedelta(days=18)
    assert invoices.remind_due(now=day_40)["cancelled"] == []  # something was paid: reminded, never cancelled
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "confirmed"


def test_migration_backfills_invoices_and_credit_notes_of_existing_invoice_bookings(tmp_path):
    """0018 gives every invoice booking made before it its invoice (with its OCR) and a credit note for what
    cancellations had already credited (SQLite file; the migration's SQL is the same on PostgreSQL)."""
    import sqlite3

    from flask_migrate import upgrade

    from app import create_app
    from tests.live_server import ROOT
    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="0016_worker")
        db.engine.dispose()
    raw = sqlite3.connect(tmp_path / "old.db")
    columns = ("id, delegation_id, season_id, listing_id, host_id, coordinator_id, status, payment_method, total_ore, "
               "refund_ore, invoice_credited_ore, check_in, check_out, created_at, invoice_number, invoice_due_on, "
               "kind")
    raw.execute(f"INSERT INTO bookings ({columns}) VALUES (7, 1, 1, 1, 2, 3, 'confirmed', 'invoice', 200000, 0, 0, "
                f"'{YEAR}-06-21', '{YEAR}-06-23', '{YEAR - 1}-12-01 10:00:00.000000', 'F-{YEAR}-000004', "
                f"'{YEAR}-01-01', 'booking')")
    raw.execute(f"INSERT INTO bookings ({columns}) VALUES (8, 1, 1, 1, 2, 3, 'cancelled_by_guest', 'invoice', 100000, "
                f"0, 50000, '{YEAR}-06-21', '{YEAR}-06-23', '{YEAR - 1}-12-02 10:00:00.000000', 'F-{YEAR}-000005', "
                f"'{YEAR}-01-02', 'booking')")
    raw.commit()
    raw.close()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        rows = db.session.execute(select(Invoice.booking_id, Invoice.number, Invoice.ocr, Invoice.amount_ore,
                                         Invoice.issued_on, Invoice.due_on).order_by(Invoice.id)).all()
        notes = db.session.execute(select(CreditNote.number, CreditNote.amount_ore)).all()
        db.engine.dispose()
    assert [tuple(r) for r in rows] == [
        (7, f"F-{YEAR}-000004", ocr_for_invoice_number(f"F-{YEAR}-000004"), 200000, date(YEAR - 1, 12, 1),
         date(YEAR, 1, 1)),
        (8, f"F-{YEAR}-000005", ocr_for_invoice_number(f"F-{YEAR}-000005"), 100000, date(YEAR - 1, 12, 2),
         date(YEAR, 1, 2))]
    assert [tuple(n) for n in notes] == [(f"K-{YEAR}-000001", 50000)]


def test_credit_note_mailed_with_its_pdf_attached_when_sent(app, make_booking):
    from app.services import mail
    booking = make_booking()
    cancellations.cancel_by_guest(Actor(booking.coordinator_id, "coordinator"), booking.id, now=NOW)
    note = invoice_of(booking).credit_notes[0]
    address = db.session.get(Booking, booking.id).delegation.coordinator.email
    sent = [m for m in mails_to(address) if note.number in m.subject]
    assert len(sent) == 1 and sent[0].attachment_name == f"{note.number}.pdf"
    mail.send_pending(now=NOW)
    files = list((Path(app.config["MAIL_OUTBOX_DIR"])).glob("*"))
    assert any(note.number.encode() in f.read_bytes() and b"application/pdf" in f.read_bytes() for f in files)


def test_host_profile_page_takes_organisation_and_vat_details(client, login, make_user):
    from tests.test_web_host import _profile_form
    host = make_user("host")
    login(host)
    page = client.get("/host/profile")
    assert page.status_code == 200 and 'name="vat_rate_pct"' in page.get_data(as_text=True)
    response = client.post("/host/profile", data={**_profile_form(), "organisation_number": "556677-8899",
                                                  "vat_number": "SE556677889901", "vat_rate_pct": "12",
                                                  "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    profile = db.session.get(HostProfile, host.id)
    assert (profile.organisation_number, profile.vat_number, profile.vat_rate_pct) == (
        "556677-8899", "SE556677889901", 12)


def test_the_worker_sends_the_invoice_reminders(make_booking):
    """The worker's remind_invoices job runs invoices.remind_due: an overdue invoice is reminded once per step."""
    from app.services import jobs

    invoice = invoice_of(make_booking())
    job = next(job for job in jobs.PERIODIC if job.name == "remind_invoices")
    late = NOW + timedelta(days=(invoice.due_on - NOW.date()).days + 2)
    assert job.run_once(now=late) == f"reminded 1: {invoice.number}"
    assert job.run_once(now=late) == ""
