"""The form spec built from the rules pack, without Qt."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from ecms_desktop.models.enums import Status
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.form_spec import (
    build_form_spec,
    form_choices,
    local_findings,
    parse_date,
    parse_states,
)


@pytest.fixture(scope="module")
def rules():
    return load_rules_pack()


def test_importing_the_spec_loads_no_qt():
    code = ("import sys, ecms_desktop.services.certificates.form_spec, "
            "ecms_desktop.services.certificates.history_service, "
            "ecms_desktop.services.certificates.review_queue_service; "
            "sys.exit(any(m.startswith('PySide6') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3]).returncode == 0


def test_tx_resale_fields_required_and_permit_format(rules):
    spec = build_form_spec(rules, form_code="tx 01 339", states=["tx"], exempt_reason="resale")
    assert spec.form_code == "TX-01-339" and spec.states == ("TX",) and not spec.multistate
    required = set(spec.required_fields)
    # From the form plus its per-reason additions.
    assert {"purchaser_name", "purchaser_address", "purchaser_tax_id", "business_description",
            "property_description", "signature", "signer_title", "signed_date"} <= required
    assert "exemption_detail" not in spec.field_names  # not for resale
    tax = spec.field("purchaser_tax_id")
    # Rule: 01-339's number box takes a Texas permit (11 digits), an out-of-state retailer's number or a
    # Mexican RFC (printed on the form, Rev. 4-13/8): no single pattern; validation checks by issuer.
    assert tax.pattern is None and "11 digits" in tax.hint and "RFC" in tax.hint
    assert spec.field("signed").name == "signature"  # found by storage attribute too
    assert spec.field("seller_name").kind == "info" and not spec.field("seller_name").required
    assert spec.reasons[0][0] == "resale" and len(spec.reasons) == 9


def test_tx_exemption_reason_changes_required_fields(rules):
    spec = build_form_spec(rules, form_code="TX-01-339", states=["TX"], exempt_reason="nonprofit")
    assert spec.field("exemption_detail").required
    assert not spec.field("purchaser_tax_id").required


def test_reason_not_on_form_is_reported(rules):
    spec = build_form_spec(rules, form_code="CA-CDTFA-230", states=["CA"], exempt_reason="government")
    assert not spec.reason_allowed
    assert spec.reasons == (("resale", "Resale"),)
    assert any(m.field == "exempt_reason" and m.severity == "error" for m in spec.messages)


def test_low_confidence_permit_pattern_is_not_enforced(rules):
    spec = build_form_spec(rules, form_code="CA-CDTFA-230", states=["CA"], exempt_reason="resale")
    assert spec.field("purchaser_tax_id").pattern is None  # CA format is low confidence
    assert "9 digits" in spec.field("purchaser_tax_id").hint


def test_fl_expiry_end_of_year_with_basis_and_source(rules):
    spec = build_form_spec(rules, form_code="FL-DR-13", states=["FL"], exempt_reason="resale",
                           effective_date=dt.date(2026, 3, 5))
    assert spec.expiry.date == dt.date(2026, 12, 31)
    assert "31 December" in spec.expiry.basis and "(law)" in spec.expiry.basis
    assert "floridarevenue.com" in spec.expiry.source
    assert spec.expiry.printed_on_form  # DR-13 prints its expiry: compare and override if needed


def test_override_requires_reason(rules):
    spec = build_form_spec(rules, form_code="FL-DR-13", states=["FL"], exempt_reason="resale",
                           effective_date=dt.date(2026, 3, 5), expiry_override=dt.date(2027, 1, 31))
    assert spec.expiry.override == dt.date(2027, 1, 31)
    assert spec.coverage[0].expiry_date == dt.date(2027, 1, 31) and spec.coverage[0].expiry_origin == "override"
    found = local_findings(spec, {"purchaser_name": "X"})
    assert any(f.field == "expiry_override_reason" for f in found)
    found = local_findings(spec, {"purchaser_name": "X", "expiry_override_reason": "printed date"})
    assert not any(f.field == "expiry_override_reason" for f in found)


def test_sst_multistate_coverage_lines(rules):
    spec = build_form_spec(rules, form_code="SST-F0003", states=["wa", "NC", "TX"], exempt_reason="resale",
                           signed_date=dt.date(2026, 2, 1), state_tax_ids={"WA": "603123456"},
                           review_state="approved", as_of=dt.date(2030, 1, 10))
    assert spec.multistate and [c.state for c in spec.coverage] == ["WA", "NC", "TX"]
    wa, nc, tx = spec.coverage
    assert wa.accepted and wa.state_tax_id == "603123456" and wa.expiry_date == dt.date(2030, 1, 31)
    assert wa.status == Status.EXPIRING_SOON
    assert nc.expiry_date is None and nc.status == Status.ACTIVE
    assert not tx.accepted and "Texas does not accept" in tx.acceptance_message
    assert any(m.state == "TX" and m.field == "form" for m in spec.messages)
    assert spec.expiry.date == dt.date(2030, 1, 31) and spec.expiry.basis.startswith("WA (earliest of 3")
    assert spec.field("home_state") is not None
    assert "coverage table" in spec.field("purchaser_tax_id").hint


def test_single_use_requires_po_number(rules):
    spec = build_form_spec(rules, form_code="TX-01-339", states=["TX"], exempt_reason="resale",
                           certificate_type="single_use")
    assert spec.field("po_number").required
    assert dict(spec.field("certificate_type").choices).keys() == {"blanket", "single_use"}


def test_present_values_are_never_hidden(rules):
    spec = build_form_spec(rules, form_code="CA-CDTFA-230", states=["CA"], exempt_reason="resale")
    assert spec.field("purchaser_ein") is None
    spec = build_form_spec(rules, form_code="CA-CDTFA-230", states=["CA"], exempt_reason="resale",
                           present=["purchaser_ein"])
    assert spec.field("purchaser_ein") is not None and not spec.field("purchaser_ein").required


def test_unknown_form_and_state(rules):
    spec = build_form_spec(rules, form_code="XX-999", states=["ZZ"], exempt_reason="resale")
    assert not spec.form_known
    fields = {m.field for m in spec.messages}
    assert {"form", "state"} <= fields
    assert spec.coverage == ()


def test_local_findings_required_and_format(rules):
    spec = build_form_spec(rules, form_code="PA-REV-1220", states=["PA"], exempt_reason="resale")
    found = local_findings(spec, {"purchaser_name": "Acme", "purchaser_tax_id": "3201-23", "signed": False})
    by_field = {f.field: f for f in found}
    assert by_field["purchaser_tax_id"].severity == "error" and "8 digits" in by_field["purchaser_tax_id"].message
    assert by_field["signature"].message.startswith("Signed by the purchaser must be ticked")
    assert "purchaser_name" not in by_field
    ok = local_findings(spec, {"purchaser_tax_id": "3201-2345"})
    assert "purchaser_tax_id" not in {f.field for f in ok}  # dashes and blanks are stripped


def test_form_choices(rules):
    choices = form_choices(rules, ["NY"], current="TX-01-339")
    codes = [c.code for c in choices]
    assert codes[:4] == ["NY-ST-120", "NY-ST-120.1", "NY-ST-119.1", "NY-ST-121"]
    assert "SST-F0003" in codes and "MTC-UNIFORM" in codes
    assert codes[-1] == "TX-01-339"  # the stored form is never dropped
    sst = next(c for c in choices if c.code == "SST-F0003")
    assert not sst.accepted  # NY is not an SST state


def test_parse_helpers():
    assert parse_states("wa, nc OH;wa") == ("WA", "NC", "OH")
    assert parse_date("2026-03-15") == dt.date(2026, 3, 15)
    assert parse_date("03/15/2026") == dt.date(2026, 3, 15)
    assert parse_date(" ") is None
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date("15.03.2026x")
