"""A long certificate import does not lock the desks out: it checks, validates and plans every row
without holding the database's writer or the audit trail, then writes in one short transaction; what
other desks change meanwhile is taken into account, and the result is all or nothing.

Each test acts from another desk (a second ``Database`` on the same database, with a short lock
timeout, so that a write waiting for the import's lock would fail as busy) at the moments the import
reports, outside its write.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from ecms_desktop.models import Certificate, CoverageLine
from ecms_desktop.services.certificates.import_service import CertificateImporter
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.integrity.check import check_database
from tests.factories import GOOD_IMPORT_ROW, make_desk_certificate, write_import_csv

AS_OF = dt.date(2026, 11, 22)


def _file(tmp_path: Path, n: int = 40) -> Path:
    return write_import_csv(tmp_path / "certs.csv", [
        {**GOOD_IMPORT_ROW, "certificate_number": f"R-{i}", "customer_number": f"C-{i % 4}",
         "customer_name": f"Buyer {i % 4} LLC"}
        for i in range(n)])


def _other_desk(db: Database) -> Database:
    return Database(db.url, lock_timeout=1.0)


def test_other_desks_write_while_an_import_checks_validates_and_plans_its_rows(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = _other_desk(db)
    moments: list[str] = []

    def progress(_done: int, _total: int, text: str) -> None:
        if text.startswith("Writing"):  # the short write itself
            return
        moments.append(text)
        # An audited write by another desk: refused as busy after 1 s if the import held the writer.
        CompanyService(other).create(f"Desk company {len(moments)}")

    result = CertificateImporter(db).import_file(_file(tmp_path), company_id=company_id, as_of=AS_OF,
                                                 progress=progress)
    other.dispose()
    assert result.imported == 40
    assert any(m.startswith("Checking and validating") for m in moments)
    report = check_database(db)
    assert report.ok, report.problems


def test_a_policy_changed_while_the_rows_are_validated_is_applied_to_what_is_stored(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = _other_desk(db)
    changed: list[bool] = []

    def progress(_done: int, _total: int, text: str) -> None:
        if text.startswith("Checking and validating") and not changed:
            CompanyService(other).set_expiry_policy(company_id, "TX", "resale", "years", 2,
                                                    "renew Texas resale certificates every two years")
            changed.append(True)

    result = CertificateImporter(db).import_file(_file(tmp_path, 6), company_id=company_id, as_of=AS_OF,
                                                 progress=progress)
    other.dispose()
    assert changed and result.imported == 6
    with db.reader() as s:
        origins = set(s.execute(select(CoverageLine.expiry_origin)).scalars())
        expiries = set(s.execute(select(CoverageLine.expiry_date)).scalars())
    # Checked again after the change: every line follows the company's new policy (signed 2026-03-15, valid two
    # years: to the day before).
    assert origins == {"company"}
    assert expiries == {dt.date(2028, 3, 14)}
    assert check_database(db).ok


def test_certificates_stored_by_a_desk_during_the_import_keep_their_ids_and_the_import_takes_others(
        db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = _other_desk(db)
    desk_ids: list[int] = []

    def progress(_done: int, _total: int, text: str) -> None:
        if text.startswith("Checking and validating") and not desk_ids:
            detail = make_desk_certificate(other, company_id, as_of=AS_OF, customer="D-1", name="Desk Buyer LLC",
                                           certificate_number="DESK-1", purchaser_name="Desk Buyer LLC",
                                           signed_date=AS_OF)
            desk_ids.append(detail.id)

    result = CertificateImporter(db).import_file(_file(tmp_path, 10), company_id=company_id, as_of=AS_OF,
                                                 progress=progress)
    other.dispose()
    assert result.imported == 10 and desk_ids
    assert desk_ids[0] not in result.certificate_ids
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Certificate)).scalar_one() == 11
        assert s.get(Certificate, desk_ids[0]).certificate_number == "DESK-1"  # type: ignore[union-attr]
    report = check_database(db)
    assert report.ok, report.problems
