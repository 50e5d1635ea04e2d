"""The demo's document files: which certificates a file is drawn for (distinct forms first, a few dozen
files in all; the writer shares them among the certificates of the same form or state), drawn as clean
PDFs, crooked scans or pictures (:mod:`~ecms_desktop.services.demo.documents`) and each read back
through the document sandbox before it is stored.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

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
from ecms_desktop.services.demo.plans import CertPlan, CustomerPlan
from ecms_desktop.services.demo.reference import COMPANIES
from ecms_desktop.services.documents.storage import CheckedFile, check_bytes

#: Most distinct document files drawn, whatever the number of certificates.
MAX_DOCUMENTS = 60


@dataclass(frozen=True)
class DemoFile:
    checked: CheckedFile
    form_code: str
    states: tuple[str, ...]
    original_name: str


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
    )


def make_documents(plans: Sequence[CertPlan], customers: Sequence[CustomerPlan],
                    registrations: Sequence[dict[str, str]], rules: RulesPack, count: int, seed: str,
                    progress: Progress | None, cancel: CancelCheck | None, total: int) -> list[tuple[int, DemoFile]]:
    """Draw ``count`` documents from the given plans (distinct forms first) and probe each one in
    the document sandbox. Returns (plan index it was drawn from, file)."""
    rng = random.Random(f"{seed}:documents")
    chosen: list[CertPlan] = []
    seen: set[str] = set()
    for plan in plans:
        if plan.has_document and plan.form.code not in seen and len(chosen) < count:
            chosen.append(plan)
            seen.add(plan.form.code)
    taken = {plan.index for plan in chosen}
    for plan in plans:
        if len(chosen) >= count:
            break
        if plan.has_document and plan.index not in taken:
            chosen.append(plan)
            taken.add(plan.index)
    out: list[tuple[int, DemoFile]] = []
    for k, plan in enumerate(chosen):
        if cancel and cancel():
            raise Cancelled("Demo data cancelled; nothing was written.")
        if progress:
            progress(k, total, f"Drawing certificate documents ({k + 1} of {len(chosen)})")
        kind = _DOC_KINDS_FIRST[k] if k < len(_DOC_KINDS_FIRST) else \
            rng.choices([x for x, _ in _DOC_KINDS], [w for _, w in _DOC_KINDS])[0]
        customer = customers[plan.customer]
        drawing = _drawing_for(plan, customer, COMPANIES[plan.company], registrations[plan.company], rules, rng)
        if kind.endswith("multi"):
            drawing = replace(drawing, extra_pages=1 + (k % 2))
        pdf = draw_certificate_pdf(drawing, rng)
        slug = "_".join(re.findall(r"[A-Za-z0-9]+", customer.legal_name))[:40]
        stamp = plan.signed_date + dt.timedelta(days=rng.randint(1, 10))
        if kind.startswith("scan"):
            data, name = scan_pdf(pdf, rng), f"scan_{stamp:%Y%m%d}_{rng.randint(1, 999):04d}.pdf"
        elif kind == "png":
            data, name = scan_image(pdf, rng, fmt="png"), f"{plan.form.code}_{slug}.png"
        elif kind == "jpeg":
            data, name = scan_image(pdf, rng, fmt="jpeg"), f"IMG_{rng.randint(1000, 9999)}.jpg"
        else:
            data, name = pdf, f"{plan.form.code}_{slug}.pdf"
        try:
            checked = check_bytes(data, name)
        except DocumentError as exc:  # a drawing bug, not the user's doing: say which file
            raise DocumentError(f"The demo document {name} could not be read back: {exc}") from exc
        out.append((plan.index, DemoFile(checked, plan.form.code, tuple(line.state for line in plan.lines), name)))
    return out


def documents_for(n_certificates: int) -> int:
    """How many distinct document files to draw for ``n_certificates``."""
    return max(len(_DOC_KINDS_FIRST), min(MAX_DOCUMENTS, n_certificates // 4))

