"""The request packet attached to a renewal e-mail, and reading a returned form back.

A packet is a short cover letter (reportlab) plus the form to fill in. For a document the state
issues (Florida's annual resale certificate, an exemption number, letter or card: a state-issued form
of the rules pack) there is nothing the customer can fill in: the packet is the cover letter alone,
asking for a copy of the current document and saying where the customer gets it. Otherwise the form is:

- the state's **official** fill-in PDF when the company keeps it in its forms library
  (``ecms forms add``): the seller's part and what is known of the buyer are filled in with
  PyMuPDF through the rules pack's ``pdf_field_map`` (PDF field name -> certificate field);
- otherwise a **generated** fill-in certificate (reportlab AcroForm) whose fields are named after
  the rules pack's certificate fields, carrying every field the state requires for the reason.

Both PDFs carry the request token in their metadata (keywords ``ecms-request-token=...``); the
form also carries it in a hidden read-only field :data:`TOKEN_FIELD`, which survives a customer
filling and saving the form in a PDF reader. :func:`read_form` reads a returned form: the token,
the form code and the field values mapped back to certificate fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pymupdf as _pymupdf

from ecms_desktop.rules import RulesPack
from ecms_desktop.rules.pack import FormRule, UnknownFormError
from ecms_desktop.services.core.errors import DocumentError
from ecms_desktop.services.documents.results import FormFields
from ecms_desktop.services.documents.shared_sandbox import read_form_fields

#: Hidden field holding the request token in every form we send.
TOKEN_FIELD = "ecms_request_token"
#: Hidden field naming the form code in a generated form.
FORM_FIELD = "ecms_form_code"
TOKEN_RE = re.compile(r"\bRQ-[0-9A-Z]{10}\b")
pymupdf: Any = _pymupdf  # the bindings are not typed well enough for mypy
_KEYWORDS_RE = re.compile(r"ecms-request-token=(RQ-[0-9A-Z]{10})")
_FORM_KW_RE = re.compile(r"ecms-form=([A-Z0-9-]+)")
#: Field types whose value is the customer's text (check boxes and buttons are not read back).
_VALUE_FIELD_TYPES = frozenset({"Text", "ComboBox", "ListBox"})

#: Certificate fields we fill in for the customer; everything else (signature, dates, reasons,
#: checkboxes) is the customer's to complete.
PREFILL_FIELDS = ("seller_name", "seller_address", "purchaser_name", "purchaser_address",
                  "purchaser_tax_id", "purchaser_ein", "business_description", "property_description")
_ADDRESS_FIELDS = ("seller_address", "purchaser_address")

#: Fields every generated form carries in addition to those the state requires.
_GENERATED_BASE = ("purchaser_name", "purchaser_address", "purchaser_tax_id", "business_description",
                   "property_description", "exempt_reason", "signer_name", "signer_title", "signed_date",
                   "signature")
_SELLER_FIELDS = ("seller_name", "seller_address")


@dataclass(frozen=True)
class Address:
    """A postal address in parts, so that forms with separate street/city/state/ZIP boxes fill right."""

    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""

    def city_line(self) -> str:
        tail = " ".join(p for p in (self.state, self.postal_code) if p)
        return ", ".join(p for p in (self.city, tail) if p)

    def one_line(self) -> str:
        return ", ".join(p for p in (self.street, self.city_line()) if p)


@dataclass(frozen=True)
class PacketData:
    """Everything the packet says: who asks whom for which certificate."""

    token: str
    form_code: str
    state: str
    state_name: str
    exempt_reason: str
    kind: str  # request, reminder
    company_name: str
    company_legal_name: str
    company_address: Address
    company_registration: str
    company_reply_to: str
    brand_color: str
    customer_name: str
    customer_number: str
    purchaser_address: Address
    #: The certificate being renewed; None for a first request (no certificate for the state yet).
    certificate_id: int | None
    certificate_number: str = ""
    expiry: dt.date | None = None
    as_of: dt.date | None = None
    #: Known certificate values for the buyer part (purchaser_tax_id, business_description ...).
    known: Mapping[str, str] = field(default_factory=dict)
    logo: bytes | None = None

    def values(self) -> dict[str, str]:
        """Certificate field -> text to prefill."""
        out = {k: v for k, v in self.known.items() if v}
        out["seller_name"] = self.company_legal_name
        out["seller_address"] = self.company_address.one_line()
        out.setdefault("purchaser_name", self.customer_name)
        if self.purchaser_address.one_line():
            out["purchaser_address"] = self.purchaser_address.one_line()
        return out


@dataclass(frozen=True)
class PacketFile:
    name: str
    data: bytes
    media_type: str = "application/pdf"


@dataclass(frozen=True)
class Packet:
    """The files to attach: cover letter first, then the form. ``form_source`` is ``official``
    (from the forms library), ``generated`` or ``state_issued`` (no form: the letter asks for a copy of
    the document the state issues)."""

    files: tuple[PacketFile, ...]
    form_source: str

    @property
    def form_file(self) -> PacketFile | None:
        """The form to fill in (None when the state issues the document)."""
        return None if self.form_source == STATE_ISSUED else self.files[-1]


#: ``Packet.form_source`` of a request for a document the state issues.
STATE_ISSUED = "state_issued"


def document_request(form: FormRule) -> dict[str, str] | None:
    """What a request for a state-issued document says (None for a form the customer fills in): the
    document, who issues it, how the customer gets it and where (from the rules pack)."""
    doc = form.state_document
    if not form.is_state_issued or doc is None:
        return None
    return {"code": form.code, "name": doc.document, "issued_by": doc.issued_by, "obtain": doc.obtain,
            "obtain_url": doc.obtain_url or ""}


# -- building ---------------------------------------------------------------------------------------


def build_packet(data: PacketData, rules: RulesPack, official_pdf: bytes | None = None) -> Packet:
    """The cover letter and the form (official when given, else generated) for one request."""
    form = _form_rule(rules, data.form_code)
    safe_customer = re.sub(r"[^A-Za-z0-9]+", "-", data.customer_number).strip("-") or "customer"
    letter = "Certificate-request" if data.certificate_id is None else "Renewal-request"  # first request, or renewal
    cover = PacketFile(f"{letter}-{data.token}.pdf", cover_letter_pdf(data, form))
    if form.is_state_issued:  # nothing to fill in: the letter asks for the current document
        return Packet((cover,), STATE_ISSUED)
    if official_pdf is not None:
        pdf = fill_official_form(official_pdf, form, data)
        return Packet((cover, PacketFile(f"{form.code}-{safe_customer}.pdf", pdf)), "official")
    pdf = generated_form_pdf(data, rules)
    return Packet((cover, PacketFile(f"{form.code}-{data.state}-{safe_customer}-fill-in.pdf", pdf)),
                  "generated")


def _form_rule(rules: RulesPack, code: str) -> FormRule:
    try:
        return rules.form(code)
    except UnknownFormError as exc:
        raise DocumentError(f"The request names form {code!r}, which the rules pack does not know.") from exc


def _keywords(data: PacketData) -> str:
    return f"ecms-request-token={data.token}; ecms-form={data.form_code}; ecms-state={data.state}"


def _hex(color: str) -> tuple[float, float, float]:
    text = color.lstrip("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", text):
        text = "1F4E79"
    return tuple(int(text[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def cover_letter_pdf(data: PacketData, form: FormRule) -> bytes:
    """A one-page letter on the company's letterhead asking for the renewed certificate."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter, invariant=True)
    c.setTitle(f"Renewal request {data.token}")
    c.setAuthor(data.company_legal_name)
    c.setSubject(f"Exemption certificate renewal request {data.token}")
    c.setKeywords(_keywords(data))
    width, height = letter
    r, g, b = _hex(data.brand_color)
    c.setFillColorRGB(r, g, b)
    c.rect(0, height - 72, width, 72, stroke=0, fill=1)
    x_text = 116 if data.logo else 54  # the logo is placed by PyMuPDF below (fast)
    c.setFillColorRGB(1, 1, 1)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(x_text, height - 42, data.company_legal_name[:70])
    c.setFont("Helvetica", 9)
    c.drawString(x_text, height - 58, data.company_address.one_line()[:110])
    c.setFillColorRGB(0, 0, 0)

    y = height - 110
    c.setFont("Helvetica", 10)
    day = data.as_of or dt.date.today()
    c.drawString(54, y, day.strftime("%B %d, %Y").replace(" 0", " "))
    c.drawRightString(width - 54, y, f"Reference {data.token}")
    y -= 28
    for line in (data.customer_name, data.purchaser_address.street, data.purchaser_address.city_line(),
                 f"Customer number {data.customer_number}"):
        if line:
            c.drawString(54, y, line[:90])
            y -= 14
    y -= 14
    c.setFont("Helvetica-Bold", 12)
    title = "Reminder: " if data.kind == "reminder" else ""
    first = data.certificate_id is None
    what = "Your" if first else "Renewal of your"
    c.drawString(54, y, f"{title}{what} {data.state_name} sales tax exemption certificate")
    y -= 22
    expiry = data.expiry.isoformat() if data.expiry else "no date"
    expired = bool(data.expiry and data.as_of and data.expiry < data.as_of)
    on_file = (f"Our records show no {data.state_name} exemption certificate on file for your account, although "
               f"your purchases are delivered to {data.state_name}." if first else
               f"Our records show that the {data.state_name} exemption certificate on file for your account "
               f"(form {form.code}{', number ' + data.certificate_number if data.certificate_number else ''}) "
               + (f"expired on {expiry}." if expired else f"expires on {expiry}."))
    document = document_request(form)
    ask = (f"Please complete the enclosed {form.code} ({form.name}), sign it and return it by replying to "
           "our e-mail, or send it to " + (data.company_reply_to or "us") + ". We have filled in our part "
           "(the seller) and what we know of yours; please check every field and complete the rest.")
    if document is not None:
        where = f" ({document['obtain_url']})" if document["obtain_url"] else ""
        ask = (f"The {document['name']} is issued by the {document['issued_by']}: there is no form to fill in. "
               f"Please send us a copy of your current one by replying to our e-mail, or send it to "
               f"{data.company_reply_to or 'us'}. How to get it: {document['obtain']}{where}")
    paragraphs = [
        f"Dear {data.customer_name},",
        on_file,
        ask,
        (f"Until we receive a valid certificate, we are required to charge sales tax on purchases delivered "
         f"to {data.state_name}." if first else
         "Until we receive a valid certificate after the expiry date, we are required to charge sales "
         f"tax on purchases delivered to {data.state_name}."),
        f"Please keep the reference {data.token} in the subject of your reply so that we can match it.",
        "Thank you,",
        data.company_legal_name,
    ]
    c.setFont("Helvetica", 10.5)
    for para in paragraphs:
        for line in simpleSplit(para, "Helvetica", 10.5, width - 108):
            c.drawString(54, y, line)
            y -= 14
        y -= 8
    c.setFont("Helvetica", 8)
    c.setFillColorRGB(0.4, 0.4, 0.4)
    reg = f"  Seller's {data.state} registration: {data.company_registration}." if data.company_registration else ""
    of = "a first certificate" if first else f"certificate {data.certificate_id}"
    c.drawString(54, 40, f"Request {data.token} for {of}, {data.state}.{reg}")
    c.showPage()
    c.save()
    pdf = buf.getvalue()
    if data.logo:
        pdf = _with_logo(pdf, data.logo)
    return pdf


def _with_logo(pdf: bytes, logo: bytes) -> bytes:
    """Place the company logo on the letterhead. PyMuPDF embeds it in C; reportlab's pure-Python
    image encoding cost ~0.3 s per letter. A logo that cannot be read is left out."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    try:
        doc[0].insert_image(pymupdf.Rect(54, 10, 106, 62), stream=logo, keep_proportion=True)
        return doc.tobytes(deflate=True)
    except Exception:
        return pdf
    finally:
        doc.close()


def _address_part(pdf_field: str, address: Address) -> str:
    """Which part of an address a PDF box wants, judged from its name.

    The rules pack maps street, city, state and ZIP boxes all to ``*_address``; forms name the
    boxes like "Purchaser city, state, ZIP", "purchaser zip code", "City (2)", "Street".
    """
    name = pdf_field.casefold()
    has_city, has_state, has_zip = "city" in name, "state" in name, "zip" in name
    if has_city and (has_state or has_zip):
        return address.city_line()
    if has_city:
        return address.city
    if has_zip:
        return address.postal_code
    if has_state and "statement" not in name:
        return address.state
    return address.street


def fill_official_form(pdf: bytes, form: FormRule, data: PacketData) -> bytes:
    """The official fill-in PDF with the seller's part and the known buyer values filled in, the
    token in a hidden field and in the metadata."""
    if not form.pdf_field_map:
        raise DocumentError(f"The rules pack has no field map for {form.code}: the official form cannot be "
                            "filled in (a generated fill-in form is used instead when it is removed).")
    values = data.values()
    addresses = {"seller_address": data.company_address, "purchaser_address": data.purchaser_address}
    try:
        doc = pymupdf.open(stream=pdf, filetype="pdf")
    except Exception as exc:
        raise DocumentError(f"The stored {form.code} form cannot be opened: {exc}") from exc
    try:
        for page in doc:
            clear: list[int] = []
            done_on_page: set[str] = set()
            for widget in page.widgets():
                cert_field = form.pdf_field_map.get(widget.field_name or "")
                if cert_field is None or widget.field_type != pymupdf.PDF_WIDGET_TYPE_TEXT:
                    continue
                if cert_field not in PREFILL_FIELDS:
                    # The customer's part starts empty (a stored copy may hold leftovers, e.g. a
                    # signer-name box padded with "PHONE: EMAIL:").
                    if widget.field_value:
                        clear.append(widget.xref)
                    continue
                if cert_field in _ADDRESS_FIELDS:
                    value = _address_part(widget.field_name, addresses[cert_field])
                else:
                    # Two boxes on one page for the same field (e.g. NY "engaged in the business of"
                    # and "principally sell"): fill the first, leave the other to the customer.
                    if cert_field in done_on_page:
                        continue
                    value = values.get(cert_field, "")
                done_on_page.add(cert_field)
                if not value:
                    continue
                widget.field_value = value
                widget.update()
            for xref in clear:  # pymupdf ignores an empty field_value: set /V directly
                doc.xref_set_key(xref, "V", "()")
            for widget in page.widgets():
                if widget.xref in clear:
                    widget.update()
        _add_token_field(doc, data.token)
        meta = dict(doc.metadata or {})
        meta["keywords"] = _keywords(data)
        meta["subject"] = f"Renewal request {data.token}"
        doc.set_metadata({k: v for k, v in meta.items() if k in (
            "author", "producer", "creator", "title", "format", "encryption", "creationDate", "modDate",
            "subject", "keywords", "trapped")})
        return doc.tobytes(garbage=1, deflate=True)
    finally:
        doc.close()


def _add_token_field(doc: Any, token: str) -> None:
    page = doc[0]
    widget = pymupdf.Widget()
    widget.field_type = pymupdf.PDF_WIDGET_TYPE_TEXT
    widget.field_name = TOKEN_FIELD
    widget.field_value = token
    widget.field_flags = pymupdf.PDF_FIELD_IS_READ_ONLY
    widget.rect = pymupdf.Rect(1, 1, 2, 2)
    annot = page.add_widget(widget)
    doc.xref_set_key(annot.xref, "F", str(pymupdf.PDF_ANNOT_IS_HIDDEN))


def generated_fields(rules: RulesPack, form_code: str, state: str, reason: str) -> tuple[str, ...]:
    """The certificate fields a generated form for ``state`` carries: the form's required fields
    for the reason, what the state's acceptance demands, and the basics every certificate needs."""
    form = _form_rule(rules, form_code)
    wanted = list(form.fields_for(reason))
    with contextlib.suppress(Exception):
        wanted += list(rules.form_acceptance(state, form.code, reason).requires_fields)
    wanted += list(_GENERATED_BASE)
    known = set(rules.field_names)
    out: list[str] = []
    for name in (*_SELLER_FIELDS, *wanted):
        if name in known and name not in out:
            out.append(name)
    order = {name: i for i, name in enumerate(rules.field_names)}
    return tuple(sorted(out, key=lambda n: (n not in _SELLER_FIELDS, order.get(n, len(order)))))


def generated_form_pdf(data: PacketData, rules: RulesPack) -> bytes:
    """A fill-in certificate (AcroForm) for the state: seller part filled, buyer part with the
    known values, one text field per certificate field, named after the field."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    form = _form_rule(rules, data.form_code)
    labels = {f.name: f.label for f in rules.fields}
    names = generated_fields(rules, form.code, data.state, data.exempt_reason)
    values = data.values()
    values.setdefault("exempt_reason", data.exempt_reason)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter, invariant=True)
    c.setTitle(f"{form.code} fill-in certificate, {data.state_name}")
    c.setAuthor(data.company_legal_name)
    c.setSubject(f"Renewal request {data.token}")
    c.setKeywords(_keywords(data))
    width, height = letter
    r, g, b = _hex(data.brand_color)

    def header() -> float:
        c.setFillColorRGB(r, g, b)
        c.rect(0, height - 58, width, 58, stroke=0, fill=1)
        c.setFillColorRGB(1, 1, 1)
        c.setFont("Helvetica-Bold", 14)
        c.drawString(40, height - 30, f"{data.state_name} sales tax exemption / resale certificate")
        c.setFont("Helvetica", 9)
        c.drawString(40, height - 46, f"Fill-in version of {form.code}: {form.name}"[:120])
        c.setFillColorRGB(0, 0, 0)
        return height - 80

    y = header()
    c.setFont("Helvetica", 8.5)
    c.drawString(40, y, f"Prepared by {data.company_legal_name} for {data.customer_name}. Complete the purchaser "
                        "fields, sign and return. Reference " + data.token)
    y -= 22
    section = None
    for name in names:
        this_section = "Seller" if name in _SELLER_FIELDS else "Purchaser"
        tall = name in ("purchaser_address", "seller_address", "business_description", "property_description",
                        "exemption_detail")
        need = 54 if tall else 42
        if y - need < 60:
            c.showPage()
            y = header()
            section = None
        if this_section != section:
            if section is not None:
                y -= 12
            c.setFont("Helvetica-Bold", 11)
            c.drawString(40, y, "Seller (filled in by the seller)" if this_section == "Seller"
                         else "Purchaser (to be completed by the purchaser)")
            y -= 8
            section = this_section
        c.setFont("Helvetica", 8.5)
        label = labels.get(name, name.replace("_", " ").capitalize())
        if name == "exempt_reason":
            label += f" (one of: {', '.join(rules.reason_codes)})"
            c.setFont("Helvetica", 7.5)
        if name == "signed_date":
            label += " (YYYY-MM-DD)"
        c.drawString(40, y - 10, label[:160])
        box_h = 28 if tall else 18
        c.acroForm.textfield(name=name, value=values.get(name, "") if name not in (
            "signature", "signer_name", "signer_title", "signed_date") else "",
            x=40, y=y - 14 - box_h, width=width - 80, height=box_h, fontName="Helvetica",
            fontSize=9, borderWidth=0.6, borderColor=colors.Color(0.55, 0.6, 0.68),
            fillColor=colors.Color(0.94, 0.96, 1.0), textColor=colors.black, forceBorder=True,
            maxlen=500, fieldFlags="multiline" if tall else "", tooltip=label[:200])
        y -= 22 + box_h
    c.setFont("Helvetica", 7.5)
    c.setFillColorRGB(0.4, 0.4, 0.4)
    c.drawString(40, 40, "The purchaser certifies that the information given is correct and that the property "
                         "is bought for the exempt purpose stated.")
    c.acroForm.textfield(name=TOKEN_FIELD, value=data.token, x=1, y=1, width=1, height=1,
                         annotationFlags="hidden", fieldFlags="readOnly", maxlen=20)
    c.acroForm.textfield(name=FORM_FIELD, value=form.code, x=2, y=1, width=1, height=1,
                         annotationFlags="hidden", fieldFlags="readOnly", maxlen=40)
    c.showPage()
    c.save()
    return buf.getvalue()


# -- reading back -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormReadback:
    """What a returned PDF says: the token and form it carries, the raw field values and those
    mapped to certificate fields (addresses reassembled from their boxes)."""

    token: str | None
    form_code: str | None
    raw: dict[str, str]
    values: dict[str, str]
    has_fields: bool
    #: What the sandbox read from the PDF (to map it again for another form code).
    fields: FormFields | None = None


def read_form(pdf: bytes, rules: RulesPack, form_code: str | None = None, *,
              filename: str = "") -> FormReadback:
    """Read a returned form's fields. The PDF is parsed only in the document sandbox's worker
    process (:func:`~ecms_desktop.services.documents.shared_sandbox.read_form_fields`): a returned file is
    untrusted. Raises :class:`~ecms_desktop.services.core.errors.DocumentError` naming the file when it cannot be
    read within the worker's time and memory limits. See :func:`form_readback` for the mapping."""
    return form_readback(read_form_fields(pdf, filename=filename or "The returned form"), rules, form_code)


def form_readback(found: FormFields, rules: RulesPack, form_code: str | None = None) -> FormReadback:
    """What the fields read from a returned form mean. The form code comes from the generated
    form's hidden field or the metadata, else ``form_code`` (the request's); official forms are
    mapped through the rules pack's ``pdf_field_map``, generated ones by their field names."""
    entries = [(f.page, f.name, f.value.strip() if isinstance(f.value, str) else "")
               for f in found.fields if f.type in _VALUE_FIELD_TYPES]
    keywords, text = found.keywords, (found.text if not entries else "")
    raw = {name: value for _page, name, value in entries if value}
    token = raw.get(TOKEN_FIELD)
    if not token:
        m = _KEYWORDS_RE.search(keywords) or TOKEN_RE.search(text)
        token = m.group(1) if m and m.groups() else (m.group(0) if m else None)
    found_form = raw.get(FORM_FIELD)
    if not found_form:
        m2 = _FORM_KW_RE.search(keywords)
        found_form = m2.group(1) if m2 else None
    code = found_form or form_code
    generated = FORM_FIELD in raw
    field_names = set(rules.field_names)
    mapping: Mapping[str, str] = {}
    if not generated and code:
        try:
            mapping = rules.form(code).pdf_field_map
        except UnknownFormError:
            mapping = {}
    # certificate field -> page -> [(pdf field, value)]
    grouped: dict[str, dict[int, list[tuple[str, str]]]] = {}
    for page_no, name, value in entries:
        if not value or name in (TOKEN_FIELD, FORM_FIELD):
            continue
        cert_field = name if generated and name in field_names else mapping.get(name)
        if not cert_field:
            continue
        grouped.setdefault(cert_field, {}).setdefault(page_no, []).append((name, value))
    values: dict[str, str] = {}
    for cert_field, pages in grouped.items():
        first_page = min(pages)
        parts = pages[first_page]
        if cert_field in _ADDRESS_FIELDS and len(parts) > 1:
            values[cert_field] = _join_address(parts)
        else:
            seen: list[str] = []
            for _name, value in parts:
                if value not in seen:
                    seen.append(value)
            values[cert_field] = "; ".join(seen)
    return FormReadback(token, code, raw, values, bool(entries), found)


def _join_address(parts: list[tuple[str, str]]) -> str:
    """Street, city, state and ZIP boxes back into one address line."""
    street, city, state, postal, city_line = [], "", "", "", ""
    for name, value in parts:
        n = name.casefold()
        if "city" in n and ("state" in n or "zip" in n):
            city_line = value
        elif "city" in n:
            city = value
        elif "zip" in n:
            postal = value
        elif "state" in n:
            state = value
        else:
            street.append(value)
    tail = city_line or Address(city=city, state=state, postal_code=postal).city_line()
    return ", ".join(p for p in (*street, tail) if p)


def parse_form_date(text: str) -> dt.date | None:
    """A date as people write it on forms (2026-03-15, 03/15/2026, 3/15/26, March 15, 2026)."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y", "%m.%d.%Y", "%B %d, %Y", "%b %d, %Y",
                "%d %B %Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None
