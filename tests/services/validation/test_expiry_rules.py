"""Validation of expiry rules from primary sources: documents that carry a state-printed expiry date must have
that date entered (a computed date no longer satisfies "expiry date required"), Alaska's ARSSTC certificates
are validated and expire, and Washington's 48 months belong to the reseller permit alone.

Each case names the rule and its source; expected dates are worked out by hand from the source.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.validation.engine import Finding, ValidationEngine, subject_of

RULES = load_rules_pack()
ENGINE = ValidationEngine(RULES)
D = dt.date
AS_OF = D(2026, 11, 20)

VALUES = dict(
    purchaser_name="Prairie Goods LLC", purchaser_address="5 Oak Ave, Springfield", purchaser_ein="12-3456789",
    business_type="retailer", business_description="General merchandise store",
    property_description="Goods for resale", exemption_detail="", signed=True, signer_name="Pat Doe",
    signer_title="Owner", signed_date=D(2026, 3, 1), effective_date=D(2026, 3, 1), po_number="",
)

#: (form, state, a permit number of the state's format, source of "the document carries its expiry date")
PRINTED = [
    ("FL-DR-13", "FL", "1234567890123", "brochure GT-800060 (state-forms.md): contents include 'Expiration date'"),
    ("LA-R-1064", "LA", "1234567890", "LDR FAQ 45: renewal before 'the expiration date printed on the certificate'"),
    ("DC-OTR-368", "DC", "000123456", "9 DCMR 414 as quoted by OTR: 'must show an expiration date'"),
    ("WA-RESELLER-PERMIT", "WA", "A12345678", "RCW 82.32.784(1)(e): permits contain 'The expiration date'"),
    ("ME-RESALE", "ME", "000123456", "36 M.R.S. §1754-B(2-B): 'Each certificate must contain ... the expiration date'"),
    ("OK-RESALE", "OK", "123456789", "OAC 710:65-7-8: the permit's number and its expiration date"),
]


def certificate(state: str, form: str, number: str, **changes: object) -> CertificateInput:
    data = CertificateInput(company_id=1, customer_id=1, form_code=form, lines=(LineInput(state),),
                            exempt_reason="resale", purchaser_tax_id=number, **VALUES)  # type: ignore[arg-type]
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def run(data: CertificateInput, as_of: dt.date = AS_OF) -> list[Finding]:
    return ENGINE.evaluate(subject_of(data, customer_name="Prairie Goods LLC"), as_of)


def rules_of(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.rule for f in findings if severity is None or f.severity == severity}


def test_the_printed_forms_are_the_ones_the_sources_name() -> None:
    printed = {code for code, form in RULES.forms.items()
               for st in form.states if RULES.expiry_rule(st, code, "resale" if "resale" in form.exempt_reasons
                                                          else form.exempt_reasons[0]).printed}
    assert printed == {form for form, *_ in PRINTED}


@pytest.mark.parametrize(("form", "state", "number", "source"), PRINTED, ids=[p[0] for p in PRINTED])
def test_a_computed_date_does_not_replace_the_printed_one(form: str, state: str, number: str, source: str) -> None:
    findings = run(certificate(state, form, number))
    missing = [f for f in findings if f.rule == "expiry.printed_missing"]
    assert [(f.severity, f.field, f.state) for f in missing] == [("error", "expiry_date", state)], source
    assert "printed" in missing[0].message and missing[0].source
    # Asked once, by the printed-date rule, not again as a plain required field.
    assert not [f for f in findings if f.rule == "field.required" and f.field == "expiry_date"]


@pytest.mark.parametrize(("form", "state", "number", "source"), PRINTED, ids=[p[0] for p in PRINTED])
def test_the_printed_date_entered_passes_and_governs(form: str, state: str, number: str, source: str) -> None:
    findings = run(certificate(state, form, number, expiry_override=D(2026, 12, 31),
                               expiry_override_reason="printed on the certificate"))
    assert "expiry.printed_missing" not in rules_of(findings), source
    assert "expiry.override" not in rules_of(findings)  # a printed date is not a date "set by hand"
    assert [f.severity for f in findings if f.rule == "expiry.printed"] == ["info"]
    assert not rules_of(findings, "error")
    # The printed date governs: after it the coverage has expired.
    assert "expiry.expired" in rules_of(run(certificate(state, form, number, expiry_override=D(2026, 12, 31),
                                                        expiry_override_reason="printed"), D(2027, 1, 1)))


def test_printed_date_differing_from_the_statute_is_pointed_out() -> None:
    # 36 M.R.S. §1754-B(2-B): a first certificate issued 1 March 2026 runs through 31 December 2028. A printed
    # 31 December 2027 governs, but the finding says what the statute would give so the clerk checks the entry.
    findings = run(certificate("ME", "ME-RESALE", "000123456", expiry_override=D(2027, 12, 31),
                               expiry_override_reason="printed"))
    (info,) = [f for f in findings if f.rule == "expiry.printed"]
    assert "2028-12-31" in info.message and "2027-12-31" in info.message


def test_forms_whose_expiry_is_not_printed_are_not_asked_for_it() -> None:
    # SST F0003 in Washington: no fixed expiry (SSUTA Sec. 317); nothing printed to ask for.
    findings = run(certificate("WA", "SST-F0003", "A12345678"))
    assert "expiry.printed_missing" not in rules_of(findings)


# --------------------------------------------------------------------------- Alaska (ARSSTC)

def test_alaska_mtc_certificate_is_validated_not_waved_through() -> None:
    # MTC form note 1 (AK/ARSSTC): valid for ARSSTC members only with the purchaser's name, address, signature
    # and the ARSSTC certificate number; state-rules.csv: that is what ARSSTC requires.
    good = run(certificate("AK", "MTC-UNIFORM", "ARS-12345"))
    assert "state.no_sales_tax" not in rules_of(good)
    assert not rules_of(good, "error")
    assert "mtc.restriction" in rules_of(good, "warning")
    no_number = run(certificate("AK", "MTC-UNIFORM", ""))
    assert [(f.rule, f.field) for f in no_number if f.severity == "error"] == [("mtc.restriction", "purchaser_tax_id")]
    unsigned = run(certificate("AK", "MTC-UNIFORM", "ARS-12345", signed=False))
    assert ("mtc.restriction", "signature") in {(f.rule, f.field) for f in unsigned if f.severity == "error"}


@pytest.mark.parametrize(("effective", "as_of", "expired"), [
    (D(2026, 3, 1), D(2026, 12, 31), False),   # ARSSTC Code sec. 190(B): valid through 31 December 2026
    (D(2026, 3, 1), D(2027, 1, 1), True),      # ... and expired the next day
    (D(2026, 12, 15), D(2027, 1, 1), True),    # issued in December: still the same 31 December
])
def test_alaska_arsstc_certificate_expires_31_december_of_the_year_issued(effective: dt.date, as_of: dt.date,
                                                                          expired: bool) -> None:
    findings = run(certificate("AK", "MTC-UNIFORM", "ARS-12345", effective_date=effective, signed_date=effective),
                   as_of)
    assert ("expiry.expired" in rules_of(findings)) is expired


def test_a_state_without_any_sales_tax_still_needs_no_certificate() -> None:
    # Oregon: no sales tax at all (no statewide or local tax): nothing to validate against.
    findings = run(certificate("OR", "MTC-UNIFORM", "000123456"))
    assert "state.no_sales_tax" in rules_of(findings, "warning")
    assert "no exemption certificate is needed" in " ".join(f.message for f in findings).casefold()
