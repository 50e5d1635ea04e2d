"""Certificate import: every row checked first, errors named by row and column, nothing half-imported."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pymupdf
import pytest
from sqlalchemy import func, select

from ecms_desktop.errors import ValidationError
from ecms_desktop.models import AuditEvent, Certificate, Customer, Document
from ecms_desktop.services.certificate_query import CertificateQuery, iter_rows
from ecms_desktop.services.import_service import REQUIRED_COLUMNS, CertificateImporter

GOOD = {
    "customer_number": "C-1001", "customer_name": "Bluebonnet Resale LLC", "customer_email": "ap@bluebonnet.example",
    "state": "TX", "form": "tx 01-339", "certificate_number": "R-1", "exempt_reason": "resale",
    "purchaser_tax_id": "32098765432", "certificate_type": "blanket", "po_number": "", "signed_date": "2026-03-15",
    "effective_date": "", "expiry_date": "", "review_status": "", "document": "",
}


def write_csv(path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(REQUIRED_COLUMNS) + list(extra))
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: "" for k in writer.fieldnames}, **row})
    return path


def make_pdf(path: Path, text: str = "Texas Sales and Use Tax Resale Certificate", *,
             password: str | None = None) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), text)
    if password:
        doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "o")
    else:
        doc.save(path)
    doc.close()
    return path


def counts(db) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (Certificate, Customer, Document, AuditEvent))


def test_good_file_imports_with_defaults_and_documents(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_pdf(tmp_path / "scan1.pdf")
    path = write_csv(tmp_path / "certs.csv", [
        {**GOOD, "document": "scan1.pdf"},
        {**GOOD, "customer_number": " c-1001 ", "customer_name": "", "state": "CA", "form": "CA-CDTFA-230",
         "certificate_number": "R-2", "purchaser_tax_id": "123-456789"},
        {**GOOD, "customer_number": "C-2002", "customer_name": "Lakes Supply", "state": "OH;MI;KY",
         "form": "SST F0003", "certificate_number": "S-1", "review_status": "pending",
         "certificate_type": "single_use", "po_number": "PO-88"},
    ])
    result = CertificateImporter(db).import_file(path, company_id=company_id)
    assert (result.imported, result.customers_created, result.documents_stored) == (3, 2, 1)
    with db.reader() as s:
        rows = {r.certificate_number: r for r in iter_rows(s, CertificateQuery(as_of=dt.date(2026, 11, 22)))}
    assert rows["R-1"].review_state == "approved" and rows["R-1"].form_code == "TX-01-339"
    assert rows["R-2"].customer_number == "C-1001"  # trailing space and case did not create a second customer
    assert rows["S-1"].review_state == "pending" and [line.state for line in rows["S-1"].lines] == ["KY", "MI", "OH"]
    assert rows["S-1"].certificate_type == "single_use"


def test_every_bad_row_is_reported_and_nothing_is_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    path = write_csv(tmp_path / "certs.csv", [
        GOOD,                                                               # row 2: fine
        {**GOOD, "signed_date": "15/03/2026", "certificate_number": "A"},   # row 3: date
        {**GOOD, "state": "XX", "certificate_number": "B"},                 # row 4: state
        {**GOOD, "form": "TX-99-999", "certificate_number": "C"},           # row 5: form
        {**GOOD, "customer_number": "", "certificate_number": "D"},         # row 6: customer number
        {**GOOD, "document": "missing.pdf", "certificate_number": "E"},     # row 7: missing file
        {**GOOD, "document": "broken.pdf", "certificate_number": "F"},      # row 8: corrupt file
        {**GOOD, "exempt_reason": "because", "certificate_number": "G"},    # row 9: reason
        {**GOOD, "customer_number": "C-9", "customer_name": "", "certificate_number": "H"},  # row 10: new, no name
    ])
    before = counts(db)
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    assert counts(db) == before
    found = {(p.row, p.column) for p in info.value.problems}
    assert found == {(3, "signed_date"), (4, "state"), (5, "form"), (6, "customer_number"), (7, "document"),
                     (8, "document"), (9, "exempt_reason"), (10, "customer_name")}
    messages = {p.row: str(p) for p in info.value.problems}
    assert "certs.csv, row 3, column 'signed_date'" in messages[3] and "YYYY-MM-DD" in messages[3]
    assert "missing.pdf" in messages[7] and "not found" in messages[7]
    assert "broken.pdf" in messages[8]
    assert "8 of 9 rows" in info.value.message


def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "certs.csv", [GOOD, {**GOOD, "state": "QQ", "certificate_number": "X"}])
    result = CertificateImporter(db).import_file(path, company_id=company_id, skip_invalid=True)
    assert result.imported == 1 and result.skipped_rows == 1
    assert [(p.row, p.column) for p in result.problems] == [(3, "state")]


def test_encrypted_document_is_reported_not_stored(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_pdf(tmp_path / "locked.pdf", password="secret")
    path = write_csv(tmp_path / "certs.csv", [{**GOOD, "document": "locked.pdf"}])
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    (problem,) = info.value.problems
    assert problem.column == "document" and "password" in problem.message.lower()
    assert counts(db)[2] == 0


def test_reimporting_the_same_rows_is_refused_as_duplicates(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "certs.csv", [GOOD])
    CertificateImporter(db).import_file(path, company_id=company_id)
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    assert "already stored" in info.value.problems[0].message
    twice = {**GOOD, "certificate_number": "Z"}
    dup_in_file = write_csv(tmp_path / "dup.csv", [twice, twice])
    with pytest.raises(ValidationError, match="1 of 2 rows"):
        CertificateImporter(db).import_file(dup_in_file, company_id=company_id)


def test_form_not_accepted_by_the_state_is_still_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """New York accepts neither the SST nor the MTC form: that is a validation finding, not an import error."""
    path = write_csv(tmp_path / "certs.csv", [{**GOOD, "state": "NY", "form": "SST-F0003"}])
    assert CertificateImporter(db).import_file(path, company_id=company_id).imported == 1


def test_expiry_date_in_the_file_is_an_override_with_a_reason(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "certs.csv", [{**GOOD, "expiry_date": "2027-06-30"}])
    result = CertificateImporter(db).import_file(path, company_id=company_id)
    from ecms_desktop.services.certificate_service import CertificateService

    detail = CertificateService(db).get(result.certificate_ids[0], dt.date(2026, 11, 22))
    assert detail.lines[0].expiry_date == dt.date(2027, 6, 30) and detail.lines[0].expiry_origin == "override"


def test_xlsx_with_real_excel_date_cells_and_partial_exemption(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    headers = [*REQUIRED_COLUMNS, "product_codes", "exempt_percent", "currency"]
    ws.append([h.replace("_", " ").title() for h in headers])  # "Customer Number" etc. is accepted
    values = {**GOOD, "signed_date": dt.datetime(2026, 3, 15), "product_codes": "P-1; P-2", "exempt_percent": 50,
              "currency": "usd"}
    ws.append([values.get(h, "") for h in headers])
    ws.append([{**values, "certificate_number": "R-9", "effective_date": "not a date"}.get(h, "") for h in headers])
    path = tmp_path / "certs.xlsx"
    wb.save(path)
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    assert [(p.row, p.column) for p in info.value.problems] == [(3, "effective_date")]
    result = CertificateImporter(db).import_file(path, company_id=company_id, skip_invalid=True)
    from ecms_desktop.services.certificate_service import CertificateService

    detail = CertificateService(db).get(result.certificate_ids[0], dt.date(2026, 11, 22))
    assert detail.data.signed_date == dt.date(2026, 3, 15)
    assert detail.data.product_codes == ("P-1", "P-2") and detail.data.exempt_percent == 50
    assert detail.data.currency == "USD"


def test_missing_columns_and_unreadable_files_are_refused(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "short.csv"
    bad.write_text("customer_number,state\nC-1,TX\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="lacks required columns"):
        CertificateImporter(db).import_file(bad, company_id=company_id)
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="cannot be read as an Excel workbook"):
        CertificateImporter(db).import_file(junk, company_id=company_id)
    with pytest.raises(ValidationError, match="not found"):
        CertificateImporter(db).import_file(tmp_path / "nope.csv", company_id=company_id)
