"""The bulk write of an import stores what the one-by-one path stores, and the trail still checks.

An import decides every certificate before its write and writes them with bulk statements (see
``ecms_desktop.services.certificates.bulk``). These tests import a file of varied certificates and
create the same certificates one by one with ``create_certificate`` in a second database, then compare
every row and audit event (ids and times aside), and run the full integrity check (chain, record
digests) on the imported database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from ecms_desktop.models import AuditEvent, Certificate, CoverageLine, Customer, Document
from ecms_desktop.models.validation import Finding, ValidationRun, WarningAcknowledgement
from ecms_desktop.services.certificates.import_rows import RowChecker, StageJob
from ecms_desktop.services.certificates.import_service import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CertificateImporter,
    _Documents,
)
from ecms_desktop.services.certificates.service import create_certificate
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.tabular import RowErrors, read_table
from ecms_desktop.services.customers.service import upsert_customer
from ecms_desktop.services.documents.storage import store_checked
from ecms_desktop.services.integrity.check import check_database
from tests.factories import GOOD_IMPORT_ROW, make_company, write_import_csv, write_text_pdf

AS_OF = dt.date(2026, 11, 22)
_VOLATILE = {"id", "created_at", "updated_at", "reviewed_at", "ran_at", "acknowledged_at", "received_at",
             "certificate_id", "customer_id", "run_id", "occurred_at", "seq", "prev_hash", "hash", "state_sha256",
             "entity_id", "acknowledgement_id", "company_id"}


def _rows(db: Database, model: Any, order: Any) -> list[dict[str, Any]]:
    with db.reader() as s:
        table = model.__table__
        return [{k: v for k, v in dict(r).items() if k not in _VOLATILE}
                for r in s.execute(select(table).order_by(*order)).mappings()]


def _events(db: Database) -> list[tuple[str, Any, Any]]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    with db.reader() as s:
        return [(e.action, strip(e.after), strip(e.details)) for e in
                s.execute(select(AuditEvent).where(AuditEvent.action.like("certificate.%")
                                                   | AuditEvent.action.like("document.%")
                                                   | AuditEvent.action.like("customer.%"))
                          .order_by(AuditEvent.seq)).scalars()]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _rows_of_file(tmp_path: Path) -> list[dict[str, str]]:
    write_text_pdf(tmp_path / "scan.pdf")
    return [
        GOOD_IMPORT_ROW,                                                             # valid: approved
        {**GOOD_IMPORT_ROW, "certificate_number": "R-2", "purchaser_tax_id": "12"},  # an error: held for review
        {**GOOD_IMPORT_ROW, "customer_number": "C-2002", "customer_name": "Second Customer Inc",
         "customer_email": "", "certificate_number": "R-3", "state": "KS;KY", "form": "SST-F0003",
         "business_type": "retailer", "document": "scan.pdf", "review_status": "pending"},
        {**GOOD_IMPORT_ROW, "certificate_number": "R-4", "document": "scan.pdf", "expiry_date": "2027-12-31",
         "expiry_override_reason": "printed on the certificate"},
    ]


def _job_for(rows: list[Any], docs: _Documents, company_id: int) -> StageJob:
    """A job carrying what the row checker reads: the documents, no stored customers."""
    return StageJob(file_name="certs.csv", rows=rows, first_index=0, company_id=company_id, known={},
                    first_named={}, customer_ids={}, new_names={},
                    documents={r.text("document"): docs.probe(r.text("document")) for r in rows
                               if r.text("document")},
                    seller=("", ""), expiry_policies={}, permit_max_age=0, as_of=AS_OF, accept_findings_reason="",
                    actor="", now=dt.datetime.now(dt.UTC), ids={}, dialect=sqlite.dialect)


def test_an_import_stores_the_rows_and_events_that_creating_the_certificates_one_by_one_stores(
        tmp_path: Path) -> None:
    rows = _rows_of_file(tmp_path)
    path = write_import_csv(tmp_path / "certs.csv", rows)

    bulk = Database(f"sqlite:///{tmp_path / 'bulk.db'}")
    bulk.upgrade()
    one = Database(f"sqlite:///{tmp_path / 'one.db'}")
    one.upgrade()
    companies = [make_company(d, reply_to_email="", registrations={}) for d in (bulk, one)]
    importer = CertificateImporter(bulk)
    result = importer.import_file(path, company_id=companies[0], as_of=AS_OF)
    assert result.imported == 4 and result.held_for_review >= 1 and result.documents_stored == 2

    # The same certificates through the one-by-one path, as the import used to store them.
    table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
    docs = _Documents(tmp_path)
    checker = RowChecker(importer.rules, _job_for(table.rows, docs, companies[1]))
    with one.transaction() as s:
        cache: dict[str, Customer] = {}
        for i, row in enumerate(table.rows):
            item = checker.parse(i, row, RowErrors.for_row(table.name, row))
            assert item is not None
            customer, _ = upsert_customer(s, companies[1], item.customer_number, legal_name=item.customer_name,
                                          email=item.customer_email, cache=cache)
            cert = create_certificate(s, importer.rules, dataclasses.replace(item.data, customer_id=customer.id),
                                      origin="import", review_state=item.review_state, validate="import",
                                      as_of=AS_OF, gate=True)
            if item.document is not None:
                store_checked(s, docs.get(row.text("document")), received_via="import", certificate_id=cert.id,
                              company_id=companies[1])

    for model, order in ((Certificate, ["certificate_number"]), (CoverageLine, ["state", "expiry_date"]),
                         (Customer, ["number_key"]), (ValidationRun, ["id"]), (Finding, ["id"]),
                         (Document, ["id"])):
        assert _rows(bulk, model, order) == _rows(one, model, order), model.__name__
    # The same events: the customers' first here, each certificate's in the same order.
    bulk_events, one_events = _events(bulk), _events(one)
    assert sorted(map(_canonical, bulk_events)) == sorted(map(_canonical, one_events))
    certificate_events = [e for e in bulk_events if not e[0].startswith("customer.")]
    assert certificate_events == [e for e in one_events if not e[0].startswith("customer.")]

    report = check_database(bulk)
    assert report.ok, report.problems


def test_findings_accepted_with_a_reason_are_recorded_per_certificate_and_the_database_checks(
        tmp_path: Path, db: Database, company_id: int) -> None:
    path = write_import_csv(tmp_path / "certs.csv", _rows_of_file(tmp_path))
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF,
                                                 accept_findings_reason="approved in the old system")
    assert result.accepted_with_findings >= 1
    with db.reader() as s:
        acks = [(a.id, a.note) for a in s.execute(select(WarningAcknowledgement)).scalars()]
        events = [e.after for e in s.execute(select(AuditEvent).where(
            AuditEvent.action == "certificate.findings_accepted")).scalars()]
    assert len(acks) == len(events) == result.accepted_with_findings
    assert {note for _, note in acks} == {"approved in the old system"}
    assert {e["acknowledgement_id"] for e in events} == {i for i, _ in acks}
    report = check_database(db)
    assert report.ok, report.problems


def test_rows_checked_by_worker_processes_are_stored_as_when_checked_in_one_process(tmp_path: Path) -> None:
    """A large file is checked in chunks by worker processes; what is stored does not depend on it."""
    rows = [{**GOOD_IMPORT_ROW, "certificate_number": f"R-{i}", "customer_number": f"C-{i % 40}",
             "customer_name": f"Buyer {i % 40} LLC" if i < 40 else "", "purchaser_tax_id": "12" if i % 7 == 0
             else GOOD_IMPORT_ROW["purchaser_tax_id"], "state": "KS;KY" if i % 5 == 0 else "TX",
             "form": "SST-F0003" if i % 5 == 0 else "TX-01-339", "business_type": "retailer"}
            for i in range(2500)]
    path = write_import_csv(tmp_path / "certs.csv", rows)
    stored = []
    for workers in (0, 2):
        db = Database(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        db.upgrade()
        company = make_company(db, reply_to_email="", registrations={})
        result = CertificateImporter(db).import_file(path, company_id=company, as_of=AS_OF, workers=workers)
        assert result.imported == 2500 and result.customers_created == 40
        stored.append([_rows(db, model, order) for model, order in (
            (Certificate, ["certificate_number"]), (CoverageLine, ["state", "expiry_date"]),
            (Customer, ["number_key"]), (Finding, ["id"]))] + [_events(db)])
        report = check_database(db)
        assert report.ok, report.problems
        db.dispose()
    assert stored[0] == stored[1]
