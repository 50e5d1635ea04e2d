"""The demo's document files: each certificate's own document, showing its record's values (purchaser
name, address and permit number, state and form, reason, signer and date), drawn as a clean PDF, a
crooked scan or a picture (:mod:`~ecms_desktop.services.demo.documents`), probed through the document
sandbox before it is stored, and the first :data:`READ_AT_MOST` clean PDFs read by the program's reader
(:func:`~ecms_desktop.services.intake.reading.read_document`, through their text layer) so that their
readings are stored with them as with any arriving document.

Two deliberate slips, for the document-against-record check to show (see :func:`deliberate_cases`): the
first read certificate pending review has the scan of **another customer's certificate** filed with it
(its purchaser name, address and permit are the other customer's), and the second has the customer's
certificate **for another state** on that state's form (the record says one state and form, the
document another). Validation reports each with both values, and approval is blocked until the
accountant puts it right.

Drawing and reading cost time (about 10 ms to draw a clean PDF, more for a scan, about 0.2 s to read
one: identifying the form among all of the rules pack's is the reader's work), so documents are drawn
for the certificates of the first chunk only (:data:`DRAWN_AT_MOST`) and rasterised scans and pictures,
which only OCR can read, are kept to :data:`PICTURES_AT_MOST`; the remaining documents of a large demo
are left out (those certificates have none, as some do in real books).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ecms_desktop.models import ReviewState
from ecms_desktop.rules import RulesPack
from ecms_desktop.rules.pack import SST_FORM_CODE
from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.demo.documents import (
    CertificateDrawing,
    certification_text,
    draw_certificate_pdf,
    scan_image,
    scan_pdf,
)
from ecms_desktop.services.demo.permits import PermitNumbers
from ecms_desktop.services.demo.plans import CertPlan, CustomerPlan, LinePlan
from ecms_desktop.services.demo.reference import COMPANIES
from ecms_desktop.services.documents.storage import CheckedFile, check_bytes
from ecms_desktop.services.intake.reading import read_document

#: Most documents drawn (one per certificate that has one, in plan order), whatever the number of certificates.
DRAWN_AT_MOST = 2000
#: Most documents drawn as rasterised scans or pictures (the others are clean PDFs with a text layer).
PICTURES_AT_MOST = 40
#: Most clean PDFs read by the program's reader when the demo is made (the others are stored unread).
READ_AT_MOST = 30
#: Forms the deliberate "certificate for another state" slip is drawn on, first one that fits: forms
#: whose printed title and labels the reader knows well (see their identification in the rules pack).
_OTHER_STATE_FORMS = ("TX-01-339", "NY-ST-120", "IN-ST-105", "MI-3372")


@dataclass(frozen=True)
class DemoFile:
    checked: CheckedFile
    form_code: str
    states: tuple[str, ...]
    original_name: str
    #: What the program's reader read from the file (``Document.extraction``); None: not read.
    extraction: dict[str, Any] | None = None
    #: What deliberately differs from the record ("" when nothing: the document shows the record's values).
    slip: str = ""


_DOC_KINDS_FIRST = ("pdf", "scan", "png", "jpeg", "scan_multi", "pdf", "scan", "pdf_multi")
_DOC_KINDS = (("pdf", 42), ("scan", 36), ("png", 9), ("jpeg", 8), ("scan_multi", 3), ("pdf_multi", 2))


def _drawing_for(plan: CertPlan, customer: CustomerPlan, company: dict[str, Any], registrations: dict[str, str],
                 rules: RulesPack, rng: random.Random) -> CertificateDrawing:
    form = plan.form
    home = plan.lines[0].state
    state = rules.state(home)
    if form.is_multistate:
        issuer = form.issuer or "Multistate Tax Commission"
    else:
        issuer = f"{state.name} - Department of Revenue / Taxation"
    if form.code == SST_FORM_CODE and form.reason_letters:
        labels = {r.code: r.label for r in rules.exempt_reasons}
        reasons = tuple((f"{letter}  {labels.get(code, code)}", code == plan.reason and
                         letter == min(k for k, v in form.reason_letters.items() if v == plan.reason))
                        for letter, code in sorted(form.reason_letters.items()))
    else:
        labels = {r.code: r.label for r in rules.exempt_reasons}
        reasons = tuple((labels.get(code, code), code == plan.reason) for code in form.exempt_reasons)
    rev = re.search(r"\s*\((?:Rev(?:ised)?|REV)\.?\s*([^)]*)\)\s*$", form.name)
    title = form.name[:rev.start()] if rev else form.name
    revision = form.revision or (rev.group(1) if rev else "")
    received = plan.signed_date + dt.timedelta(days=rng.randint(1, 12))
    address = (customer.bill[0], f"{customer.bill[1]}, {customer.bill[2]} {customer.bill[3]}")
    seller_address = tuple(p for p in (company["address_line1"], company["address_line2"],
                                       f"{company['city']}, {company['state']} {company['postal_code']}") if p)
    own = form.identification.labels.get("purchaser_name") if form.identification is not None else None
    label = own[0] if own else None
    return CertificateDrawing(
        form_code=form.code, form_number=form.number or form.code, form_title=title, issuer=issuer,
        revision=revision, seller_name=company["legal_name"], seller_address=seller_address,
        seller_permit=registrations.get(home, ""), purchaser_name=customer.legal_name,
        purchaser_address=address, purchaser_phone=customer.phone,
        permit_label=(state.permit.label if not form.is_multistate else "Purchaser's tax ID / registration number"),
        permit_number=plan.purchaser_tax_id, business_description=customer.trade[1],
        property_description=customer.trade[2], reasons=reasons,
        state_lines=tuple((line.state, line.state_tax_id) for line in plan.lines) if form.is_multistate else (),
        single_use=plan.certificate_type == "single_use", po_number=plan.po_number,
        exemption_detail=plan.exemption_detail, signer_name=customer.contact[0], signer_title=customer.contact[1],
        signed_date=plan.signed_date, certificate_number=plan.certificate_number,
        received_stamp=received if rng.random() < 0.45 else None,
        certification_text=certification_text("resale" if plan.reason == "resale" else "exemption",
                                               [rules.state(line.state).name for line in plan.lines]),
        purchaser_label=label.text if label is not None else "Name of purchaser:",
        purchaser_label_beside=label is None or label.position == "right",
    )


def deliberate_cases(plans: Sequence[CertPlan], rules: RulesPack) -> dict[int, tuple[str, CertPlan]]:
    """The two deliberate slips, by plan index: (what differs, the plan the document is drawn from). The
    first certificate pending review (of those with a document) gets another customer's certificate
    (of the same selling company); the second gets the customer's certificate for another state, on a
    form the reader knows (:data:`_OTHER_STATE_FORMS`, one with the certificate's reason when there is
    one). Both are drawn as clean PDFs and read."""
    pending = [p for p in plans if p.has_document and p.review_state == ReviewState.PENDING.value]
    out: dict[int, tuple[str, CertPlan]] = {}
    if pending:
        plan = pending[0]
        other = next((q for q in plans if q.company == plan.company and q.customer != plan.customer), None)
        if other is not None:
            out[plan.index] = ("another customer's certificate",
                               replace(plan, customer=other.customer, purchaser_tax_id=other.purchaser_tax_id))
    for plan in pending[1:]:
        states = {line.state for line in plan.lines}
        forms = [rules.form(code) for code in _OTHER_STATE_FORMS]
        for form in sorted(forms, key=lambda f: plan.reason not in f.exempt_reasons):  # the reason's forms first
            state = form.states[0]
            if state not in states:
                permit = PermitNumbers(rules).make(state, random.Random(f"{plan.index}:{state}"))
                out[plan.index] = (f"the customer's certificate for {state}",
                                   replace(plan, form=form, lines=[LinePlan(state, "")], purchaser_tax_id=permit))
                return out
    return out


def make_documents(plans: Sequence[CertPlan], customers: Sequence[CustomerPlan],
                   registrations: Sequence[dict[str, str]], rules: RulesPack, seed: str,
                   progress: Progress | None, cancel: CancelCheck | None, total: int) -> list[tuple[int, DemoFile]]:
    """Draw each plan's own document (the first :data:`DRAWN_AT_MOST` plans that have one), probe it in
    the document sandbox and read the first :data:`READ_AT_MOST` clean PDFs and the deliberate slips'
    (:func:`deliberate_cases`). Returns (plan index, file)."""
    rng = random.Random(f"{seed}:documents")
    chosen = [plan for plan in plans if plan.has_document][:DRAWN_AT_MOST]
    kinds: list[str] = []
    pictures = 0
    for k in range(len(chosen)):
        kind = _DOC_KINDS_FIRST[k] if k < len(_DOC_KINDS_FIRST) else \
            rng.choices([x for x, _ in _DOC_KINDS], [w for _, w in _DOC_KINDS])[0]
        if not kind.startswith("pdf"):
            pictures += 1
            kind = kind if pictures <= PICTURES_AT_MOST else "pdf"
        kinds.append(kind)
    slips = deliberate_cases(chosen, rules)
    kinds = ["pdf" if plan.index in slips else kind for plan, kind in zip(chosen, kinds, strict=True)]
    read = {plan.index for plan, kind in zip(chosen, kinds, strict=True) if kind.startswith("pdf")}
    read = set(sorted(read)[:READ_AT_MOST]) | set(slips)
    out: list[tuple[int, DemoFile]] = []
    for k, (plan, kind) in enumerate(zip(chosen, kinds, strict=True)):
        if cancel and cancel():
            raise Cancelled("Demo data cancelled; nothing was written.")
        if progress and k % 20 == 0:
            progress(k, total, f"Drawing certificate documents ({k + 1} of {len(chosen)})")
        slip, shown = slips.get(plan.index, ("", plan))
        customer = customers[shown.customer]
        drawing = _drawing_for(shown, customer, COMPANIES[plan.company], registrations[plan.company], rules, rng)
        if kind.endswith("multi"):
            drawing = replace(drawing, extra_pages=1 + (k % 2))
        pdf = draw_certificate_pdf(drawing, rng)
        slug = "_".join(re.findall(r"[A-Za-z0-9]+", customer.legal_name))[:40]
        stamp = plan.signed_date + dt.timedelta(days=rng.randint(1, 10))
        if kind.startswith("scan"):
            data, name = scan_pdf(pdf, rng), f"scan_{stamp:%Y%m%d}_{rng.randint(1, 999):04d}.pdf"
        elif kind == "png":
            data, name = scan_image(pdf, rng, fmt="png"), f"{shown.form.code}_{slug}.png"
        elif kind == "jpeg":
            data, name = scan_image(pdf, rng, fmt="jpeg"), f"IMG_{rng.randint(1000, 9999)}.jpg"
        else:
            data, name = pdf, f"{shown.form.code}_{slug}.pdf"
        try:
            checked = check_bytes(data, name)
        except DocumentError as exc:  # a drawing bug, not the user's doing: say which file
            raise DocumentError(f"The demo document {name} could not be read back: {exc}") from exc
        extraction = read_document(data, name, rules).to_json() if plan.index in read else None
        out.append((plan.index, DemoFile(checked, plan.form.code, tuple(line.state for line in plan.lines), name,
                                         extraction, slip)))
    return out


def documents_for(plans: Sequence[CertPlan]) -> int:
    """How many document files :func:`make_documents` draws for ``plans``."""
    return min(DRAWN_AT_MOST, sum(plan.has_document for plan in plans))
