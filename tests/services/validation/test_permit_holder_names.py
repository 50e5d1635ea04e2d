"""A permit check names whose permit it is: the holder a registry snapshot, an online service or a
reviewer recorded is compared with the purchaser by the program's one name matcher. Someone else's
permit is an error (approval is refused), a weak match a warning, and both names are shown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.validation.name_match import NameVerdict, compare_holder, compare_names
from ecms_desktop.services.validation.permit_service import HttpVerifier, PermitService
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import make_desk_certificate, write_image, write_texas_registry
from tests.helpers.permit_registry import PermitRegistryHandler

AS_OF = dt.date(2026, 11, 20)
NUMBER = "32012345678"


@pytest.mark.parametrize("a, b, verdict", [
    ("ACME SUPPLY CO", "Acme Supply Company, LLC", NameVerdict.MATCH),
    ("Smith Hardware Inc DBA Smith's Tools", "Smith's Tools", NameVerdict.MATCH),
    ("Lone Star Retail, L.L.C.", "LONE STAR RETAIL LLC", NameVerdict.MATCH),
    ("Zenith Petroleum Holdings LP", "Memphis Friends Meeting", NameVerdict.MISMATCH),
    ("Dallas Tire Co", "Houston Tire Co", NameVerdict.MISMATCH),
    ("Gulf Coast Traders", "Lone Star Retail LLC", NameVerdict.MISMATCH),
    # near misses: a person has to look
    ("Acme Supply Inc", "Acme Supplies Inc", NameVerdict.WEAK),
    ("First Baptist Church of Memphis", "First Baptist Church of Dallas", NameVerdict.WEAK),
    ("HOME DEPOT USA INC", "The Home Depot", NameVerdict.WEAK),
    ("WAL-MART STORES TEXAS, LLC", "Walmart Inc.", NameVerdict.WEAK),  # one name inside the other
    ("Memphis Friends Meeting House", "Memphis Friends Meeting", NameVerdict.WEAK),
])
def test_one_name_matcher_for_real_looking_pairs(a, b, verdict):
    assert compare_names(a, b).verdict is verdict
    assert compare_names(b, a).verdict is verdict


def test_the_holder_is_compared_with_the_purchaser_or_the_customer_whichever_matches_better():
    assert compare_holder("ZENITH PETROLEUM HOLDINGS LP", "Memphis Friends Meeting", "").verdict is NameVerdict.MISMATCH
    found = compare_holder("LONE STAR RETAIL LLC", "Lone Star Outlet", "Lone Star Retail LLC")
    assert found.verdict is NameVerdict.MATCH and found.right == "Lone Star Retail LLC"
    assert compare_holder("", "Memphis Friends Meeting") is None  # nothing recorded: nothing to say
    assert compare_holder("ZENITH PETROLEUM HOLDINGS LP d/b/a MEMPHIS FRIENDS MEETING",
                          "Memphis Friends Meeting").verdict is NameVerdict.MATCH


def _certificate(db, company_id, purchaser: str) -> int:  # type: ignore[no-untyped-def]
    """A Texas certificate of ``purchaser`` (also its customer's name) with permit number NUMBER."""
    return make_desk_certificate(db, company_id, as_of=AS_OF, customer="C-9", name=purchaser,
                                 purchaser_name=purchaser, purchaser_address="1 Main St", purchaser_tax_id=NUMBER,
                                 property_description="Goods for resale", business_description="Retail",
                                 signer_name="Pat", signer_title="Clerk", signed=True,
                                 signed_date=dt.date(2026, 3, 1)).id


def _findings(db, cert_id):  # type: ignore[no-untyped-def]
    run = ValidationService(db).validate(cert_id, as_of=AS_OF)
    return {f.rule: f for f in run.findings if f.rule.startswith("permit.holder")}


def test_registry_check_of_someone_elses_permit_is_an_error_that_blocks_approval(db, company_id, tmp_path):
    cert_id = _certificate(db, company_id, "Memphis Friends Meeting")
    service = PermitService(db)
    registry = write_texas_registry(tmp_path, [(NUMBER, "ZENITH PETROLEUM HOLDINGS LP", "01/15/2019")])
    service.import_registry(registry, "TX", data_date=dt.date(2026, 11, 1))
    (check,) = service.verify(cert_id, as_of=AS_OF)
    assert check.result == "active"  # the permit is active ...
    assert check.name_on_record == "ZENITH PETROLEUM HOLDINGS LP"
    assert "NOT the purchaser 'Memphis Friends Meeting'" in check.message  # ... but someone else's
    finding = _findings(db, cert_id)["permit.holder_mismatch"]
    assert finding.severity == "error" and finding.state == "TX"
    assert "ZENITH PETROLEUM HOLDINGS LP" in finding.message and "Memphis Friends Meeting" in finding.message
    detail = CertificateService(db).get(cert_id, AS_OF)
    with pytest.raises(ValidationError) as refused:
        CertificateService(db).approve(cert_id, expected_version=detail.version, as_of=AS_OF,
                                       acknowledge_warnings=True)
    assert any("ZENITH" in p.message for p in refused.value.problems)


def test_registry_check_with_a_weak_match_is_a_warning_and_a_match_is_silent(db, company_id, tmp_path):
    weak = _certificate(db, company_id, "Acme Supplies Inc")
    service = PermitService(db)
    service.import_registry(write_texas_registry(tmp_path, [(NUMBER, "ACME SUPPLY INC", "01/15/2019")]), "TX",
                            data_date=dt.date(2026, 11, 1))
    (check,) = service.verify(weak, as_of=AS_OF)
    assert "only weakly matches the purchaser 'Acme Supplies Inc'" in check.message
    finding = _findings(db, weak)["permit.holder_weak_match"]
    assert finding.severity == "warning"
    assert "'ACME SUPPLY INC'" in finding.message and "'Acme Supplies Inc'" in finding.message
    same = _certificate(db, company_id, "Acme Supply Company, LLC")
    (check,) = service.verify(same, as_of=AS_OF)
    assert "matches the purchaser" in check.message and _findings(db, same) == {}


def test_online_verifier_naming_another_holder_is_an_error(db, company_id, registry_server):
    cert_id = _certificate(db, company_id, "Memphis Friends Meeting")
    PermitRegistryHandler.answers = {NUMBER: {"status": "active", "name": "Zenith Petroleum Holdings LP"}}
    service = PermitService(db)
    service.register_verifier("TX", HttpVerifier(registry_server, timeout=5, name="test registry"))
    (check,) = service.verify(cert_id, as_of=AS_OF)
    assert check.method == "online" and "someone else's permit" in check.message
    assert _findings(db, cert_id)["permit.holder_mismatch"].severity == "error"


def test_manual_check_with_the_holder_shown_is_compared_too(db, company_id, tmp_path):
    cert_id = _certificate(db, company_id, "Memphis Friends Meeting")
    evidence: Path = write_image(tmp_path / "lookup.png", 40, 20)
    check = PermitService(db).record_manual_check(
        cert_id, state="TX", result="active", evidence=evidence, source_url="https://comptroller.texas.gov/",
        as_of=AS_OF, name_on_record="ZENITH PETROLEUM HOLDINGS LP")
    assert check.name_on_record == "ZENITH PETROLEUM HOLDINGS LP" and "NOT the purchaser" in check.message
    assert _findings(db, cert_id)["permit.holder_mismatch"].severity == "error"
