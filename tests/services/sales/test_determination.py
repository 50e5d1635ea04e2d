"""The pure determination engine: every condition, precedence with conflicts, partial exemptions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ecms_desktop.services.sales.determination import CandidateCertificate, CoverageFacts, SaleLine, determine

D = dt.date


def sale(**kw) -> SaleLine:  # type: ignore[no-untyped-def]
    base = dict(invoice_number="INV-1", line=1, invoice_date=D(2026, 6, 15), customer_key="c-1",
                ship_to_state="TX", amount=Decimal("100.00"), ship_to_county="Travis", ship_to_city="Austin",
                ship_to_zip="78701", product_code="P1", commodity_code="C1", currency="USD", exempt_reason="",
                po_number="PO-9")
    base.update(kw)
    return SaleLine(**base)


def cert(cid: int = 1, **kw) -> CandidateCertificate:  # type: ignore[no-untyped-def]
    lines = kw.pop("lines", (CoverageFacts(cid * 10, "TX", D(2027, 1, 1)),))
    base = dict(certificate_id=cid, customer_key="c-1", review_state="approved", exempt_reason="resale",
                form_code="TX-01-339",
                lines=lines, certificate_number=f"N{cid}", version=1, effective_date=D(2026, 1, 1))
    base.update(kw)
    return CandidateCertificate(**base)


def reasons(result) -> str:  # type: ignore[no-untyped-def]
    return " | ".join(r for o in result.outcomes for r in o.reasons)


def test_a_matching_approved_certificate_exempts_the_whole_line() -> None:
    r = determine(sale(), [cert()])
    assert r.exempt and r.certificate_id == 1 and r.exempt_amount == Decimal("100.00")
    assert r.taxable_amount == 0 and r.coverage is not None and r.coverage.coverage_line_id == 10
    assert r.explanation()["candidates"][0]["outcome"] == "applied"


def test_no_candidates_is_taxable_with_a_reason() -> None:
    r = determine(sale(), [])
    assert not r.exempt and r.taxable_amount == Decimal("100.00") and "no certificate for TX" in r.summary


def test_other_customer_and_other_state_do_not_apply() -> None:
    r = determine(sale(), [cert(customer_key="c-2"), cert(2, lines=(CoverageFacts(2, "OK", None),))])
    assert not r.exempt
    text = reasons(r)
    assert "another customer" in text and "does not cover TX (covers OK)" in text


def test_validity_window_is_inclusive_and_expired_since_still_counts() -> None:
    c = cert(lines=(CoverageFacts(1, "TX", D(2026, 6, 15)),), effective_date=D(2026, 6, 15))
    assert determine(sale(), [c]).exempt  # first and last day both valid
    assert not determine(sale(invoice_date=D(2026, 6, 16)), [c]).exempt
    r = determine(sale(invoice_date=D(2026, 6, 14)), [c])
    assert not r.exempt and "not yet effective" in reasons(r)
    r = determine(sale(invoice_date=D(2026, 6, 16)), [c])
    assert "expired 2026-06-15" in reasons(r)


def test_no_effective_or_signed_date_never_applies() -> None:
    r = determine(sale(), [cert(effective_date=None)])
    assert not r.exempt and "neither an effective nor a signed date" in reasons(r)


def test_only_approved_certificates_apply() -> None:
    for state in ("pending", "rejected", "archived"):
        r = determine(sale(), [cert(review_state=state)])
        assert not r.exempt and "not approved" in reasons(r)


def test_suspended_line_covers_nothing_from_the_suspension_day() -> None:
    c = cert(lines=(CoverageFacts(1, "TX", None, (), D(2026, 6, 15)),))
    assert determine(sale(invoice_date=D(2026, 6, 14)), [c]).exempt
    r = determine(sale(), [c])
    assert not r.exempt and "suspended" in reasons(r)


def test_exempt_reason_must_match_when_the_sale_names_one() -> None:
    assert determine(sale(exempt_reason="resale"), [cert()]).exempt
    r = determine(sale(exempt_reason="nonprofit"), [cert()])
    assert not r.exempt and "claims nonprofit" in reasons(r)


def test_single_use_only_for_its_po_or_invoice_number() -> None:
    c = cert(certificate_type="single_use", po_number="po-9")
    assert determine(sale(po_number="PO-9"), [c]).exempt
    assert determine(sale(po_number="", invoice_number="PO-9"), [c]).exempt
    r = determine(sale(po_number="PO-10"), [c])
    assert not r.exempt and "single use for PO po-9" in reasons(r)


def test_product_and_commodity_lists_limit_the_lines() -> None:
    c = cert(product_codes=frozenset({"P1", "P2"}))
    assert determine(sale(product_code="P2"), [c]).exempt
    assert not determine(sale(product_code="P3"), [c]).exempt
    c = cert(commodity_codes=frozenset({"C1"}))
    assert determine(sale(), [c]).exempt
    r = determine(sale(commodity_code="C9"), [c])
    assert not r.exempt and "commodity C9 is not in its list" in reasons(r)


def test_currency_must_match() -> None:
    r = determine(sale(currency="CAD"), [cert()])
    assert not r.exempt and "currency USD; the sale is in CAD" in reasons(r)


def test_local_jurisdictions_limit_the_line() -> None:
    local = cert(lines=(CoverageFacts(1, "TX", None, ("county:Travis",)),))
    assert determine(sale(), [local]).exempt
    r = determine(sale(ship_to_county="Harris", ship_to_city="Houston", ship_to_zip="77002"), [local])
    assert not r.exempt and "limited to county:Travis" in reasons(r)
    by_zip = cert(lines=(CoverageFacts(1, "TX", None, ("787*",)),))
    assert determine(sale(), [by_zip]).exempt
    assert not determine(sale(ship_to_zip="77002"), [by_zip]).exempt
    assert determine(sale(ship_to_county="", ship_to_city="austin"), [cert(lines=(
        CoverageFacts(1, "TX", None, ("Austin",)),))]).exempt


def test_partial_exemption_by_percent_and_by_amount() -> None:
    r = determine(sale(amount=Decimal("80.00")), [cert(exempt_percent=Decimal("25"))])
    assert r.exempt and r.exempt_amount == Decimal("20.00") and r.taxable_amount == Decimal("60.00")
    assert "partly exempt" in r.summary
    r = determine(sale(amount=Decimal("80.00")), [cert(exempt_amount=Decimal("50"))])
    assert r.exempt_amount == Decimal("50.00") and r.taxable_amount == Decimal("30.00")
    r = determine(sale(amount=Decimal("30.00")), [cert(exempt_amount=Decimal("50"))])
    assert r.exempt_amount == Decimal("30.00") and r.taxable_amount == 0
    r = determine(sale(amount=Decimal("33.33")), [cert(exempt_percent=Decimal("50"))])
    assert r.exempt_amount == Decimal("16.67")  # half up to the cent


def test_precedence_single_use_beats_product_limited_beats_local_beats_newest_beats_lowest_id() -> None:
    blanket_old = cert(1, effective_date=D(2025, 1, 1))
    blanket_new = cert(2, effective_date=D(2026, 2, 1))
    local = cert(3, lines=(CoverageFacts(30, "TX", None, ("county:Travis",)),), effective_date=D(2024, 1, 1))
    product = cert(4, product_codes=frozenset({"P1"}), effective_date=D(2023, 1, 1))
    single = cert(5, certificate_type="single_use", po_number="PO-9", effective_date=D(2022, 1, 1))
    same_day_twin = cert(6, effective_date=D(2026, 2, 1))
    everything = [same_day_twin, blanket_old, blanket_new, local, product, single]
    order = []
    pool = list(everything)
    while pool:
        r = determine(sale(), pool)
        order.append(r.certificate_id)
        assert set(r.also_eligible) == {c.certificate_id for c in pool} - {r.certificate_id}
        if len(pool) > 1:
            assert "also eligible" in r.conflict_warning
        pool = [c for c in pool if c.certificate_id != r.certificate_id]
    assert order == [5, 4, 3, 2, 6, 1]
    # the result does not depend on the order the candidates come in
    assert determine(sale(), list(reversed(everything))).certificate_id == 5


def test_every_candidate_is_explained() -> None:
    r = determine(sale(), [cert(1), cert(2, effective_date=D(2025, 1, 1)), cert(3, review_state="pending")])
    outcomes = {o["certificate_id"]: o for o in r.explanation()["candidates"]}
    assert outcomes[1]["outcome"] == "applied"
    assert outcomes[2]["outcome"] == "eligible" and "latest effective date" in outcomes[2]["reasons"][0]
    assert outcomes[3]["outcome"] == "not_applicable"
    assert r.explanation()["conflict"].startswith("2 certificates cover this sale")


def test_unknown_facts_are_reported_as_limits_not_failures() -> None:
    probe = sale(product_code=None, commodity_code=None, currency=None, po_number=None, ship_to_county="",
                 ship_to_city="", ship_to_zip="")
    r = determine(probe, [cert(product_codes=frozenset({"P1"}),
                               lines=(CoverageFacts(1, "TX", None, ("county:Travis",)),))])
    assert r.exempt and any("only products P1" in n for n in r.notes) and any("limited to" in n for n in r.notes)
