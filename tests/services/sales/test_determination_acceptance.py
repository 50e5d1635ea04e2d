"""A coverage line never covers a sale in a state that does not accept the certificate's form for its
reason (the rules pack decides, in one place shared with validation), on every determination path: the
engine, the bulk run (its SQL part and its worker process), reprocessing, the status question and the
ERP feed. However the certificate got approved (an old import, findings accepted by hand), an SST form
does not exempt Texas resale and an MTC form does not exempt New York."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ecms_desktop.cli import main
from ecms_desktop.models.transactions import ExemptionStatusEvent
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.sales import exemption_feed
from ecms_desktop.services.sales.determination import CandidateCertificate, CoverageFacts, SaleLine, determine
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exposure import UNCOVERED
from ecms_desktop.services.validation.engine import ValidationEngine, subject_of
from tests.factories import import_sales, make_signed_certificate

D = dt.date
AS_OF = D(2026, 11, 20)
RULES = load_rules_pack()


def _refusal_words(state: str, form: str, reason: str = "resale") -> tuple[str, ...]:
    """What the explanation must name: the rules pack's rule id, its message and its source."""
    acc = RULES.form_acceptance(state, form, reason)
    assert acc.refused, (state, form, reason)
    return acc.rule, acc.message, acc.source


# -- the engine ----------------------------------------------------------------------------------------


def _candidate(form: str, *states: str, reason: str = "resale") -> CandidateCertificate:
    return CandidateCertificate(
        certificate_id=1, customer_key="c-1", review_state="approved", exempt_reason=reason, form_code=form,
        lines=tuple(CoverageFacts(10 + i, st) for i, st in enumerate(states)), certificate_number="MULTI-1",
        effective_date=D(2026, 1, 1))


def _sale(state: str) -> SaleLine:
    return SaleLine("INV-1", 1, D(2026, 6, 15), "c-1", state, Decimal("100.00"))


@pytest.mark.parametrize(("form", "refused_in", "accepted_in"), [
    ("SST-F0003", "TX", "OH"),   # Texas refuses the SST certificate for resale; Ohio is a member
    ("MTC-UNIFORM", "NY", "TX"),  # New York accepts no multistate form; Texas takes the MTC form
    ("SST-F0003", "NY", "MI"),
])
def test_the_engine_never_covers_a_sale_where_the_state_refuses_the_form(form, refused_in, accepted_in) -> None:  # type: ignore[no-untyped-def]
    cert = _candidate(form, refused_in, accepted_in)
    refused = determine(_sale(refused_in), [cert])
    assert not refused.exempt and refused.taxable_amount == Decimal("100.00") and refused.certificate is None
    why = " ".join(refused.outcomes[0].reasons)
    for words in _refusal_words(refused_in, form):
        assert words in why
    assert determine(_sale(accepted_in), [cert]).exempt


def test_a_restricted_acceptance_still_covers_only_its_reasons() -> None:
    nonprofit = _candidate("SST-F0003", "TN", reason="nonprofit")  # Tennessee: SST for resale only
    result = determine(SaleLine("INV-2", 1, D(2026, 6, 15), "c-1", "TN", Decimal("10")), [nonprofit])
    assert not result.exempt and "sst.refused" in " ".join(result.outcomes[0].reasons)
    assert determine(_sale("TN"), [_candidate("SST-F0003", "TN")]).exempt


def test_validation_and_determination_read_the_same_acceptance() -> None:
    """One place decides: the validation finding and the engine's reason quote the same rule."""
    data = CertificateInput(company_id=1, customer_id=1, form_code="SST-F0003", lines=(LineInput("TX"),),
                            exempt_reason="resale")
    findings = ValidationEngine(RULES).evaluate(subject_of(data), AS_OF)
    acc = RULES.form_acceptance("TX", "SST-F0003", "resale")
    assert any(f.severity == "error" and f.state == "TX" and f.rule == acc.rule and acc.message in f.message
               and f.source == acc.source for f in findings)
    reasons = " ".join(determine(_sale("TX"), [_candidate("SST-F0003", "TX")]).outcomes[0].reasons)
    assert acc.rule in reasons and acc.message in reasons and acc.source in reasons


# -- stored sales, every path ----------------------------------------------------------------------------


def _approved_despite_findings(db, company_id, form: str, *states: str):  # type: ignore[no-untyped-def]
    """An approved certificate whose form some of its states refuse (as old imports stored them)."""
    return make_signed_certificate(db, company_id, as_of=AS_OF, states=states, form=form, review="approved",
                                   customer_name="Customer One", origin="import", certificate_number=f"{form}-1")


@pytest.mark.parametrize("workers", [0, 1])
def test_bulk_run_and_exposure_report_the_refused_state(db, company_id, tmp_path, workers) -> None:  # type: ignore[no-untyped-def]
    sst = _approved_despite_findings(db, company_id, "SST-F0003", "TX", "OH")
    rows = [f"T{i},1,2026-03-{i + 1:02d},C-1,TX,100,0,yes" for i in range(6)]
    rows += [f"O{i},1,2026-03-{i + 1:02d},C-1,OH,50,0,yes" for i in range(6)]
    rows += ["X1,1,2026-03-01,C-2,TX,10,0,yes"]  # no certificate at all: decided in SQL
    import_sales(db, company_id, tmp_path, *rows)
    svc = DeterminationService(db)
    summary = svc.run(company_id, batch=4, workers=workers)  # several windows: worker and parent both decide
    assert (summary.lines, summary.exempt) == (13, 6)
    results = {r.invoice_number: r for r in svc.iter_results(company_id)}
    for i in range(6):
        tx, oh = results[f"T{i}"], results[f"O{i}"]
        assert not tx.exempt and tx.certificate_id is None and tx.exposure_kind == "unsupported_claim"
        text = json.dumps(tx.explanation)
        for words in _refusal_words("TX", "SST-F0003"):
            assert json.dumps(words)[1:-1] in text
        assert oh.exempt and oh.certificate_id == sst.id
    report = svc.exposure(company_id, D(2026, 1, 1), D(2026, 12, 31))
    by_state = dict(report.totals_by("state", UNCOVERED))
    assert by_state == {"TX": Decimal("610.00")}


def test_reprocessing_and_status_question_refuse_the_state_too(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mtc = _approved_despite_findings(db, company_id, "MTC-UNIFORM", "NY", "TX")
    import_sales(db, company_id, tmp_path, "N1,1,2026-04-01,C-1,NY,80,0,yes", "T1,1,2026-04-01,C-1,TX,20,0,yes")
    svc = DeterminationService(db)
    plan = svc.preview_reprocess(mtc.id, D(2026, 1, 1), D(2026, 12, 31), as_of=AS_OF)
    items = {i.invoice_number: i for i in plan.items}
    assert items["N1"].new_exempt is False and items["T1"].new_exempt is True
    status = {s.state: s for s in exemption_feed.customer_status(db, company_id, "C-1", as_of=D(2026, 6, 1))}
    assert status["NY"].exempt is False and status["TX"].exempt is True
    assert "mtc.refused" in json.dumps(status["NY"].explanation)


def test_ecms_exemptions_status_says_why_the_state_refuses(db, db_url, company_id, capsys) -> None:  # type: ignore[no-untyped-def]
    _approved_despite_findings(db, company_id, "SST-F0003", "TX", "OH")
    code = main(["--db", db_url, "exemptions", "status", "--customer", "C-1", "--as-of", "2026-06-01",
                 "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    states = {s["state"]: s for s in out["states"]}
    assert code == 0 and states["TX"]["exempt"] is False and states["OH"]["exempt"] is True
    assert "34 TAC 3.285" in json.dumps(states["TX"]["explanation"])


def test_the_erp_feed_never_announces_an_exemption_the_state_refuses(db, company_id) -> None:  # type: ignore[no-untyped-def]
    sst = _approved_despite_findings(db, company_id, "SST-F0003", "TX", "OH")
    CertificateService(db).archive(sst.id, "replaced by a Texas form", expected_version=sst.version, as_of=AS_OF)
    with db.reader() as s:
        events = s.query(ExemptionStatusEvent).order_by(ExemptionStatusEvent.id).all()
        assert [(e.state, e.old_status, e.new_status) for e in events] == [("OH", "exempt", "not_exempt")]
    unarchived = CertificateService(db).get(sst.id, AS_OF)
    CertificateService(db).unarchive(sst.id, "archived by mistake", expected_version=unarchived.version, as_of=AS_OF)
    with db.reader() as s:
        assert exemption_feed.customer_exempt_in(s, sst.data.customer_id, "OH", D(2026, 6, 1))
        assert not exemption_feed.customer_exempt_in(s, sst.data.customer_id, "TX", D(2026, 6, 1))
