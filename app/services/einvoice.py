"""The e-invoice: Peppol BIS Billing 3.0 (UBL 2.1) Invoice and CreditNote, built with lxml.

What the document says comes from app.services.invoices (Document); this module only writes it in UBL, in the
element order the UBL 2.1 schema requires. Choices, for a Swedish seller that may be a private person:

- VAT: a host outside VAT (no VAT rate on the profile) lets accommodation outside the scope of VAT: category
  `O` ("Not subject to VAT"; BR-O-*: no seller VAT identifier, no rate, tax 0, an exemption reason). Category
  `E` would need the seller's VAT identifier (BR-E-02), which a private person does not have. A VAT-registered
  host's lines are `S` at their rate (BR-S-*), net; VAT is added on the sum (BR-CO-17) and the rounding amount
  (BT-114) makes the payable the all-in total the buyer agreed to.
- Electronic addresses (PEPPOL-EN16931-R010/R020): scheme 0007 (Swedish organisation number, digits only). A
  seller without an organisation number (a private host) is reached through the platform, the payment agent.
- Seller identification (BR-CO-26): the platform's own id of the host (BT-29) always; the organisation number as
  the legal registration identifier (BT-30, scheme 0007) when the host gave one (a personal identity number is
  shown on the PDF only, never put in the e-invoice as an identifier).
- Payment: credit transfer (code 30) to the platform's bankgiro (`SE:BANKGIRO`, digits only, the Swedish national
  rules), the OCR reference as PaymentID; the platform is the PayeeParty (BG-10).
"""
from __future__ import annotations

from decimal import Decimal

from lxml import etree

from app.services.invoices import Document

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CURRENCY = "SEK"
ORGANISATION_SCHEME = "0007"  # ISO 6523 ICD: Swedish organisation number
OUTSIDE_VAT_REASON = "Uthyrning av privatbostad, utanför mervärdesskattens tillämpningsområde (ej momspliktig)"


def money(ore: int) -> str:
    return str((Decimal(ore) / 100).quantize(Decimal("0.01")))


def digits(value: str | None) -> str:
    return "".join(ch for ch in (value or "") if ch.isdigit())


def is_organisation_number(value: str | None) -> bool:
    """An organisation number proper (third digit at least 2), not a personal identity number."""
    number = digits(value)
    return len(number) == 10 and number[2] >= "2"


class _Builder:
    def __init__(self, root_ns: str, root_name: str) -> None:
        self.root = etree.Element(f"{{{root_ns}}}{root_name}", nsmap={None: root_ns, "cac": CAC, "cbc": CBC})

    @staticmethod
    def cbc(parent, tag: str, text: str | None, **attrs: str):
        element = etree.SubElement(parent, f"{{{CBC}}}{tag}", **attrs)
        element.text = text
        return element

    @staticmethod
    def cac(parent, tag: str):
        return etree.SubElement(parent, f"{{{CAC}}}{tag}")


def _tax_category(b: _Builder, parent, name: str, rate: int | None, *, reason: bool) -> None:
    category = b.cac(parent, name)
    if rate:
        b.cbc(category, "ID", "S")
        b.cbc(category, "Percent", f"{rate}")
    else:
        b.cbc(category, "ID", "O")
        if reason:
            b.cbc(category, "TaxExemptionReason", OUTSIDE_VAT_REASON)
    scheme = b.cac(category, "TaxScheme")
    b.cbc(scheme, "ID", "VAT")


def _party(b: _Builder, parent, party: dict, *, seller: bool, platform: dict, rate: int | None) -> None:
    node = b.cac(parent, "Party")
    own_number = is_organisation_number(party.get("organisation_number"))
    endpoint = digits(party["organisation_number"] if own_number else platform["organisation_number"])
    b.cbc(node, "EndpointID", endpoint, schemeID=ORGANISATION_SCHEME)
    if seller:  # BT-29: the seller identifier, so that a host without an organisation number is identified (BR-CO-26)
        identification = b.cac(node, "PartyIdentification")
        b.cbc(identification, "ID", party["id"])
    name = b.cac(node, "PartyName")
    b.cbc(name, "Name", party["name"])
    address = b.cac(node, "PostalAddress")
    if party.get("address"):
        b.cbc(address, "StreetName", party["address"])
    if party.get("city"):
        b.cbc(address, "CityName", party["city"])
    if party.get("postal_code"):
        b.cbc(address, "PostalZone", party["postal_code"])
    country = b.cac(address, "Country")
    b.cbc(country, "IdentificationCode", "SE")
    if seller and rate and party.get("vat_number"):
        tax = b.cac(node, "PartyTaxScheme")
        b.cbc(tax, "CompanyID", party["vat_number"])
        scheme = b.cac(tax, "TaxScheme")
        b.cbc(scheme, "ID", "VAT")
    legal = b.cac(node, "PartyLegalEntity")
    b.cbc(legal, "RegistrationName", party["name"])
    if own_number:
        b.cbc(legal, "CompanyID", digits(party["organisation_number"]), schemeID=ORGANISATION_SCHEME)
    if not seller and party.get("email"):
        contact = b.cac(node, "Contact")
        if party.get("contact"):
            b.cbc(contact, "Name", party["contact"])
        b.cbc(contact, "ElectronicMail", party["email"])


def build(doc: Document) -> bytes:
    """The UBL document (Invoice or CreditNote) as UTF-8 bytes with an XML declaration."""
    credit = doc.kind == "credit_note"
    b = _Builder(NS_CREDIT_NOTE if credit else NS_INVOICE, "CreditNote" if credit else "Invoice")
    root, cbc, cac = b.root, b.cbc, b.cac
    cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    cbc(root, "ProfileID", PROFILE_ID)
    cbc(root, "ID", doc.number)
    cbc(root, "IssueDate", doc.issued_on.isoformat())
    if not credit and doc.due_on is not None:
        cbc(root, "DueDate", doc.due_on.isoformat())
    cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
    cbc(root, "Note", f"Bokning {doc.booking_id}. Betala till bankgiro {doc.payee['bankgiro']} med OCR {doc.ocr}.")
    cbc(root, "DocumentCurrencyCode", CURRENCY)
    cbc(root, "BuyerReference", doc.buyer["reference"])
    if credit:
        billing = cac(root, "BillingReference")
        reference = cac(billing, "InvoiceDocumentReference")
        cbc(reference, "ID", doc.invoice_number)
        cbc(reference, "IssueDate", doc.invoice_issued_on.isoformat())
    supplier = cac(root, "AccountingSupplierParty")
    _party(b, supplier, doc.seller, seller=True, platform=doc.payee, rate=doc.vat_rate_pct)
    customer = cac(root, "AccountingCustomerParty")
    _party(b, customer, doc.buyer, seller=False, platform=doc.payee, rate=doc.vat_rate_pct)
    payee = cac(root, "PayeeParty")
    identification = cac(payee, "PartyIdentification")
    cbc(identification, "ID", digits(doc.payee["organisation_number"]), schemeID=ORGANISATION_SCHEME)
    payee_name = cac(payee, "PartyName")
    cbc(payee_name, "Name", doc.payee["name"])
    payee_legal = cac(payee, "PartyLegalEntity")
    cbc(payee_legal, "CompanyID", digits(doc.payee["organisation_number"]), schemeID=ORGANISATION_SCHEME)
    if not credit:
        means = cac(root, "PaymentMeans")
        cbc(means, "PaymentMeansCode", "30", name="Credit transfer")
        cbc(means, "PaymentID", doc.ocr)
        account = cac(means, "PayeeFinancialAccount")
        cbc(account, "ID", digits(doc.payee["bankgiro"]))
        cbc(account, "Name", doc.payee["name"])
        branch = cac(account, "FinancialInstitutionBranch")
        cbc(branch, "ID", "SE:BANKGIRO")
        terms = cac(root, "PaymentTerms")
        cbc(terms, "Note", f"Förfaller {doc.due_on.isoformat() if doc.due_on else ''}. Ange OCR {doc.ocr}.")
    totals = doc.totals
    tax_total = cac(root, "TaxTotal")
    cbc(tax_total, "TaxAmount", money(totals.vat_ore), currencyID=CURRENCY)
    subtotal = cac(tax_total, "TaxSubtotal")
    cbc(subtotal, "TaxableAmount", money(totals.line_extension_ore), currencyID=CURRENCY)
    cbc(subtotal, "TaxAmount", money(totals.vat_ore), currencyID=CURRENCY)
    _tax_category(b, subtotal, "TaxCategory", doc.vat_rate_pct, reason=True)
    monetary = cac(root, "LegalMonetaryTotal")
    cbc(monetary, "LineExtensionAmount", money(totals.line_extension_ore), currencyID=CURRENCY)
    cbc(monetary, "TaxExclusiveAmount", money(totals.line_extension_ore), currencyID=CURRENCY)
    cbc(monetary, "TaxInclusiveAmount", money(totals.tax_inclusive_ore), currencyID=CURRENCY)
    if totals.rounding_ore:
        cbc(monetary, "PayableRoundingAmount", money(totals.rounding_ore), currencyID=CURRENCY)
    cbc(monetary, "PayableAmount", money(totals.payable_ore), currencyID=CURRENCY)
    for index, line in enumerate(doc.lines, start=1):
        node = cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        cbc(node, "ID", str(index))
        unit = "C62" if credit else "DAY"
        cbc(node, "CreditedQuantity" if credit else "InvoicedQuantity", str(line.quantity), unitCode=unit)
        cbc(node, "LineExtensionAmount", money(line.net_ore), currencyID=CURRENCY)
        if line.first_night:
            period = cac(node, "InvoicePeriod")
            cbc(period, "StartDate", line.first_night)
            cbc(period, "EndDate", line.last_night)
        item = cac(node, "Item")
        name = line.bed if credit else f"Logi, {line.bed}"
        cbc(item, "Name", name[:200])
        _tax_category(b, item, "ClassifiedTaxCategory", doc.vat_rate_pct, reason=False)
        price = cac(node, "Price")
        cbc(price, "PriceAmount", money(line.unit_net_ore), currencyID=CURRENCY)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
