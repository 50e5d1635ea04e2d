"""Expiry rules the pack must get right, from primary sources: each case names the rule and its source, and
the expected date is worked out by hand from the source's words (not by running the code).

- Alaska: the ARSSTC Remote Reseller Certificate of Exemption "expires December 31 of the year issued"
  (Alaska Remote Seller Sales Tax Code sec. 190(B), per state-rules.csv); ARSSTC members take it as the MTC
  form listed as AK/ARSSTC with the certificate's number.
- Maine, 36 M.R.S. §1754-B(2-B) (P.L. 2005, c. 519, Pt. OOO): a first certificate "issued between January
  1st and September 30th is effective for the duration of the calendar year in which it is issued and the 2
  subsequent years"; one "issued between October 1st and December 31st is effective until the end of the 3rd
  succeeding calendar year". §1754-B(2-C): "Any subsequent ... resale certificate issued is effective for the
  next 5 calendar years" (its effective date: 1 January after MRS's review).
- Washington: reseller permits are valid 48 months (WAC 458-20-102(4)); SST and MTC certificates used in
  Washington have no fixed expiry (recurring business relationship, SSUTA Sec. 317).
"""

from __future__ import annotations

import datetime as dt

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core.expiry import compute_expiry

RULES = load_rules_pack()
D = dt.date

ARSSTC = "ARSSTC Code sec. 190(B): expires 31 December of the year issued"
ME_FIRST = "36 M.R.S. §1754-B(2-B): issued Jan-Sep, the issue year and the 2 subsequent years"
ME_FIRST_Q4 = "36 M.R.S. §1754-B(2-B): issued Oct-Dec, until the end of the 3rd succeeding calendar year"
ME_RENEWAL = "36 M.R.S. §1754-B(2-C): a subsequent certificate is effective for the next 5 calendar years"
WA_PERMIT = "WAC 458-20-102(4): reseller permit valid 48 months"
WA_SST = "SSUTA Sec. 317 / WAC 458-20-102(7): SST or MTC certificate, no fixed expiry in Washington"

CASES = [
    # (rule and source, state, form, reason, effective, renewal, expected expiry)
    (ARSSTC, "AK", "MTC-UNIFORM", "resale", D(2026, 3, 1), False, D(2026, 12, 31)),
    (ARSSTC, "AK", "MTC-UNIFORM", "resale", D(2026, 12, 31), False, D(2026, 12, 31)),
    (ARSSTC, "AK", "MTC-UNIFORM", "resale", D(2027, 1, 1), False, D(2027, 12, 31)),
    (ME_FIRST, "ME", "ME-RESALE", "resale", D(2026, 1, 1), False, D(2028, 12, 31)),
    (ME_FIRST, "ME", "ME-RESALE", "resale", D(2026, 3, 15), False, D(2028, 12, 31)),
    (ME_FIRST, "ME", "ME-RESALE", "resale", D(2026, 9, 30), False, D(2028, 12, 31)),
    (ME_FIRST_Q4, "ME", "ME-RESALE", "resale", D(2026, 10, 1), False, D(2029, 12, 31)),
    (ME_FIRST_Q4, "ME", "ME-RESALE", "resale", D(2026, 12, 31), False, D(2029, 12, 31)),
    (ME_RENEWAL, "ME", "ME-RESALE", "resale", D(2027, 1, 1), True, D(2031, 12, 31)),
    (ME_RENEWAL, "ME", "ME-RESALE", "resale", D(2029, 1, 1), True, D(2033, 12, 31)),
    (WA_PERMIT, "WA", "WA-RESELLER-PERMIT", "resale", D(2026, 3, 1), False, D(2030, 2, 28)),
    (WA_PERMIT, "WA", "WA-RESELLER-PERMIT", "resale", D(2026, 7, 15), False, D(2030, 7, 14)),
    (WA_SST, "WA", "SST-F0003", "resale", D(2026, 3, 1), False, None),
    (WA_SST, "WA", "MTC-UNIFORM", "resale", D(2026, 3, 1), False, None),
]


@pytest.mark.parametrize(("rule", "state", "form", "reason", "effective", "renewal", "expected"), CASES,
                         ids=[f"{c[1]}-{c[2]}-{c[4]}{'-renewal' if c[5] else ''}" for c in CASES])
def test_state_expiry_from_its_source(rule: str, state: str, form: str, reason: str, effective: dt.date,
                                      renewal: bool, expected: dt.date | None) -> None:
    decision = compute_expiry(RULES.expiry_rule(state, form, reason), effective=effective, signed=None,
                              renewal=renewal)
    assert decision.expiry_date == expected, rule
    assert decision.source


def test_maine_month_terms_cover_the_whole_year_once() -> None:
    # §1754-B(2-B) splits the year at 30 September / 1 October: every month belongs to exactly one term.
    rule = RULES.expiry_rule("ME", "ME-RESALE", "resale")
    months = [m for term in rule.by_issue_month for m in term.months]
    assert sorted(months) == list(range(1, 13))
    assert rule.renewal is not None and rule.renewal.by_issue_month == ()


def test_washington_48_months_belong_to_the_reseller_permit_only() -> None:
    # The state's resale rule (what SST F0003 and the MTC form follow there) is no fixed expiry; the
    # reseller permit form overrides it with its own 4-year term, printed on the permit (RCW 82.32.784(1)(e)).
    state_rule = RULES.state("WA").expiry_resale
    permit = RULES.form("WA-RESELLER-PERMIT").expiry
    assert state_rule.kind == "none"
    assert permit is not None and (permit.kind, permit.years, permit.printed) == ("years", 4, True)
    assert RULES.expiry_rule("WA", "SST-F0003", "resale") is state_rule


def test_renewal_without_a_renewal_term_is_the_first_issue_rule() -> None:
    # Florida's DR-13 has no separate renewal term: a renewal runs through 31 December like any other.
    rule = RULES.expiry_rule("FL", "FL-DR-13", "resale")
    assert compute_expiry(rule, effective=D(2026, 2, 1), signed=None, renewal=True).expiry_date == D(2026, 12, 31)
