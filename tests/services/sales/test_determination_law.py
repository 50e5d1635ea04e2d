"""Which certificate covers which sale, as the law says: states without a sales tax, good-faith windows,
renewal policy that is not law, tax on the exempt portion of a partly exempt sale, and the acceptance of
forms. Each case names its rule and its source; the expected values come from the source (the statute or
the rules pack entry citing it), not from running the code."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import inspect, text, update

from ecms_desktop.cli import main
from ecms_desktop.models import Certificate, CoverageLine, Document, DocumentFile
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core.database import _alembic_config
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.sales import exemption_feed
from ecms_desktop.services.sales.candidates import load_candidates
from ecms_desktop.services.sales.determination import (
    RULE_PAST_POLICY as RULE_PAST,
)
from ecms_desktop.services.sales.determination import (
    CandidateCertificate,
    CoverageFacts,
    SaleLine,
    determine,
)
from ecms_desktop.services.sales.determination_records import classify_exposure, over_collected
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exposure import PAST_POLICY, TAX_ON_COVERED, UNCOVERED
from ecms_desktop.services.sales.periods import PeriodService
from tests.factories import import_sales, make_signed_certificate

D = dt.date
AS_OF = D(2026, 11, 20)
RULES = load_rules_pack()


JUNE = D(2026, 6, 1)
NEW_YEAR = D(2026, 1, 1)


def sale(state: str, day: dt.date = JUNE, amount: str = "900.00") -> SaleLine:
    return SaleLine("INV-1", 1, day, "c-1", state, Decimal(amount))


def cert(state: str, form: str, *, reason: str = "resale", effective: dt.date = NEW_YEAR,
         obtained: dt.date | None = None, expiry: dt.date | None = None, policy_only: bool = False,
         law_expiry: dt.date | None = None, suspended: dt.date | None = None, cid: int = 1,
         exempt_amount: str | None = None) -> CandidateCertificate:
    line = CoverageFacts(cid, state, expiry, suspended_on=suspended, policy_only=policy_only, law_expiry=law_expiry,
                         policy_text="renewal policy" if policy_only else "")
    return CandidateCertificate(cid, "c-1", "approved", reason, form, (line,), certificate_number=f"N-{cid}",
                                effective_date=effective, obtained_on=obtained,
                                exempt_amount=Decimal(exempt_amount) if exempt_amount else None)


# -- 2. states without a sales tax ----------------------------------------------------------------------

# (state, taxes sales?, source): the rules pack's has_sales_tax and local_tax, which cite them.
NO_TAX_CASES = [
    ("OR", False, "Oregon DOR: no general sales tax (https://www.oregon.gov/dor/programs/businesses/pages/sales-tax.aspx)"),
    ("DE", False, "Delaware levies a gross receipts tax, no sales tax (rules pack DE has_sales_tax false)"),
    ("MT", False, "Montana: no general sales tax (rules pack MT has_sales_tax false)"),
    ("NH", False, "New Hampshire: no general sales tax (rules pack NH has_sales_tax false)"),
    ("AK", True, "Alaska: no state tax, but ARSSTC member cities and boroughs tax sales (rules pack AK local_tax)"),
    ("TX", True, "Texas Tax Code ch. 151"),
]


@pytest.mark.parametrize(("state", "taxes", "source"), NO_TAX_CASES)
def test_a_sale_claimed_exempt_without_certificate_is_exposure_only_where_the_state_taxes_sales(
        state: str, taxes: bool, source: str) -> None:
    """Rule no_sales_tax (StateRule.taxes_sales). Source: see the case."""
    result = determine(sale(state), [])
    kind, amount = classify_exposure(result, True, Decimal(0))
    if taxes:
        assert result.rule == "coverage.none" and (kind, amount) == ("unsupported_claim", Decimal("900.00"))
    else:
        assert result.rule == "no_sales_tax" and (kind, amount) == ("", Decimal(0))
        assert not result.exempt and result.taxable_amount == 0
        assert f"{state} has no sales tax" in result.summary and "source:" in result.summary
        assert result.explanation()["rule"] == "no_sales_tax"


@pytest.mark.parametrize("workers", [0, 1])
def test_oregon_is_no_exposure_on_the_bulk_runs_sql_and_engine_paths(db, company_id, tmp_path, workers) -> None:  # type: ignore[no-untyped-def]
    """Rule no_sales_tax, on both paths of the bulk run: a customer without any certificate (SQL) and one
    with a certificate elsewhere but an Oregon line in the candidate index (the engine). Source: the
    reviewer's case: 900.00 shipped to Oregon, claimed exempt, no certificate, is no unsupported claim."""
    make_signed_certificate(db, company_id, "C-2", as_of=AS_OF, states=("OR", "TX"), form="SST-F0003",
                            review="approved")
    rows = [f"S{i},1,2026-03-{i + 1:02d},C-1,OR,900,0,yes" for i in range(4)]
    rows += [f"E{i},1,2026-03-{i + 1:02d},C-2,OR,900,0,yes" for i in range(4)]
    rows += ["K1,1,2026-03-01,C-1,AK,900,0,yes"]
    import_sales(db, company_id, tmp_path, *rows)
    svc = DeterminationService(db)
    summary = svc.run(company_id, batch=3, workers=workers)
    assert summary.lines == 9 and summary.exposures == 1
    results = {r.invoice_number: r for r in svc.iter_results(company_id)}
    for name in ("S0", "S3", "E0", "E3"):
        r = results[name]
        assert r.exposure_kind == "" and r.taxable_amount == 0 and not r.exempt, name
        assert r.explanation["rule"] == "no_sales_tax" and "OR has no sales tax" in r.explanation["summary"]
    assert results["K1"].exposure_kind == "unsupported_claim"
    report = svc.exposure(company_id, D(2026, 1, 1), D(2026, 12, 31))
    assert dict(report.totals_by("state", UNCOVERED)) == {"AK": Decimal("900.00")}


# -- 4. good-faith windows ------------------------------------------------------------------------------

# (state, form, days after the sale obtained, covers?, rule, source of the window)
GOOD_FAITH_CASES = [
    ("OH", "SST-F0003", 90, True, "coverage.good_faith", "SSUTA s. 317; R.C. 5739.03(B): 90 days"),
    ("OH", "SST-F0003", 91, False, "coverage.after_good_faith_window", "SSUTA s. 317; R.C. 5739.03(B): 90 days"),
    ("PA", "PA-REV-1220", 60, True, "coverage.good_faith", "61 Pa. Code 32.2; REV-1220 instructions: 60 days"),
    ("PA", "PA-REV-1220", 61, False, "coverage.after_good_faith_window", "61 Pa. Code 32.2: 60 days"),
    ("MI", "MI-3372", 120, True, "coverage.good_faith", "MCL 205.62(5)-(7); RAB 2024-11: 120 days"),
    ("MI", "MI-3372", 121, False, "coverage.after_good_faith_window", "MCL 205.62: 120 days"),
    ("WA", "SST-F0003", 120, True, "coverage.good_faith", "RCW 82.04.470; WAC 458-20-102(7): 120 days"),
    ("WA", "SST-F0003", 121, False, "coverage.after_good_faith_window", "WAC 458-20-102(7): 120 days"),
    ("TX", "TX-01-339", 1, False, "coverage.after_good_faith_window",
     "Tex. Tax Code 151.054; 34 TAC 3.285: at or before the transaction, no window"),
]


@pytest.mark.parametrize(("state", "form", "late", "covers", "rule", "source"), GOOD_FAITH_CASES)
def test_a_certificate_obtained_after_the_sale_covers_it_within_the_states_window(
        state: str, form: str, late: int, covers: bool, rule: str, source: str) -> None:
    """Rule good_faith.days of the rules pack. Source: see the case."""
    day = D(2026, 3, 2)
    obtained = day + dt.timedelta(days=late)
    result = determine(sale(state, day), [cert(state, form, effective=obtained, obtained=obtained)])
    assert result.exempt is covers and result.rule == rule
    reasons = " ".join(result.outcomes[0].reasons)
    window = RULES.state(state).good_faith
    if window.days is None:
        assert f"{state} gives no good-faith window" in reasons and window.source in reasons
    else:
        where = "within" if covers else "after"
        assert f"obtained {late} days after the sale, {where} the state's window of {window.days} days" in reasons
        assert window.source in reasons


def test_good_faith_needs_the_certificate_obtained_after_the_sale() -> None:
    """Rule good_faith: the window is for obtaining a certificate after the sale (SSUTA s. 317 "within
    ninety days subsequent to the date of sale"). One the seller had before the sale but that states a
    later effective date does not cover it."""
    result = determine(sale("OH", D(2026, 3, 2)), [cert("OH", "SST-F0003", effective=D(2026, 4, 1),
                                                        obtained=D(2026, 2, 1))])
    assert not result.exempt and result.rule == "coverage.not_yet_effective"


def test_a_certificate_in_force_at_the_sale_comes_before_one_obtained_later() -> None:
    """Coverage tiers: in force on the invoice date before good faith; the later one is no conflict.
    Source: the precedence of the README, "Which certificate covers which sale"."""
    day = D(2026, 3, 2)
    old = cert("OH", "SST-F0003", effective=D(2025, 1, 1), cid=1)
    new = cert("OH", "SST-F0003", effective=D(2026, 3, 20), obtained=D(2026, 3, 20), cid=2)
    result = determine(sale("OH", day), [new, old])
    assert result.certificate_id == 1 and result.rule == "coverage.certificate"
    assert result.also_eligible == () and not result.conflict_warning
    assert [o.outcome for o in result.outcomes] == ["eligible", "applied"]


def test_the_bulk_run_counts_the_window_from_when_the_certificate_was_recorded(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Rule good_faith with "obtained" = the first document received, else the day the certificate was
    recorded, never before it was signed. Source: Ohio R.C. 5739.03(B) (90 days, rules pack OH)."""
    detail = make_signed_certificate(db, company_id, as_of=AS_OF, states=("OH",), form="SST-F0003",
                                     review="approved", signed_date=D(2026, 4, 1), effective_date=D(2026, 4, 1))
    with db.transaction() as s:
        s.execute(update(Certificate).where(Certificate.id == detail.id)
                  .values(created_at=dt.datetime(2026, 4, 1, 15, 0, tzinfo=dt.UTC)))
    import_sales(db, company_id, tmp_path, "G1,1,2026-01-01,C-1,OH,100,0,yes", "G2,1,2025-12-31,C-1,OH,100,0,yes")
    with db.reader() as s:
        (candidate,) = load_candidates(s, company_id)[("c-1", "OH")]
    assert candidate.obtained_on == D(2026, 4, 1)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    results = {r.invoice_number: r for r in svc.iter_results(company_id)}
    assert results["G1"].exempt and results["G1"].explanation["rule"] == "coverage.good_faith"
    assert not results["G2"].exempt and results["G2"].exposure_kind == "unsupported_claim"
    assert results["G2"].explanation["rule"] == "coverage.after_good_faith_window"


def test_obtained_is_the_first_document_received_never_before_signature(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """"Obtained" (good faith): the first document stored with the certificate (a discarded one does not
    count), else when the certificate was recorded; never before the purchaser signed it."""
    detail = make_signed_certificate(db, company_id, as_of=AS_OF, states=("OH",), form="SST-F0003",
                                     review="approved", signed_date=D(2026, 4, 1), effective_date=D(2026, 4, 1))
    utc = dt.UTC
    with db.transaction() as s:
        s.execute(update(Certificate).where(Certificate.id == detail.id)
                  .values(created_at=dt.datetime(2026, 6, 1, tzinfo=utc)))
        s.add(DocumentFile(sha256="a" * 64, size=1, media_type="application/pdf", page_count=1, data=b"x"))
        s.flush()
        for received, discarded in ((dt.datetime(2026, 3, 20, tzinfo=utc), dt.datetime(2026, 3, 21, tzinfo=utc)),
                                    (dt.datetime(2026, 4, 10, 23, 0, tzinfo=utc), None),
                                    (dt.datetime(2026, 5, 1, tzinfo=utc), None)):
            s.add(Document(certificate_id=detail.id, sha256="a" * 64, original_name="c.pdf", received_via="scan",
                           received_at=received, discarded_at=discarded))
    with db.reader() as s:
        (candidate,) = load_candidates(s, company_id)[("c-1", "OH")]
    assert candidate.obtained_on == D(2026, 4, 10)
    with db.transaction() as s:
        s.execute(update(Document).where(Document.certificate_id == detail.id)
                  .values(received_at=dt.datetime(2026, 3, 1, tzinfo=utc), discarded_at=None))
    with db.reader() as s:
        (candidate,) = load_candidates(s, company_id)[("c-1", "OH")]
    assert candidate.obtained_on == D(2026, 4, 1)  # received before it was signed: the signed date


# -- 5. renewal policy is not law -----------------------------------------------------------------------

# (state, form, reason, signed, policy?, source of the expiry rule's basis)
POLICY_CASES = [
    ("IL", "IL-CRT-61", "resale", True, "86 Ill. Adm. Code 130.1405(c)(1); CRT-61: update at least every 3 years "
                                        "(recommendation, no statutory expiry)"),
    ("KY", "KY-51A105", "resale", True, "103 KAR 31:111 s.1(2): 51A105 has no expiration; 4 years is a recommendation"),
    ("NY", "NY-ST-120", "resale", True, "NY sets no fixed expiration (TB-ST-240); 5 years is our practice"),
    ("ND", "ND-SFN-21950", "resale", True, "ND Tax Commissioner guideline: obtain at least every 2 years "
                                           "(recommendation)"),
    ("MI", "MI-3372", "resale", False, "MI Form 3372 / RAB 2024-11: blanket certificate valid up to 4 years (law)"),
    ("WA", "WA-RESELLER-PERMIT", "resale", False, "WAC 458-20-102: reseller permit valid 48 months (regulation)"),
]


@pytest.mark.parametrize(("state", "form", "reason", "policy", "source"), POLICY_CASES)
def test_the_loader_marks_an_expiry_as_policy_from_its_rules_basis(db, company_id, state, form, reason, policy,  # type: ignore[no-untyped-def]
                                                                   source) -> None:
    """Rule: an expiry whose basis is recommendation or practice is policy, not law. Source: see the case."""
    rule = RULES.expiry_rule(state, form, reason)
    assert (rule.basis in ("recommendation", "practice")) is policy, rule.basis
    make_signed_certificate(db, company_id, as_of=AS_OF, states=(state,), form=form, review="approved",
                            exempt_reason=reason, signed_date=D(2020, 1, 1), effective_date=D(2020, 1, 1))
    with db.reader() as s:
        (candidate,) = load_candidates(s, company_id)[("c-1", state)]
    line = candidate.lines[0]
    assert line.expiry_date is not None
    assert line.policy_only is policy
    if policy:
        assert line.law_expiry is None and rule.source in line.policy_text


# (expiry of the line, policy only?, expiry in law, sale day, past or new sale, covers?, rule)
EXPIRY_CASES = [
    (D(2026, 3, 31), True, None, D(2026, 6, 1), "past", True, "coverage.past_policy"),
    (D(2026, 3, 31), True, None, D(2026, 6, 1), "new", False, "coverage.expired"),
    (D(2026, 3, 31), True, D(2026, 5, 31), D(2026, 6, 1), "past", False, "coverage.expired"),
    (D(2026, 3, 31), True, D(2026, 12, 31), D(2026, 6, 1), "past", True, "coverage.past_policy"),
    (D(2026, 3, 31), False, None, D(2026, 6, 1), "past", False, "coverage.expired"),
    (D(2026, 7, 31), True, None, D(2026, 6, 1), "past", True, "coverage.certificate"),
]


@pytest.mark.parametrize(("expiry", "policy", "law", "day", "kind", "covers", "rule"), EXPIRY_CASES)
def test_a_past_sale_is_covered_while_the_certificate_is_valid_in_law(expiry, policy, law, day, kind, covers,  # type: ignore[no-untyped-def]
                                                                      rule) -> None:
    """Rule: renewal policy is not law (issue: KY 4, NY 5, IL 3, ND 2 years are policies); new sales
    (the status question) follow the policy. Source: the expiry rule's basis in the rules pack."""
    result = determine(sale("IL", day), [cert("IL", "IL-CRT-61", expiry=expiry, policy_only=policy,
                                              law_expiry=law)], policy_binds=kind == "new")
    assert result.exempt is covers and result.rule == rule


def test_a_suspension_at_a_policy_expiry_is_policy_too() -> None:
    """The renewal loop suspends exempt status the day after a policy expiry: new sales stop, past
    sales stay covered in law."""
    c = cert("IL", "IL-CRT-61", expiry=D(2026, 3, 31), policy_only=True, suspended=D(2026, 4, 1))
    assert determine(sale("IL"), [c]).rule == "coverage.past_policy"
    assert determine(sale("IL"), [c], policy_binds=True).rule == "coverage.expired"


def test_past_policy_sales_are_a_third_measure_and_the_status_question_follows_the_policy(  # type: ignore[no-untyped-def]
        db, company_id, tmp_path) -> None:
    """IL resale, 3 years (recommendation: 86 Ill. Adm. Code 130.1405(c)(1)); an override is never
    policy; MI resale, 4 years in law (basis law) is exposure after it."""
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, states=("IL",), form="IL-CRT-61",
                            review="approved", signed_date=D(2022, 1, 1), effective_date=D(2022, 1, 1))
    make_signed_certificate(db, company_id, "C-2", as_of=AS_OF, states=("IL",), form="IL-CRT-61",
                            review="approved", signed_date=D(2022, 1, 1), effective_date=D(2022, 1, 1),
                            expiry_override=D(2024, 12, 31), expiry_override_reason="printed on the card")
    make_signed_certificate(db, company_id, "C-3", as_of=AS_OF, states=("MI",), form="MI-3372",
                            review="approved", signed_date=D(2021, 1, 1), effective_date=D(2021, 1, 1))
    import_sales(db, company_id, tmp_path, "P1,1,2025-06-01,C-1,IL,500,0,yes", "P2,1,2025-06-01,C-2,IL,70,0,yes",
                 "P3,1,2025-06-01,C-3,MI,30,0,yes")
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    results = {r.invoice_number: r for r in svc.iter_results(company_id)}
    assert results["P1"].exempt and results["P1"].exposure_kind == "past_policy"
    assert results["P2"].exposure_kind == "unsupported_claim"
    assert results["P3"].exposure_kind == "unsupported_claim"
    report = svc.exposure(company_id, D(2025, 1, 1), D(2025, 12, 31))
    assert report.past_policy.untaxed_amount == Decimal("500.00") and report.past_policy.lines == 1
    assert report.uncovered.untaxed_amount == Decimal("100.00")
    assert dict(report.totals_by("state", PAST_POLICY)) == {"IL": Decimal("500.00")}
    (status,) = exemption_feed.customer_status(db, company_id, "C-1", as_of=D(2025, 6, 1))
    assert status.exempt is False  # a new sale on that day: our policy says renew first


def test_reprocessing_files_a_past_policy_sale_in_the_third_measure_in_filed_and_open_periods(  # type: ignore[no-untyped-def]
        db, company_id, tmp_path) -> None:
    """Reprocessing decides like the bulk run (renewal policy is not law, IL 3 years recommendation:
    86 Ill. Adm. Code 130.1405(c)(1)); in a filed period the correction entry carries the rule, and the
    report reads it from there."""
    import_sales(db, company_id, tmp_path, "F1,1,2025-02-10,C-1,IL,100,0,yes", "O1,1,2025-10-05,C-1,IL,40,0,yes")
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)  # no certificate yet: both uncovered
    PeriodService(db).file(company_id, "IL", "2025-02")
    late = make_signed_certificate(db, company_id, as_of=AS_OF, states=("IL",), form="IL-CRT-61", review="approved",
                                   signed_date=D(2021, 1, 1), effective_date=D(2021, 1, 1))
    svc.reprocess(late.id, D(2025, 1, 1), D(2025, 12, 31), as_of=AS_OF)
    report = svc.exposure(company_id, D(2025, 1, 1), D(2025, 12, 31))
    assert report.uncovered.lines == 0
    assert (report.past_policy.lines, report.past_policy.untaxed_amount) == (2, Decimal("140.00"))
    rules = {x.invoice_number: (x.measure, x.rule, x.corrected)
             for x in svc.exposed_lines(company_id, D(2025, 1, 1), D(2025, 12, 31))}
    assert rules == {"F1": (PAST_POLICY, "coverage.past_policy", True),
                     "O1": (PAST_POLICY, "coverage.past_policy", False)}


def test_a_company_policy_shorter_than_the_law_is_policy_and_the_law_still_ends(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """A line under the company's own expiry policy (expiry_origin company) is policy; the law's expiry
    (MI 4 years, basis law) still ends coverage."""
    detail = make_signed_certificate(db, company_id, as_of=AS_OF, states=("MI",), form="MI-3372",
                                     review="approved", signed_date=D(2020, 1, 1), effective_date=D(2020, 1, 1))
    with db.transaction() as s:
        s.execute(update(CoverageLine).where(CoverageLine.certificate_id == detail.id)
                  .values(expiry_date=D(2021, 12, 31), expiry_origin="company"))
    with db.reader() as s:
        (candidate,) = load_candidates(s, company_id)[("c-1", "MI")]
    line = candidate.lines[0]
    assert line.policy_only and line.law_expiry == D(2023, 12, 31)
    assert determine(SaleLine("I", 1, D(2023, 6, 1), "c-1", "MI", Decimal(1)), [candidate]).rule == RULE_PAST
    assert determine(SaleLine("I", 1, D(2024, 6, 1), "c-1", "MI", Decimal(1)), [candidate]).rule == "coverage.expired"


# -- 3. partial exemptions: tax on the exempt portion only ----------------------------------------------

# (exempt, taxable, tax collected, taxed amount given, over-collection, source)
PARTIAL_CASES = [
    ("300", "700", "43.75", None, "0.00", "reviewer: 43.75 on the taxable 700 (6.25%) is correct tax"),
    ("300", "700", "43.75", "700", "0.00", "the ERP says tax was charged on 700: none on the exempt part"),
    ("300", "700", "62.50", "1000", "18.75", "tax charged on all 1,000: the exempt 300's share of 62.50"),
    ("1000", "0", "62.50", None, "62.50", "fully exempt: all tax collected is on the exempt portion"),
    ("300", "700", "0", "1000", "0.00", "no tax collected"),
]


@pytest.mark.parametrize(("exempt", "taxable", "tax", "taxed", "expected", "source"), PARTIAL_CASES)
def test_only_tax_on_the_exempt_portion_is_over_collection(exempt, taxable, tax, taxed, expected, source) -> None:  # type: ignore[no-untyped-def]
    """Rule over_collected. Source: see the case (issue's example: 300 of 1,000 exempt)."""
    got = over_collected(Decimal(exempt), Decimal(taxable), Decimal(tax), Decimal(taxed) if taxed else None)
    assert got == Decimal(expected)


def test_partial_exemption_end_to_end_with_the_taxed_amount_column(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The reviewer's case through import, bulk run and report: 0 over-collection; tax charged on the full
    amount (taxed_amount 1000): 18.75."""
    make_signed_certificate(db, company_id, as_of=AS_OF, states=("TX",), form="TX-01-339", review="approved",
                            exempt_amount=Decimal(300))
    columns = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "amount",
               "tax_collected", "exempt_claimed", "taxed_amount")
    import_sales(db, company_id, tmp_path, "R1,1,2026-03-01,C-1,TX,1000,43.75,no,",
                 "R2,1,2026-03-01,C-1,TX,1000,62.50,no,1000", "R3,1,2026-03-01,C-1,TX,1000,43.75,no,700",
                 columns=columns)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    results = {r.invoice_number: r for r in svc.iter_results(company_id)}
    assert results["R1"].exempt_amount == Decimal("300.00") and results["R1"].exposure_kind == ""
    assert results["R3"].exposure_kind == ""
    assert (results["R2"].exposure_kind, results["R2"].exposure_amount) == ("tax_on_exempt", Decimal("18.75"))
    report = svc.exposure(company_id, D(2026, 1, 1), D(2026, 12, 31))
    assert report.tax_on_covered.tax_collected == Decimal("18.75")
    lines = svc.exposed_lines(company_id, D(2026, 1, 1), D(2026, 12, 31))
    assert [(x.invoice_number, x.measure, x.rule) for x in lines] == [
        ("R2", TAX_ON_COVERED, "over_collection.exempt_portion")]


def test_a_bad_taxed_amount_is_refused_naming_row_and_column(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    columns = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "amount",
               "tax_collected", "exempt_claimed", "taxed_amount")
    with pytest.raises(ValidationError) as info:
        import_sales(db, company_id, tmp_path, "B1,1,2026-03-01,C-1,TX,1000,43.75,no,-5",
                     "B2,1,2026-03-01,C-1,TX,1000,43.75,no,lots", columns=columns)
    messages = {(p.row, p.column): p.message for p in info.value.problems}
    assert set(messages) == {(2, "taxed_amount"), (3, "taxed_amount")}
    assert "'-5' is not an amount tax was charged on" in messages[(2, "taxed_amount")]


def test_migration_0013_adds_the_taxed_amount_and_going_back_refuses_while_one_is_given(db, company_id,  # type: ignore[no-untyped-def]
                                                                                          tmp_path) -> None:
    columns = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "amount",
               "tax_collected", "exempt_claimed", "taxed_amount")
    import_sales(db, company_id, tmp_path, "M1,1,2026-03-01,C-1,TX,1000,62.50,no,1000", columns=columns)
    with db.engine.connect() as conn, pytest.raises(RuntimeError, match=r"invoices M1 give the amount tax was"):
        command.downgrade(_alembic_config(conn), "0012")
    with db.transaction() as s:
        s.execute(text("UPDATE transaction_line SET taxed_amount = NULL"))
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0012")
        conn.commit()
        assert "taxed_amount" not in {c["name"] for c in inspect(conn).get_columns("transaction_line")}
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
    with db.reader() as s:
        assert s.execute(text("SELECT invoice_number, taxed_amount FROM transaction_line")).all() == [("M1", None)]


# -- 1. acceptance, with its rule id --------------------------------------------------------------------

# (state, form, reason, source)
REFUSAL_CASES = [
    ("TX", "SST-F0003", "resale", "Texas is not an SST member (rules pack TX sst.membership none)"),
    ("NY", "MTC-UNIFORM", "resale", "NY does not accept the MTC uniform certificate (rules pack NY mtc)"),
]


@pytest.mark.parametrize(("state", "form", "reason", "source"), REFUSAL_CASES)
def test_a_refused_form_never_covers_and_the_line_names_the_rule(state, form, reason, source) -> None:  # type: ignore[no-untyped-def]
    """Rule coverage.form_refused (RulesPack.form_acceptance). Source: see the case."""
    result = determine(sale(state), [cert(state, form, reason=reason)])
    acc = RULES.form_acceptance(state, form, reason)
    assert not result.exempt and result.rule == "coverage.form_refused"
    assert acc.source in " ".join(result.outcomes[0].reasons)


# -- ecms exposure --format json ------------------------------------------------------------------------

def test_exposure_json_gives_each_line_its_measure_and_rule(db, db_url, company_id, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, states=("IL",), form="IL-CRT-61",
                            review="approved", signed_date=D(2022, 1, 1), effective_date=D(2022, 1, 1))
    make_signed_certificate(db, company_id, "C-2", as_of=AS_OF, states=("MI",), form="MI-3372",
                            review="approved", signed_date=D(2020, 1, 1), effective_date=D(2020, 1, 1))
    import_sales(db, company_id, tmp_path, "J1,1,2025-06-01,C-1,IL,500,0,yes", "J2,1,2025-06-01,C-2,MI,30,0,yes",
                 "J3,1,2025-06-01,C-3,OR,900,0,yes", "J4,1,2025-06-01,C-3,TX,10,0,yes")
    DeterminationService(db).run(company_id, workers=0)
    code = main(["--db", db_url, "exposure", "--from", "2025-01-01", "--to", "2025-12-31", "--format", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    lines = {x["invoice_number"]: (x["measure"], x["rule"]) for x in data["lines"]}
    assert lines == {"J1": (PAST_POLICY, "coverage.past_policy"), "J2": (UNCOVERED, "coverage.expired"),
                     "J4": (UNCOVERED, "coverage.none")}
    assert data[PAST_POLICY]["untaxed_amount"] == "500.00"
    assert data[UNCOVERED]["untaxed_amount"] == "40.00"
    assert "total" not in data
