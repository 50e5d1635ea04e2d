"""Validation of the numbers on a certificate against whoever issued them, and the smaller state rules.

Each case names the rule and its source; the expected findings follow from the source, not from the code:

* Texas 01-339 (printed on the form, Rev. 4-13/8; Tax Code 151.152(c)) takes a Texas permit (11 digits), an
  out-of-state retailer's registration number or a Mexican RFC: the number is checked against the issuer
  written before it (``OK 123456789``, ``MX ...``);
* a number written NN-NNNNNNN is an EIN (IRS), not a Social Security number (written NNN-NN-NNNN, SSA);
* South Dakota licences ending UT or ET cannot buy for resale (SD DOR);
* Colorado DR 0563 no longer exists (CO DOR, HB 22-1039): a finding, the certificate stays readable;
* a state-issued document's number is checked against the document's own format (MD exemption card: 8 digits).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.validation.engine import Finding, ValidationEngine, looks_like_ssn, subject_of

RULES = load_rules_pack()
ENGINE = ValidationEngine(RULES)
AS_OF = dt.date(2026, 11, 20)

VALUES = dict(
    purchaser_name="Prairie Goods LLC", purchaser_address="5 Oak Ave, Springfield", purchaser_ein="",
    business_type="retailer", business_description="General merchandise store",
    property_description="Goods for resale", exemption_detail="Exempt organisation",
    signed=True, signer_name="Pat Doe", signer_title="Owner", signed_date=dt.date(2026, 3, 1),
    effective_date=dt.date(2026, 3, 1), po_number="",
)


def run(state: str, form: str, number: str, reason: str = "resale", **changes) -> list[Finding]:
    data = CertificateInput(company_id=1, customer_id=1, form_code=form, lines=(LineInput(state),),
                            exempt_reason=reason, purchaser_tax_id=number, **VALUES)
    return ENGINE.evaluate(subject_of(dataclasses.replace(data, **changes)), AS_OF)


def rules_of(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.severity) for f in findings}


TX = "Texas 01-339 as printed (Rev. 4-13/8) and Tax Code 151.152(c)"


@pytest.mark.parametrize(("number", "expected", "why"), [
    ("32012345678", set(), f"{TX}: a Texas permit has 11 digits"),
    ("OK 123456789", set(), f"{TX}: an out-of-state retailer's number; Oklahoma's format is 9 digits (OK permit)"),
    ("OK: 123456789", set(), f"{TX}: the issuer may be written with a colon"),
    ("MAB-930714-8T4", set(), f"{TX}: a Mexican RFC (company: 3 letters, date, 3 characters) is recognised as such"),
    ("MX GODE561231GR8", set(), f"{TX}: a Mexican RFC of an individual, issuer written"),
    ("MX 12345", {("permit.format", "warning")}, f"{TX}: an RFC must fit SAT's format (known with medium confidence)"),
    ("TX 1234", {("permit.format", "error")}, f"{TX}: a number written as Texan must have 11 digits (high)"),
    ("AZ 1234", {("permit.format", "error")}, f"{TX}: Arizona's TPT licence has 8 digits (high confidence)"),
    ("1234567", {("permit.issuer_unstated", "warning")},
     f"{TX}: not a Texas permit and no issuer written: ask whose number it is, do not block approval"),
])
def test_texas_01_339_checks_the_number_against_the_issuer_written_beside_it(number, expected, why):
    found = run("TX", "TX-01-339", number)
    assert rules_of(found) == expected, why


def test_a_valid_out_of_state_number_no_longer_blocks_a_texas_certificate():
    # Before: "123456789" (9 digits) on a TX line was a permit.format error blocking approval.
    found = run("TX", "TX-01-339", "123456789")
    assert not [f for f in found if f.severity == "error"], TX
    (unstated,) = [f for f in found if f.rule == "permit.issuer_unstated"]
    assert "out-of-state retailer's registration number" in unstated.message and "RFC" in unstated.message


def test_a_form_that_names_no_other_issuer_warns_about_another_states_number():
    # NY ST-120 asks for the purchaser's New York certificate of authority (no number_issuers in the pack).
    (f,) = [f for f in run("NY", "NY-ST-120", "OK 123456789") if f.rule == "permit.issuer_not_accepted"]
    assert f.severity == "warning" and "OK" in f.message and "New York number only" in f.message


@pytest.mark.parametrize(("number", "ssn_like", "why"), [
    ("41-1234567", False, "IRS: an EIN is written 00-0000000, whatever its digits"),
    ("411-23-4567", True, "SSA: a Social Security number is written 000-00-0000"),
    ("411234567", True, "nine bare digits forming a valid SSN, no state format explaining them"),
])
def test_a_number_written_as_an_ein_is_not_a_social_security_number(number, ssn_like, why):
    assert looks_like_ssn(number, None) is ssn_like, why


def test_an_ein_written_number_on_a_permit_line_gives_no_ssn_warning():
    # Florida's number format is known with medium confidence only: the mismatch is a warning, never SSN-like.
    found = run("FL", "FL-DR-13", "41-1234567")
    assert "permit.ssn_like" not in {f.rule for f in found}, "IRS: NN-NNNNNNN is an EIN"
    found = run("FL", "FL-DR-13", "411-23-4567")
    assert "permit.ssn_like" in {f.rule for f in found}, "SSA: NNN-NN-NNNN is an SSN"


SD = "SD DOR: permit numbers containing UT (use tax) or ET (contractor's excise tax) cannot buy for resale"


@pytest.mark.parametrize(("number", "reason", "expected"), [
    ("12345678UT", "resale", {("permit.not_for_reason", "error")}),
    ("12345678ET", "resale", {("permit.not_for_reason", "error")}),
    ("12345678ST", "resale", set()),
    ("12345678UT", "agricultural", set()),
])
def test_south_dakota_use_and_excise_tax_licences_cannot_buy_for_resale(number, reason, expected):
    found = [f for f in run("SD", "SST-F0003", number, reason) if f.rule.startswith("permit.")]
    assert rules_of(found) == expected, SD
    for f in found:
        assert "UT" in f.source and f.confidence == "medium"


def test_colorado_dr_0563_is_obsolete_but_its_certificates_stay_readable():
    # CO DOR (HB 22-1039): DR 0563 no longer exists; DR 5002 does not require collecting new forms.
    found = run("CO", "CO-DR-0563", "12345678", business_type="retailer")
    (f,) = [f for f in found if f.rule == "form.obsolete"]
    assert f.severity == "warning" and "CO-DR-5002" in f.message and f.confidence == "high"
    assert "tax.colorado.gov" in f.source
    assert not [f for f in run("CO", "CO-DR-5002", "12345678") if f.rule == "form.obsolete"]


@pytest.mark.parametrize(("state", "form", "reason", "number", "expected", "why"), [
    ("MD", "MD-EXEMPTION-CARD", "nonprofit", "12345678", set(), "Comptroller: eight-digit exemption number"),
    ("MD", "MD-EXEMPTION-CARD", "nonprofit", "1234", {("permit.format", "error")},
     "Comptroller: eight-digit exemption number (high confidence)"),
    ("IL", "IL-E-NUMBER", "government", "E9912345678", set(), "IDOR: the E99 number on the exemption letter"),
    ("NM", "NM-TYPE-9-NTTC", "government", "ANY-NTTC-1", set(),
     "TRD: the NTTC number has no known format; the state's CRS format does not apply to it"),
])
def test_a_state_issued_documents_number_is_checked_against_the_documents_format(state, form, reason, number,
                                                                                 expected, why):
    found = [f for f in run(state, form, number, reason) if f.rule.startswith("permit.")]
    assert rules_of(found) == expected, why


@pytest.mark.parametrize(("state", "source"), [
    ("CA", "CDTFA: no general exemption for nonprofit organisations"),
    ("SC", "SC DOR: no blanket sales tax exemption for nonprofits"),
])
def test_a_nonprofit_claim_where_the_state_grants_no_such_exemption_is_an_error_saying_so(state, source):
    found = [f for f in run(state, "MTC-UNIFORM", "123456789", "nonprofit") if f.severity == "error"]
    assert {f.rule for f in found} == {"state.no_exemption"}, source


def test_a_number_written_with_another_issuer_is_looked_up_in_that_states_registry():
    # Texas 01-339 takes an out-of-state retailer's number: checking it is the issuing state's business.
    from ecms_desktop.services.validation.permit_service import lookup_link

    link = lookup_link(RULES, "TX", "OK 123456789")
    assert link.state == "OK" and link.name == RULES.state("OK").permit.lookup_name
    assert lookup_link(RULES, "TX", "32012345678").state == "TX"
