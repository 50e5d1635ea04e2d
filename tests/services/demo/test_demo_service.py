"""Demo data: every status as of the date, real forms and reasons, readable documents, one audited
transaction, and the same data again for the same seed."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pymupdf
import pytest
from sqlalchemy import func, select

from ecms_desktop.models import (
    AuditEvent,
    Certificate,
    Company,
    CoverageLine,
    Customer,
    Document,
    DocumentFile,
    ReviewState,
    Status,
)
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.query import CertificateQuery, count_by_status
from ecms_desktop.services.certificates.service import ExpiryContext
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.demo.permits import PermitNumbers
from ecms_desktop.services.demo.planner import Planner
from ecms_desktop.services.demo.plans import DemoOptions
from ecms_desktop.services.demo.service import DemoService, existing_data
from ecms_desktop.services.documents.shared_sandbox import probe_document

AS_OF = dt.date(2026, 11, 22)
RULES = load_rules_pack()


@pytest.fixture
def demo(db):  # type: ignore[no-untyped-def]
    return DemoService(db, RULES).generate(DemoOptions(certificates=60, seed=7, as_of=AS_OF))


def test_every_status_is_present_as_of_the_date(db, demo) -> None:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        counts = count_by_status(s, CertificateQuery(as_of=AS_OF))
    assert set(counts) == set(Status)
    missing = [status.value for status, n in counts.items() if n == 0]
    assert not missing, f"no demo certificate is {missing} as of {AS_OF}"
    assert sum(counts.values()) == 60
    assert counts == demo.status_counts
    with db.reader() as s:
        rejected = s.execute(select(Certificate.review_reason).where(
            Certificate.review_state.in_([ReviewState.REJECTED.value, ReviewState.ARCHIVED.value]))).scalars().all()
    assert rejected and all(reason.strip() for reason in rejected), "rejected/archived need their reason"


def test_companies_customers_and_forms_are_real(db, demo) -> None:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        companies = s.execute(select(Company).order_by(Company.id)).scalars().all()
        assert len(companies) == 3 and companies[0].name == demo.default_company
        assert all(c.reply_to_email and c.address_line1 and c.registrations for c in companies)
        customers = s.execute(select(Customer)).scalars().all()
        assert len(customers) == demo.customers
        assert all(re.fullmatch(r"C-\d{5}", c.number) for c in customers)
        assert all(re.search(r"@[a-z0-9-]+\.example\.(com|org)$", c.email) for c in customers)
        assert len({c.bill_to_state for c in customers}) >= 5
        certs = [(c.id, c.form_code, c.exempt_reason, c.effective_date, c.signed_date, c.expiry_override,
                  c.expiry_override_reason, c.expiry_date, c.purchaser_tax_id)
                 for c in s.execute(select(Certificate)).scalars()]
        lines = s.execute(select(CoverageLine.certificate_id, CoverageLine.state, CoverageLine.expiry_date,
                                 CoverageLine.expiry_basis)).all()
    by_cert: dict[int, list] = {}
    for line in lines:
        by_cert.setdefault(line.certificate_id, []).append(line)
    ctx = ExpiryContext(RULES)
    states_seen: set[str] = set()
    for cert_id, form_code, reason, effective, signed, override, override_reason, expiry, tax_id in certs:
        form = RULES.form(form_code)
        assert reason in form.exempt_reasons, (form_code, reason)
        cert_lines = by_cert[cert_id]
        for line in cert_lines:
            states_seen.add(line.state)
            if form.is_multistate:
                assert RULES.form_acceptance(line.state, form.code, reason).accepted
            else:
                assert line.state in form.states
            # Each line's expiry is the program's own expiry decision.
            decision = ctx.decide(line.state, form_code, reason, effective=effective, signed=signed,
                                  override=override, override_reason=override_reason)
            assert (line.expiry_date, line.expiry_basis) == (decision.expiry_date, decision.basis)
        dates = [line.expiry_date for line in cert_lines if line.expiry_date]
        assert expiry == (min(dates) if dates else None)
        # A state-issued document carries a number of its own format (an Illinois E number, a Maryland
        # exemption card), which validation checks instead of the state's permit format.
        document = form.state_document
        permit = document.number if document is not None and document.number is not None \
            else RULES.state(cert_lines[0].state).permit
        if tax_id and permit.pattern and not form.is_multistate:
            assert permit.matches(tax_id), (form_code, tax_id)
    assert len(states_seen) >= 10
    sst = [c[0] for c in certs if c[1] == "SST-F0003"]
    assert any(len(by_cert[cert_id]) >= 2 for cert_id in sst), "an SST certificate covering several states"
    assert len({c[1] for c in certs}) >= 15


def test_documents_open_and_vary(db, demo) -> None:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        files = s.execute(select(DocumentFile.sha256, DocumentFile.media_type, DocumentFile.page_count,
                                 DocumentFile.data)).all()
        arrivals = s.execute(select(func.count()).select_from(Document)).scalar_one()
        orphans = s.execute(select(func.count()).select_from(Document)
                            .where(Document.certificate_id.is_(None))).scalar_one()
    assert len(files) == demo.document_files and arrivals == demo.document_arrivals
    assert orphans == 0 and arrivals >= 50
    kinds = Counter(media for _, media, _, _ in files)
    assert {"application/pdf", "image/png", "image/jpeg"} <= set(kinds)
    assert any(pages > 1 for _, _, pages, _ in files), "a multi-page document"
    image_only = 0
    for _sha, media, pages, data in files:
        probe = probe_document(data, filename="demo")
        assert (probe.media_type, probe.page_count) == (media, pages)
        if media == "application/pdf":
            with pymupdf.open(stream=data, filetype="pdf") as doc:
                text = doc[0].get_text()
                if not text.strip():
                    image_only += 1
                    assert doc[0].get_images(), "a scan is an image-only page"
                else:
                    assert "Signature of purchaser" in text
    assert image_only >= 1, "at least one rasterised desk scan"


def test_audit_chain_records_what_was_created(db, demo) -> None:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        report = audit.verify_chain(s)
        actions = Counter(s.execute(select(AuditEvent.action)).scalars())
        summary = s.execute(select(AuditEvent.details).where(AuditEvent.action == "demo.generated")).scalar_one()
    assert report.ok, report.problem
    assert report.events == demo.audit_events
    assert actions["certificate.created"] == 60
    assert actions["customer.created"] == demo.customers
    assert actions["company.created"] == 3
    assert actions["document.received"] == demo.document_files
    assert summary["seed"] == 7 and summary["certificates"] == 60


def _snapshot(db: Database) -> dict[str, object]:
    with db.reader() as s:
        customers = s.execute(select(Customer.number, Customer.legal_name, Customer.email, Customer.bill_to_line1,
                                     Customer.ship_to_state, Customer.parent_id).order_by(Customer.id)).all()
        certs = s.execute(select(Certificate.form_code, Certificate.certificate_number, Certificate.purchaser_tax_id,
                                 Certificate.exempt_reason, Certificate.review_state, Certificate.signed_date,
                                 Certificate.effective_date, Certificate.expiry_date, Certificate.po_number,
                                 Certificate.product_codes, Certificate.exempt_percent).order_by(Certificate.id)).all()
        lines = s.execute(select(CoverageLine.certificate_id, CoverageLine.state, CoverageLine.state_tax_id,
                                 CoverageLine.expiry_date).order_by(CoverageLine.id)).all()
        docs = s.execute(select(Document.certificate_id, Document.sha256, Document.original_name)
                         .order_by(Document.certificate_id)).all()
    return {"customers": [tuple(r) for r in customers], "certificates": [tuple(r) for r in certs],
            "lines": [tuple(r) for r in lines], "documents": [tuple(r) for r in docs]}


def test_same_seed_same_data(db, demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = Database(f"sqlite:///{tmp_path / 'again.sqlite'}")
    other.upgrade()
    try:
        DemoService(other, RULES).generate(DemoOptions(certificates=60, seed=7, as_of=AS_OF))
        assert _snapshot(other) == _snapshot(db)
    finally:
        other.dispose()


def test_refuses_a_database_with_data_unless_add(db, company_id) -> None:  # type: ignore[no-untyped-def]
    service = DemoService(db, RULES)
    with pytest.raises(ValidationError, match="--add"):
        service.generate(DemoOptions(certificates=20, seed=1, as_of=AS_OF))
    with db.reader() as s:
        assert existing_data(s) == {"companies": 1, "customers": 0, "certificates": 0}
    result = service.generate(DemoOptions(certificates=20, seed=1, as_of=AS_OF, add=True, company="Acme Supply Co"))
    assert result.certificates == 20
    with db.reader() as s:
        # The existing company was reused as the default demo company, not duplicated.
        assert s.execute(select(func.count()).select_from(Company)).scalar_one() == 3
        acme = s.execute(select(Company).where(Company.name == "Acme Supply Co")).scalar_one()
        assert acme.id == company_id
        assert audit.verify_chain(s).ok


def test_cancel_writes_nothing(db) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def progress(done: int, total: int, text: str) -> None:
        assert 0 <= done <= total
        seen.append(text)

    def cancel() -> bool:
        return any(t.startswith("Certificates") for t in seen)

    with pytest.raises(Cancelled):
        DemoService(db, RULES).generate(DemoOptions(certificates=2500, seed=1, as_of=AS_OF),
                                        progress=progress, cancel=cancel)
    with db.reader() as s:
        assert existing_data(s) == {"companies": 0, "customers": 0, "certificates": 0}
        assert audit.count_events(s) == 0
        assert s.execute(select(func.count()).select_from(DocumentFile)).scalar_one() == 0


def test_planner_customers_look_real() -> None:
    options = DemoOptions(certificates=8000, seed=3, as_of=AS_OF)
    planner = Planner(RULES, options, [ExpiryContext(RULES)] * 3, [30] * 3, set(), ["A", "B", "C"])
    customers = planner.plan_customers(2000)
    assert len({c.number for c in customers}) == 2000
    assert any(c.parent is not None for c in customers), "some subsidiaries with a parent"
    assert {c.kind for c in customers} >= {"reseller", "manufacturer", "nonprofit", "government", "farm",
                                           "educational", "religious"}
    plans = list(planner.plan_certificates(3000))
    assert any(p.certificate_type == "single_use" and p.po_number for p in plans)
    assert any(p.product_codes or p.commodity_codes for p in plans)
    assert any(p.exempt_percent is not None or p.exempt_amount is not None for p in plans)
    assert any(p.form.code == "MTC-UNIFORM" and len(p.lines) > 1 for p in plans)
    # A customer keeps its permit number in a state across certificates (and the number of a document the
    # state issued it, which is another number).
    held: dict[tuple[int, str, str], set[str]] = {}
    for p in plans:
        if not p.form.is_multistate:
            issued = p.form.code if p.form.state_document is not None else ""
            held.setdefault((p.customer, p.lines[0].state, issued), set()).add(p.purchaser_tax_id)
    assert all(len(numbers) == 1 for numbers in held.values())
    # Where the state prints the expiry on the document (WA reseller permit, FL annual resale certificate,
    # LA, OK, ME, DC: rules pack ``printed``), the clerk enters the printed date: validation asks for it.
    printed = [p for p in plans if any(RULES.expiry_rule(ln.state, p.form.code, p.reason).printed
                                       for ln in p.lines)]
    assert printed, "some certificates on forms whose expiry the state prints"
    assert all(p.expiry_override is not None and ln.expiry_origin == "printed"
               for p in printed for ln in p.lines), [(p.form.code, p.expiry_override) for p in printed[:5]]


def test_permit_numbers_fit_known_patterns() -> None:
    import random

    permits = PermitNumbers(RULES)
    rng = random.Random(1)
    for code, state in RULES.states.items():
        if state.permit.pattern:
            for _ in range(20):
                number = permits.make(code, rng)
                assert state.permit.matches(number), (code, number)
