"""Test data for every test, made in one place: the files users bring (PDFs, images, e-mails, certificate
import files, permit registries, sales files) and the records the tests start from (companies, customers,
certificates in each state the tests need, renewal requests, audit packs), made through the real services.

Each factory names in its keyword arguments what a test may vary and says in its docstring what it makes;
a test that needs other data passes its own values instead of copying a factory.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import email.utils
import io
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pymupdf
from reportlab.lib.pagesizes import landscape, letter
from reportlab.pdfgen import canvas
from sqlalchemy import select

from ecms_desktop.models import Certificate, Customer, ReviewState
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackResult, AuditPackService
from ecms_desktop.services.certificates.import_service import REQUIRED_COLUMNS
from ecms_desktop.services.certificates.service import CertificateService, ExpiryContext, create_certificate
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput, LineInput
from ecms_desktop.services.core.expiry import compute_expiry
from ecms_desktop.services.customers.service import CustomerService, upsert_customer
from ecms_desktop.services.demo.permits import PermitNumbers
from ecms_desktop.services.documents.storage import CheckedFile, check_bytes, sha256_of, store_checked
from ecms_desktop.services.sales import exemption_feed
from ecms_desktop.services.sales.transaction_import import TransactionImporter

#: The packaged rules pack (loaded once; every service that is given no pack uses the same one).
RULES = load_rules_pack()
#: The day the tests of complete certificates are run on (make_certificate).
AS_OF = dt.date(2026, 11, 22)
_PERMITS = PermitNumbers(RULES)


# -- PDF files ------------------------------------------------------------------------------------------

#: The text of the one-page PDF that stands for a scanned certificate.
SCAN_TEXT = "Texas Sales and Use Tax Resale Certificate"


def text_pdf(text: str = SCAN_TEXT, *, paper: str = "a4", font_size: float = 11,
             password: str | None = None) -> bytes:
    """A one-page PDF (PyMuPDF) of ``paper`` size ("a4", "letter", ...) with ``text`` written near its top
    left corner; with a ``password`` it is encrypted (AES-256, owner password ``password + "o"``)."""
    doc = pymupdf.open()
    width, height = pymupdf.paper_size(paper)
    doc.new_page(width=width, height=height).insert_text((72, 72), text, fontsize=font_size)
    if password:
        data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "o")
    else:
        data = doc.tobytes()
    doc.close()
    return data


def write_text_pdf(path: Path, text: str = SCAN_TEXT, *, paper: str = "a4", font_size: float = 11,
                   password: str | None = None) -> Path:
    """:func:`text_pdf` written to ``path``; returns ``path``."""
    path.write_bytes(text_pdf(text, paper=paper, font_size=font_size, password=password))
    return path


def paged_pdf(text: str, *, pages: int = 2, font_size: float = 14) -> bytes:
    """A PDF (ReportLab, byte for byte the same every time) of ``pages`` A4 pages, page n reading
    "<text> Pn" in Helvetica of ``font_size`` points."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=1)
    for i in range(pages):
        c.setFont("Helvetica", font_size)
        c.drawString(72, 700, f"{text} P{i + 1}")
        c.showPage()
    c.save()
    return buf.getvalue()


def letter_pdf(pages: int = 3, *, landscape_page: int | None = None, password: str | None = None) -> bytes:
    """A PDF (ReportLab) of ``pages`` letter pages, each with the heading "Certificate page n" and a black
    box; page ``landscape_page`` (0-based) is turned landscape; with a ``password`` it is encrypted."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter, encrypt=password)
    for i in range(pages):
        if landscape_page == i:
            c.setPageSize(landscape(letter))
        else:
            c.setPageSize(letter)
        c.setFont("Helvetica-Bold", 28)
        c.drawString(72, 700, f"Certificate page {i + 1}")
        c.rect(72, 72, 200, 100, fill=1)
        c.showPage()
    c.save()
    return buf.getvalue()


def sized_pdf(sizes: Sequence[tuple[float, float]]) -> bytes:
    """A PDF (PyMuPDF) with one page per (width, height) in ``sizes``, in points, each reading
    "Certificate page n" inside a blue frame."""
    doc = pymupdf.open()
    for i, (w, h) in enumerate(sizes):
        page = doc.new_page(width=w, height=h)
        page.insert_text((36, 72), f"Certificate page {i + 1}", fontsize=18)
        page.draw_rect(pymupdf.Rect(30, 30, w - 30, h - 30), color=(0, 0, 1))
    data = doc.tobytes()
    doc.close()
    return bytes(data)


def raw_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF file written by hand: ``objects`` numbered from 1 (object 1 is the catalog), then the
    cross-reference table and the trailer. For crafted files no PDF library would write."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def slow_pdf(pages: int = 3, decoded: int = 20_000_000, refs: int = 2000) -> bytes:
    """A small valid PDF (about 40 KB) whose every page's content is one compressed stream of
    ``decoded`` blanks, referenced ``refs`` times: opening it and loading its pages is instant, reading a
    page's content means decompressing and scanning 40 GB."""
    body = zlib.compress(b" " * decoded, 9)
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages)).encode()
    stream_ref = f"{3 + pages} 0 R ".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> /Contents ["
                + stream_ref * refs + b"] >>"] * pages
    objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream")
    return raw_pdf(objects)


def xobject_bomb(levels: int) -> bytes:
    """A 3 KB PDF whose one page draws a form XObject that draws the next one four times, ``levels``
    deep, ending in a line of text: opening it and loading its page is instant (it passes the probe),
    but reading its text interprets 4**levels copies (level 11 takes ~8 s and 14 MB of text here, each
    level four times more), the way a crafted 633 KB file ran for minutes with growing memory."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X0 5 0 R >> >> "
            b"/Contents %d 0 R >>" % (5 + levels),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i in range(levels):
        if i < levels - 1:
            body, res = b"/X Do /X Do /X Do /X Do", b"<< /XObject << /X %d 0 R >> >>" % (6 + i)
        else:
            body, res = b"BT /F1 12 Tf 72 700 Td (no token here) Tj ET", b"<< /Font << /F1 4 0 R >> >>"
        objs.append(b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources " + res
                    + b" /Length %d >>\nstream\n" % len(body) + body + b"\nendstream")
    objs.append(b"<< /Length 6 >>\nstream\n/X0 Do\nendstream")
    return raw_pdf(objs)


def customer_fills(pdf: bytes, values: dict[str, str]) -> bytes:
    """What a customer does in a PDF reader: type ``values`` (PDF field name -> text) into the form's
    boxes and save. Every field named must exist."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    done = set()
    for page in doc:
        for w in page.widgets():
            if w.field_name in values:
                w.field_value = values[w.field_name]
                w.update()
                done.add(w.field_name)
    assert done == set(values), f"fields not found: {set(values) - done}"
    return doc.tobytes()


# -- images and e-mails ---------------------------------------------------------------------------------

def image_bytes(width: int, height: int, *, fmt: str = "png", rgb: tuple[int, int, int] = (200, 200, 200),
                band: tuple[int, int, int, int] | None = None,
                band_rgb: tuple[int, int, int] = (20, 60, 160)) -> bytes:
    """An image file (PyMuPDF; ``fmt`` "png", "jpeg", ...) of ``width`` x ``height`` pixels in one colour
    ``rgb``, with the rectangle ``band`` (x0, y0, x1, y1) filled in ``band_rgb`` when given."""
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, width, height), False)
    pix.set_rect(pix.irect, rgb)
    if band is not None:
        pix.set_rect(pymupdf.IRect(*band), band_rgb)
    return pix.tobytes(fmt)


def write_image(path: Path, width: int, height: int, **kwargs: Any) -> Path:
    """:func:`image_bytes` written to ``path`` (its keyword arguments pass through); returns ``path``."""
    path.write_bytes(image_bytes(width, height, **kwargs))
    return path


def eml_bytes(sender: str, subject: str, attachments: Sequence[tuple[str, bytes, str]], date: dt.datetime, *,
              to: str = "tax@acme.example", body: str = "Here it is.") -> bytes:
    """An e-mail (.eml) from ``sender`` with ``body`` and the ``attachments`` (file name, bytes, media
    type), sent at ``date``."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = email.utils.format_datetime(date)
    msg.set_content(body)
    for name, data, ctype in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()


# -- files to import ------------------------------------------------------------------------------------

#: A row of a certificate import file: a Texas resale certificate with every field its form requires (it
#: passes validation).
GOOD_IMPORT_ROW = {
    "customer_number": "C-1001", "customer_name": "Bluebonnet Resale LLC", "customer_email": "ap@bluebonnet.example",
    "state": "TX", "form": "tx 01-339", "certificate_number": "R-1", "exempt_reason": "resale",
    "purchaser_tax_id": "32098765432", "certificate_type": "blanket", "po_number": "", "signed_date": "2026-03-15",
    "effective_date": "", "expiry_date": "", "review_status": "", "document": "",
    "purchaser_address": "1 Main St, Austin TX 78701", "property_description": "hardware for resale",
    "business_description": "hardware store", "signer_name": "Pat Doe", "signer_title": "Owner",
}


def write_import_csv(path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> Path:
    """A certificate import file: the rows as CSV with the required columns, then the ``extra`` columns,
    then every other column the rows use (cells a row lacks are empty)."""
    names = list(REQUIRED_COLUMNS) + list(extra)
    for row in rows:
        names += [k for k in row if k not in names]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: "" for k in writer.fieldnames}, **row})
    return path


#: The header of the Texas Comptroller's Active Sales Tax Permit Holders dataset.
TEXAS_REGISTRY_HEADERS = [
    "Taxpayer Number", "Taxpayer Name", "Taxpayer Address", "Taxpayer City", "Taxpayer State",
    "Taxpayer Zip Code", "Taxpayer County Code", "Taxpayer Organization Type", "Outlet Number",
    "Outlet Name", "Outlet Address", "Outlet City", "Outlet State", "Outlet Zip Code",
    "Outlet County Code", "Outlet NAICS Code", "Outlet Inside/Outside City Limits Indicator",
    "Outlet Permit Issue Date", "Outlet First Sales Date"]


def write_texas_registry(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A file in the layout of the Comptroller's Active Sales Tax Permit Holders dataset, in ``folder``:
    one outlet per (permit number, holder name, issue date) of ``rows``, all in Austin."""
    path = folder / "Active_Sales_Tax_Permit_Holders.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TEXAS_REGISTRY_HEADERS)
        for n, (number, name, issued) in enumerate(rows, start=1):
            w.writerow([number, name, "1 Elm St", "AUSTIN", "TX", "78701", "227", "CL", f"{n:05d}",
                        name, "1 Elm St", "AUSTIN", "TX", "78701", "227", "444130", "Y", issued, issued])
    return path


#: The columns of a sales file that the determination needs.
SALES_COLUMNS = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "amount",
                 "tax_collected", "exempt_claimed")


def write_sales_csv(folder: Path, *rows: str, columns: Sequence[str] = SALES_COLUMNS, name: str = "sales.csv") -> Path:
    """A sales file ``name`` in ``folder``: a header of ``columns``, then the ``rows`` (comma-separated cells
    in that order) as they are."""
    path = folder / name
    path.write_text(",".join(columns) + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def import_sales(db: Any, company_id: int, folder: Path, *rows: str, columns: Sequence[str] = SALES_COLUMNS) -> None:
    """The sales file of :func:`write_sales_csv`, imported as the company's sales lines."""
    TransactionImporter(db).import_file(write_sales_csv(folder, *rows, columns=columns), company_id=company_id)


def use_local_smtp(db: Any, company_id: int, port: int, *, sender: str = "Acme Tax <tax@acme.example>",
                   rate: int = 0) -> None:
    """The company sends through the SMTP server on 127.0.0.1:``port`` (no login), at most ``rate``
    messages a minute (0: no limit)."""
    from ecms_desktop.services.renewals.email_service import EmailService

    EmailService(db).set_profile(company_id, host="127.0.0.1", port=port, security="none", from_address=sender)
    CompanyService(db).set_setting("smtp_rate_per_minute", rate, company_id)


# -- companies and customers ----------------------------------------------------------------------------

_ACME_REGISTRATIONS = MappingProxyType({"TX": "32012345678"})


def make_company(db: Any, name: str = "Acme Supply Co", *, legal_name: str = "Acme Supply Company LLC",
                 address_line1: str = "100 Main St", city: str = "Austin", state: str = "TX",
                 postal_code: str = "78701", reply_to_email: str = "tax@acme.example",
                 registrations: Mapping[str, str] = _ACME_REGISTRATIONS) -> int:
    """A company (its id) with a full profile: by default Acme of Austin, Texas, registered there."""
    return CompanyService(db).create(name, legal_name=legal_name, address_line1=address_line1, city=city,
                                     state=state, postal_code=postal_code, reply_to_email=reply_to_email,
                                     registrations=dict(registrations)).id


def make_customer(db: Any, company_id: int, number: str = "C-1", name: str = "Lone Star Retail LLC") -> int:
    """The customer (its id) with this number, created with legal name ``name`` if it is new."""
    with db.transaction() as s:
        return upsert_customer(s, company_id, number, legal_name=name)[0].id


# -- certificates ---------------------------------------------------------------------------------------

def permit_number(state: str, seed: int = 1) -> str:
    """A permit number of the state's known format (so validation passes)."""
    return _PERMITS.make(state, random.Random(f"{state}-{seed}"))


def complete_fields(name: str, state: str, **overrides: Any) -> dict[str, Any]:
    """Every field the forms commonly require, filled (approval is gated by the validation): purchaser
    ``name`` with a permit number of ``state``'s format, signed on 15 March 2026; ``overrides`` replace
    or add fields."""
    return {"purchaser_name": name, "purchaser_address": "1 Main St, Springfield",
            "purchaser_tax_id": permit_number(state), "business_description": "Retail store",
            "property_description": "Goods for resale", "business_type": "Retailer", "signer_name": "Pat Buyer",
            "signer_title": "Owner", "signed": True, "signed_date": dt.date(2026, 3, 15), **overrides}


def make_certificate(db: Any, company_id: int, *, customer: str = "C-1", name: str = "Buyer Inc",
                     form: str = "TX-01-339", states: tuple[str, ...] = ("TX",), reason: str = "resale",
                     signed: dt.date | None = dt.date(2026, 3, 15), effective: dt.date | None = None,
                     approve: bool = True, **fields: Any) -> Any:
    """A complete certificate (every field the forms commonly require is filled, and for a form whose state
    prints the expiry date, that date), approved with its warnings acknowledged unless ``approve`` is false."""
    customer_id = CustomerService(db).get_or_create(company_id, customer, name, f"{customer.lower()}@example.com").id
    service = CertificateService(db)
    rule = RULES.expiry_rule(states[0], form, reason)
    if rule.printed and "expiry_override" not in fields:
        # The document carries the expiry date its state printed on it: here the one the state's rule gives.
        fields = {"expiry_override": compute_expiry(rule, effective=effective, signed=signed).expiry_date,
                  "expiry_override_reason": "printed on the certificate", **fields}
    values = complete_fields(name, states[0], **{"exemption_detail": "Exempt organization 123", "signed_date": signed,
                                                 "effective_date": effective, **fields})
    lines = tuple(LineInput(s, state_tax_id=permit_number(s)) for s in states)
    data = CertificateInput(company_id=company_id, customer_id=customer_id, form_code=form, lines=lines,
                            exempt_reason=reason, **values)
    detail = service.create(data, as_of=AS_OF)
    if approve:
        detail = service.approve(detail.id, expected_version=detail.version, as_of=AS_OF, acknowledge_warnings=True)
    return detail


def make_desk_certificate(db: Any, company_id: int, *, as_of: dt.date, form: str = "TX-01-339",
                          states: Sequence[str] = ("TX",), reason: str = "resale", customer: str = "C-100",
                          name: str = "Lone Star Hardware LLC", state_ids: Mapping[str, str] | None = None,
                          rules: Any = None, **fields: Any) -> CertificateDetail:
    """A certificate as a clerk enters it at the desk: only the ``fields`` given (the rest empty), pending
    review, validated on save as of ``as_of``. The customer ``customer`` gets legal name ``name`` if new;
    ``state_ids`` gives the purchaser's number on some state lines."""
    customer_id = make_customer(db, company_id, customer, name)
    ids = state_ids or {}
    lines = tuple(LineInput(s, ids.get(s, "")) for s in states)
    data = CertificateInput(company_id=company_id, customer_id=customer_id, form_code=form, lines=lines,
                            exempt_reason=reason, **fields)
    return CertificateService(db, rules).create(data, as_of=as_of)


#: What the tests of the certificate form load, by case: a form, its states and what the clerk filled in.
DESK_CASES: dict[str, dict[str, Any]] = {
    "TX": dict(form="TX-01-339", states=["TX"], purchaser_name="Lone Star Hardware LLC",
               purchaser_tax_id="3201234567", signed_date=dt.date(2026, 3, 15)),
    "CA": dict(form="CA-CDTFA-230", states=["CA"], purchaser_name="Pacific Parts Inc",
               purchaser_tax_id="SR 123-456789", signed=True, signed_date=dt.date(2026, 1, 10)),
    "NY": dict(form="NY-ST-120", states=["NY"], purchaser_name="Empire Goods Corp",
               signed_date=dt.date(2025, 11, 2)),
    "FL": dict(form="FL-DR-13", states=["FL"], purchaser_name="Sunshine Resale Co",
               purchaser_tax_id="7812345678901", effective_date=dt.date(2026, 1, 1)),
    "SST": dict(form="SST-F0003", states=["WA", "NC", "OH", "TX"], purchaser_name="Multi State Supply",
                signed_date=dt.date(2026, 2, 1), state_ids={"WA": "603123456", "NC": "600123456"}),
}


def make_signed_certificate(db: Any, company_id: int, customer: str = "C-1", *, as_of: dt.date,
                            states: Sequence[str] = ("TX",), form: str | None = None, review: str = "pending",
                            customer_name: str | None = None, origin: str = "manual",
                            **fields: Any) -> CertificateDetail:
    """A certificate signed and in effect from 1 January 2026, stored in review state ``review`` as it
    is (no approval step), with the ``fields`` given (these may replace the dates) and no permit
    numbers: what the determination and the exemption feed read. The form is ``form``, else TX-01-339
    for one state and SST-F0003 for several; the customer ``customer`` is named ``customer_name``, else
    "Customer <number>"."""
    found = CustomerService(db).get_or_create(company_id, customer, legal_name=customer_name or f"Customer {customer}")
    values = {"signed": True, "signed_date": dt.date(2026, 1, 1), "effective_date": dt.date(2026, 1, 1), **fields}
    data = CertificateInput(company_id=company_id, customer_id=found.id,
                            form_code=form or ("SST-F0003" if len(states) > 1 else "TX-01-339"),
                            lines=tuple(LineInput(s) for s in states), **values)
    return CertificateService(db).create(data, as_of=as_of, origin=origin, review_state=review)


_SEED_PLAN = (  # (state, form, reason)
    ("TX", "TX-01-339", "resale"), ("CA", "CA-CDTFA-230", "resale"), ("NY", "NY-ST-120", "resale"),
    ("FL", "FL-DR-13", "resale"), ("OH", "OH-STEC-B", "resale"), ("IL", "IL-CRT-61", "resale"),
)


def seed_certificates(db: Any, company_id: int, n: int, *, customers: int = 25) -> list[int]:
    """``n`` certificates (their ids) spread over ``customers`` customers, six states, signing dates and
    review states (real services, one transaction, no audit events)."""
    ids: list[int] = []
    with db.transaction() as s:
        ctx = ExpiryContext.load(s, RULES, company_id)
        cache: dict[str, Any] = {}
        for i in range(n):
            c = i % customers
            customer, _ = upsert_customer(s, company_id, f"C-{1000 + c}", legal_name=f"Buyer {c:02d} Supply LLC",
                                          cache=cache)
            state, form, reason = _SEED_PLAN[i % len(_SEED_PLAN)]
            signed = dt.date(2021 + (i // 6) % 6, 1 + i % 12, 1 + i % 28)
            review = (ReviewState.PENDING if i % 11 == 0 else ReviewState.REJECTED if i % 17 == 0
                      else ReviewState.ARCHIVED if i % 23 == 0 else ReviewState.APPROVED).value
            data = CertificateInput(company_id=company_id, customer_id=customer.id, form_code=form,
                                    lines=(LineInput(state),), exempt_reason=reason,
                                    certificate_number=f"EC-{i:05d}", purchaser_tax_id=f"P{i:07d}",
                                    signed=True, signed_date=signed)
            ids.append(create_certificate(s, RULES, data, origin="manual", review_state=review, ctx=ctx,
                                          record_audit=False).id)
    return ids


#: The shared secret of the tests' ERP webhooks.
WEBHOOK_SECRET = "s3cret"


def approve_with_feed_event(db: Any, cert_id: int, *, as_of: dt.date) -> list[int]:
    """Approve the certificate and record its exemption feed events in the same transaction, as
    certificate_service.approve does once the hook is added; returns the events' ids."""
    with db.transaction() as s:
        cert = s.get(Certificate, cert_id)
        old = cert.review_state
        cert.review_state = "approved"
        s.flush()
        return [e.id for e in exemption_feed.record_review_change(s, cert, old, "approved", as_of=as_of)]


# -- renewals -------------------------------------------------------------------------------------------

#: Day 0 of the renewal tests' calendar: the day their renewal runs look ahead from.
DAY0 = dt.date(2026, 1, 1)


def make_expiring_certificate(db: Any, company_id: int, number: str, expiry: dt.date, *, state: str = "TX",
                              form: str = "TX-01-339", email: str = "", owner: str = "owner@acme.example",
                              review: str = "approved") -> int:
    """A certificate (its id) of customer ``number`` for one ``state`` that expires on ``expiry`` (an
    expiry override), in review state ``review``. A new customer is "Customer <number>" of 5 Elm Rd,
    Dallas, with e-mail ``email`` (else <number>@buyer.example) and account owner ``owner``."""
    with db.transaction() as s:
        cust = s.execute(select(Customer).where(Customer.company_id == company_id,
                                                Customer.number == number)).scalar_one_or_none()
        if cust is None:
            cust = Customer(company_id=company_id, number=number, number_key=number.casefold(),
                            legal_name=f"Customer {number}", email=email or f"{number.lower()}@buyer.example",
                            owner_email=owner, bill_to_line1="5 Elm Rd", bill_to_city="Dallas",
                            bill_to_state="TX", bill_to_zip="75201")
            s.add(cust)
            s.flush()
        cert = create_certificate(s, RULES, CertificateInput(
            company_id=company_id, customer_id=cust.id, form_code=form, lines=(LineInput(state, "32099999999"),),
            purchaser_name=cust.legal_name, expiry_override=expiry, expiry_override_reason="test calendar"),
            origin="manual", review_state=review)
        return cert.id


def sent_renewal_form(db: Any, cert_id: int) -> tuple[str, bytes, str]:
    """(token, form PDF bytes, to address) from the outbox message of the certificate's renewal request."""
    with db.reader() as s:
        req = s.execute(select(RenewalRequest).where(RenewalRequest.certificate_id == cert_id)).scalar_one()
        row = s.execute(select(OutboxMessage).where(OutboxMessage.request_id == req.id)).scalar_one()
        msg = email.message_from_bytes(row.raw, policy=email.policy.default)
        token, to = req.token, row.to_address
    form = next(p for p in msg.iter_attachments() if not p.get_filename().startswith("Renewal-request"))
    return token, form.get_content(), to


# -- audit packs ----------------------------------------------------------------------------------------

_TODAY = dt.date.today()
#: The period of the audit pack made of make_audit_pack_data's certificates.
AUDIT_PACK_PERIOD = (_TODAY - dt.timedelta(days=180), _TODAY + dt.timedelta(days=10))
#: When make_audit_pack says the pack was made.
AUDIT_PACK_GENERATED_AT = dt.datetime(2030, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
#: A customer name that is a spreadsheet formula.
AUDIT_PACK_EVIL_NAME = '=HYPERLINK("http://evil.example","x") Widgets'


@dataclass
class AuditPackData:
    """What make_audit_pack_data stored: certificate ids by role, and each included one's document."""

    included: dict[str, int]
    excluded: dict[str, int]
    originals: dict[int, bytes]
    texts: dict[int, str]


def make_audit_pack_data(db: Any, company_id: int) -> AuditPackData:
    """Certificates through the real services: in force, multi-state, archived, expired, pending."""
    customers = CustomerService(db)
    evil = customers.get_or_create(company_id, "C-1001", AUDIT_PACK_EVIL_NAME)
    tricky = customers.get_or_create(company_id, "../C-2002", "CON / ..\\Widgets")
    plain = customers.get_or_create(company_id, "C-3003", "Plain Buyer Inc")
    svc = CertificateService(db)
    signed = AUDIT_PACK_PERIOD[0] - dt.timedelta(days=400)

    def cert(customer_id: int, states: list[str], number: str, *, signed_date: dt.date = signed,
             approve: bool = True, override: dt.date | None = None, form: str = "") -> int:
        form_code = form or ("MTC-UNIFORM" if len(states) > 1 else "TX-01-339")
        d = svc.create(CertificateInput(
            company_id=company_id, customer_id=customer_id, form_code=form_code,
            lines=tuple(LineInput(s, state_tax_id=permit_number(s)) for s in states), certificate_number=number,
            expiry_override=override, expiry_override_reason="test" if override else "",
            **complete_fields("Widgets", states[0], signed_date=signed_date)), as_of=_TODAY)
        if approve:
            svc.approve(d.id, expected_version=d.version, as_of=_TODAY, acknowledge_warnings=True)
        return d.id

    included = {
        "evil": cert(evil.id, ["TX"], "-5+5"),
        "multi": cert(tricky.id, ["OK", "TX"], "@M1"),
        "image": cert(plain.id, ["TX"], "IMG-1"),
        "broken": cert(plain.id, ["TX"], "BAD-1"),
        "archived": cert(plain.id, ["TX"], "ARC-1"),
    }
    excluded = {
        "expired_before": cert(plain.id, ["TX"], "OLD-1", override=AUDIT_PACK_PERIOD[0] - dt.timedelta(days=1)),
        "pending": cert(plain.id, ["TX"], "PEN-1", approve=False),
        "other_state": cert(plain.id, ["NY"], "NY-1", form="NY-ST-120"),
    }
    detail = svc.get(included["archived"], _TODAY)
    svc.archive(detail.id, "replaced by a newer certificate", expected_version=detail.version, as_of=_TODAY)

    originals: dict[int, bytes] = {}
    texts: dict[int, str] = {}
    for key, cid in included.items():
        if key == "image":
            data, name = image_bytes(300, 200), "scan.png"
        elif key == "broken":
            data, name = b"%PDF-1.7\n this is not really a pdf \n%%EOF", "broken.pdf"
        else:
            texts[cid] = f"CERTDOC-{cid}-{key.upper()}"
            data, name = paged_pdf(texts[cid]), f"{key} certificate.pdf"
        if key == "broken":  # stored as received long ago, before files were probed
            checked = CheckedFile(name, data, sha256_of(data), "application/pdf", 1)
        else:
            checked = check_bytes(data, name)
        with db.transaction() as s:
            store_checked(s, checked, received_via="upload", certificate_id=cid, company_id=company_id)
        originals[cid] = data
    return AuditPackData(included, excluded, originals, texts)


def make_audit_pack(db: Any, out: Path, *, states: tuple[str, ...] = ("TX", "OK"),
                    generated_at: dt.datetime = AUDIT_PACK_GENERATED_AT, **kwargs: Any) -> AuditPackResult:
    """The audit pack of AUDIT_PACK_PERIOD for ``states``, written by the service to ``out`` (a folder
    and its zip); other keyword arguments go to AuditPackService.generate."""
    sel = AuditPackSelection(AUDIT_PACK_PERIOD[0], AUDIT_PACK_PERIOD[1], states=states)
    return AuditPackService(db).generate(sel, out, generated_at=generated_at, **kwargs)
