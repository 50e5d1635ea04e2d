"""The SST recurring-relationship rule in the pure engine and its lapse arithmetic.

Rule ``sst.recurring_relationship`` (rules pack, every full SST member state). Source: SSUTA s.317 as
summarised in the reference (state-forms.md, "Renewal and seller relief (SSUTA s.317)"): "A blanket
certificate stays valid while a recurring business relationship exists, meaning no more than 12 months
between sales. No renewal may be required during that relationship." After more than 12 months without a
sale the certificate no longer covers new sales, not past ones (the relationship ends for future sales;
the sales made while it existed stay covered). Expected results below are worked out from that
wording, not from running the code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.sales.determination import CandidateCertificate, CoverageFacts, SaleLine, determine
from ecms_desktop.services.sales.recurring import SalesHistory, add_months, lapse_of

D = dt.date
SSUTA = "SSUTA s.317: no more than 12 months between sales; lapses for new sales only"
CERT_DATE = D(2024, 1, 1)


def _sale(state: str, day: dt.date, history: SalesHistory | None) -> SaleLine:
    return SaleLine("INV-1", 1, day, "c-1", state, Decimal("100.00"), sales=history)


def _cert(state: str, *, form: str = "SST-F0003", effective: dt.date = CERT_DATE, kind: str = "blanket",
          po: str = "") -> CandidateCertificate:
    reason = "nonprofit" if form == "WA-REV-27-0032" else "resale"  # REV 27 0032 is not for resale
    return CandidateCertificate(1, "c-1", "approved", reason, form, (CoverageFacts(10, state, None),),
                                certificate_number="N1", certificate_type=kind, po_number=po, effective_date=effective)


def _text(result) -> str:  # type: ignore[no-untyped-def]
    return " | ".join(r for o in result.outcomes for r in o.reasons)


# (case, state, form, certificate date, sales dates (the sale itself included), sale date, covered, words)
CASES = [
    ("monthly purchases keep it in force (SSUTA s.317)", "OH", "SST-F0003", D(2024, 1, 1),
     [D(2024, 1, 15), D(2024, 2, 15), D(2024, 3, 15)], D(2024, 3, 15), True,
     "recurring relationship in force: previous purchase 2024-02-15"),
    ("exactly 12 months since the previous sale is 'no more than 12 months' (SSUTA s.317)", "OH", "SST-F0003",
     D(2024, 1, 1), [D(2024, 2, 1), D(2025, 2, 1)], D(2025, 2, 1), True, "previous purchase 2024-02-01"),
    ("12 months and a day: lapsed for this new sale (SSUTA s.317)", "OH", "SST-F0003", D(2024, 1, 1),
     [D(2024, 2, 1), D(2025, 2, 2)], D(2025, 2, 2), False,
     "lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01)"),
    ("not retroactive: a sale before the gap stays covered (SSUTA s.317)", "WA", "SST-F0003",
     D(2024, 1, 1), [D(2024, 2, 1), D(2025, 6, 1)], D(2024, 2, 1), True, "recurring relationship in force"),
    ("a sale after the lapse does not revive it: a fresh certificate is needed (SSUTA s.317)", "WA", "WA-REV-27-0032",
     D(2024, 1, 1), [D(2024, 2, 1), D(2025, 6, 1), D(2025, 7, 1)], D(2025, 7, 1), False,
     "lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01)"),
    ("certificate obtained within 12 months before the sale: in force whatever came before (SSUTA s.317)",
     "OH", "SST-F0003", D(2025, 5, 1), [D(2023, 2, 1), D(2025, 6, 1)], D(2025, 6, 1), True,
     "no gap of more than 12 months since the certificate's date 2025-05-01"),
    ("no purchase in the 12 months after the certificate's date (SSUTA s.317)", "OH", "SST-F0003",
     D(2024, 1, 1), [D(2025, 3, 1)], D(2025, 3, 1), False,
     "lapsed for new sales on 2025-01-02 (no purchase in the 12 months from 2024-01-01)"),
    ("Texas is no SST member: no recurring-relationship rule (pack TX sst.membership none)", "TX", "TX-01-339",
     D(2024, 1, 1), [D(2024, 2, 1), D(2025, 6, 1)], D(2025, 6, 1), True, "covers TX"),
    ("Tennessee is an associate member only: the pack gives it no such rule", "TN", "SST-F0003",
     D(2024, 1, 1), [D(2024, 2, 1), D(2025, 6, 1)], D(2025, 6, 1), True, "covers TN"),
]


@pytest.mark.parametrize(("case", "state", "form", "effective", "dates", "day", "covered", "words"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_recurring_relationship_rule(case, state, form, effective, dates, day, covered, words) -> None:  # type: ignore[no-untyped-def]
    result = determine(_sale(state, day, SalesHistory.of(dates)), [_cert(state, form=form, effective=effective)])
    assert result.exempt is covered, case
    assert words in _text(result), _text(result)
    if not covered:
        assert "sst.recurring_relationship" in _text(result) and "SSUTA s.317" in _text(result)
        assert result.rule == "coverage.recurring_lapsed"  # the line names the rule that decided it


def test_a_single_use_certificate_is_not_subject_to_it() -> None:
    """The pack's rule lists the certificate types it applies to (blanket: SSUTA s.317 speaks of
    "blanket certificates"); a single-use certificate covers its one purchase."""
    history = SalesHistory.of([D(2024, 2, 1), D(2025, 6, 1)])
    line = SaleLine("INV-1", 1, D(2025, 6, 1), "c-1", "OH", Decimal(100), po_number="PO-1", sales=history)
    assert determine(line, [_cert("OH", kind="single_use", po="PO-1")]).exempt


def test_a_state_issued_document_lasts_as_its_issuer_says() -> None:
    """SSUTA s.317's relief concerns the certificates a purchaser completes and the seller keeps. A
    Washington reseller permit is issued by the Department of Revenue and is valid for the period printed
    on it (WAC 458-20-102(4); rules pack WA-RESELLER-PERMIT, kind state_issued): a year without sales does
    not end it, the printed expiry does."""
    history = SalesHistory.of([D(2024, 2, 1), D(2025, 6, 1)])
    permit = CandidateCertificate(1, "c-1", "approved", "resale", "WA-RESELLER-PERMIT",
                                  (CoverageFacts(10, "WA", D(2027, 12, 31)),), certificate_number="N1",
                                  effective_date=CERT_DATE)
    assert load_rules_pack().form("WA-RESELLER-PERMIT").is_state_issued
    result = determine(_sale("WA", D(2025, 6, 1), history), [permit])
    assert result.exempt, _text(result)
    assert "recurring relationship" not in _text(result)
    # The same gap ends a purchaser-completed SST certificate in Washington (the case above).
    assert not determine(_sale("WA", D(2025, 6, 1), history), [_cert("WA")]).exempt


def test_without_a_sales_history_the_rule_is_not_applied() -> None:
    """No history (the status question of a caller that knows no sales): nothing can be said to be missing."""
    assert determine(_sale("OH", D(2030, 1, 1), None), [_cert("OH")]).exempt


def test_counting_starts_with_the_first_imported_sale() -> None:
    """Sales before the company's first imported day are unknown, so they cannot be said to be missing:
    a 2020 certificate with the ledger starting 2025-01-01 and a sale on 2025-03-01 is in force."""
    history = SalesHistory((D(2025, 3, 1),), known_from=D(2025, 1, 1))
    assert determine(_sale("OH", D(2025, 3, 1), history), [_cert("OH", effective=D(2020, 1, 1))]).exempt
    assert lapse_of(history, D(2020, 1, 1), 12).on == D(2026, 3, 2)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (D(2024, 2, 29), 12, D(2025, 2, 28)),   # no 29 February: the month's last day
    (D(2024, 1, 31), 1, D(2024, 2, 29)),
    (D(2024, 12, 15), 12, D(2025, 12, 15)),
])
def test_calendar_months(day, months, expected) -> None:  # type: ignore[no-untyped-def]
    assert add_months(day, months) == expected


def test_every_full_member_has_the_rule_with_its_source() -> None:
    """Rules pack: sst.recurring_relationship on the 23 full SST members, none elsewhere (SSUTA binds members)."""
    pack = load_rules_pack()
    members = {s for s, st in pack.states.items() if st.sst.membership == "full"}
    with_rule = {s for s, st in pack.states.items() if st.sst.recurring_relationship is not None}
    assert with_rule == members and len(members) == 23
    rule = pack.states["WA"].sst.recurring_relationship
    assert rule is not None and rule.months == 12 and rule.certificate_types == ("blanket",)
    assert "SSUTA s.317" in rule.source and rule.confidence == "high"


def test_gaps_are_found_as_calendar_months_say() -> None:
    """gap_starts' day-count shortcuts agree with calendar months (SSUTA s.317's "12 months"): 2024-02-29
    plus 12 months is 2025-02-28, so a sale on 2025-03-01 comes after a gap; 2023-03-01 to 2024-02-29 is
    within 12 months; 2024-01-31 plus one month is 2024-02-29."""
    from ecms_desktop.services.sales.recurring import gap_starts

    dates = (D(2023, 3, 1), D(2024, 3, 1), D(2024, 2, 29))
    assert gap_starts(tuple(sorted(dates)), 12) == (2,)  # 2024-02-29 -> 2024-03-01: no gap; the last is open
    assert gap_starts((D(2024, 2, 29), D(2025, 2, 28)), 12) == (1,)
    assert gap_starts((D(2024, 2, 29), D(2025, 3, 1)), 12) == (0, 1)
    assert gap_starts((D(2024, 1, 31), D(2024, 2, 29), D(2024, 4, 1)), 1) == (1, 2)
