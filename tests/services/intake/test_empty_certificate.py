"""A certificate made from an inbox document with nothing known but its customer: its form, states, exempt
reason and type stay empty (no default is picked), validation says plainly what is missing, it cannot be
approved until they are filled in, and the grid, the exemption feed, determination, exposure and
reprocessing take it as covering nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text

from ecms_desktop.models import Certificate, CoverageLine
from ecms_desktop.services.certificates.query import CertificateQuery, CertificateQueryService
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import LineInput
from ecms_desktop.services.core.database import Database, _alembic_config
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exemption_feed import customer_status
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import complete_fields, import_sales, make_company, paged_pdf, permit_number

AS_OF = dt.date(2026, 5, 1)
MISSING = {"state.missing": "state", "form.missing": "form_code", "reason.missing": "exempt_reason",
           "type.missing": "certificate_type"}


def empty_certificate(db, company_id: int, tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scan.pdf"
    path.write_bytes(paged_pdf(f"A scan nobody read yet ({tmp_path.name})"))
    [item] = ReturnedFormsService(db).intake([path], company_id, as_of=AS_OF, received_via="upload")
    assert item.document_id is not None
    done = InboxService(db).assign(item.document_id, customer="C-1", create_customer_name="Lone Star Retail LLC",
                                   as_of=AS_OF)
    assert done.created_certificate
    return done.certificate_id


def test_fields_not_known_stay_empty_and_validation_says_each_is_missing(db, company_id, tmp_path) -> None:
    cert_id = empty_certificate(db, company_id, tmp_path)
    detail = CertificateService(db).get(cert_id, AS_OF)
    data = detail.data
    assert (data.form_code, data.lines, data.exempt_reason, data.certificate_type) == ("", (), "", "")
    assert data.purchaser_name == "" and detail.review_state == "pending" and detail.lines == ()
    assert detail.expiry_date is None
    with db.reader() as s:
        assert s.execute(select(CoverageLine).where(CoverageLine.certificate_id == cert_id)).first() is None
    run = ValidationService(db).validate(cert_id, as_of=AS_OF, trigger="on_demand")
    found = {f.rule: f for f in run.findings}
    assert {rule: found[rule].field for rule in MISSING} == MISSING
    assert all(found[rule].severity == "error" for rule in MISSING)
    assert found["state.missing"].message.startswith("No state given: the document's state is not known yet")
    assert found["form.missing"].message.startswith("No form given: the document's form is not known yet")
    assert "form.unknown" not in found and "form.not_accepted" not in found
    with pytest.raises(ValidationError, match="cannot be approved"):
        CertificateService(db).approve(cert_id, expected_version=detail.version, as_of=AS_OF,
                                       acknowledge_warnings=True)
    assert check_database(db).ok


def test_the_accountant_fills_it_in_step_by_step_then_approves(db, company_id, tmp_path) -> None:
    cert_id = empty_certificate(db, company_id, tmp_path)
    service = CertificateService(db)
    detail = service.get(cert_id, AS_OF)
    # Only the form is known so far: it is saved, and the rest is still said to be missing.
    step = service.save(cert_id, dataclasses.replace(detail.data, form_code="TX-01-339"),
                        expected_version=detail.version, as_of=AS_OF)
    rules = {f.rule for f in ValidationService(db).validate(cert_id, as_of=AS_OF, trigger="on_demand").findings}
    assert {"state.missing", "reason.missing", "type.missing"} <= rules and "form.missing" not in rules
    # Then the state read from the scan, the reason still not known (what Accept all did at the desk): it is
    # saved, and the line's expiry is not known rather than looked up for an empty reason.
    step = service.save(cert_id, dataclasses.replace(step.data, lines=(LineInput("TX"),)),
                        expected_version=step.version, as_of=AS_OF)
    [line] = step.lines
    assert line.expiry_date is None and line.expiry_basis.startswith("not known yet") and "exempt reason" in \
        line.expiry_basis
    # A value that is given is still checked: an unknown reason is refused, not stored.
    with pytest.raises(ValidationError, match="unknown exempt reason"):
        service.save(cert_id, dataclasses.replace(step.data, exempt_reason="bogus"), expected_version=step.version,
                     as_of=AS_OF)
    filled = dataclasses.replace(step.data, lines=(LineInput("TX", state_tax_id=permit_number("TX")),),
                                 exempt_reason="resale", certificate_type="blanket",
                                 **complete_fields("Lone Star Retail LLC", "TX"))
    done = service.save(cert_id, filled, expected_version=step.version, as_of=AS_OF)
    approved = service.approve(cert_id, expected_version=done.version, as_of=AS_OF, acknowledge_warnings=True)
    assert approved.review_state == "approved"
    # An approved certificate cannot be emptied again.
    with pytest.raises(ValidationError, match="only a pending certificate may leave these empty") as info:
        service.save(cert_id, dataclasses.replace(approved.data, exempt_reason=""),
                     expected_version=approved.version, as_of=AS_OF)
    assert [p.column for p in info.value.problems] == ["exempt_reason"]
    assert check_database(db).ok


def test_the_grid_the_feed_and_determination_take_it_as_covering_nothing(db, company_id, tmp_path) -> None:
    cert_id = empty_certificate(db, company_id, tmp_path)
    queries = CertificateQueryService(db)
    query = CertificateQuery(company_id=company_id, as_of=AS_OF)
    assert cert_id in queries.matching_ids(query)
    [row] = queries.load_rows([cert_id], AS_OF)
    assert (row.form_code, row.states, row.exempt_reason, row.certificate_type, row.lines) == ("", "", "", "", ())
    assert queries.matching_ids(CertificateQuery(company_id=company_id, as_of=AS_OF, states=("TX",))) == []
    assert queries.count_by_status(query)
    with db.reader() as s:
        assert s.get(Certificate, cert_id).expiry_date is None  # type: ignore[union-attr]
    assert customer_status(db, company_id, "C-1", as_of=AS_OF) == []
    import_sales(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes")
    determination = DeterminationService(db)
    summary = determination.run(company_id)
    assert (summary.lines, summary.exempt, summary.exposures) == (1, 0, 1)
    [result] = list(determination.iter_results(company_id))
    assert result.certificate_id is None and result.exposure_kind == "unsupported_claim"
    plan = determination.preview_reprocess(cert_id, dt.date(2026, 3, 1), dt.date(2026, 3, 31), as_of=AS_OF)
    assert plan.changes == [] and plan.exempt_delta == 0


def test_migration_0010_lets_the_reason_and_type_be_empty_and_going_back_keeps_them(tmp_path) -> None:
    """SQLite: the table's CHECK constraints are loosened in place (no rebuild: the foreign keys' ON DELETE
    actions would fire); going back refuses while a certificate has an empty reason or type."""
    url = f"sqlite:///{tmp_path / 'up.sqlite'}"
    db = Database(url)
    initialize_database(db)
    company_id = make_company(db)
    cert_id = empty_certificate(db, company_id, tmp_path)
    with db.engine.connect() as conn, pytest.raises(RuntimeError, match=f"certificates {cert_id} have no exempt"):
        command.downgrade(_alembic_config(conn), "0009")
    with db.reader() as s:
        cert = s.get(Certificate, cert_id)
        assert cert is not None and (cert.exempt_reason, cert.certificate_type) == ("", "")
    with db.transaction() as s:
        cert = s.get(Certificate, cert_id)
        assert cert is not None
        s.delete(cert)
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0009")
        conn.commit()
        sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'certificate'")).scalar_one()
        assert "exempt_reason IN ('resale'" in sql and "certificate_type IN ('blanket'" in sql
        assert "IN (''" not in sql
        assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    db.dispose()
    db = Database(url)
    assert initialize_database(db).action == "upgraded"
    assert empty_certificate(db, company_id, tmp_path / "again") > 0
    db.dispose()
