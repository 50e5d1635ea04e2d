"""Certificate import: every row checked first, errors named by row and column, nothing half-imported."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent, Certificate, Customer, Document
from ecms_desktop.services.certificates.import_service import REQUIRED_COLUMNS, CertificateImporter
from ecms_desktop.services.certificates.query import CertificateQuery, iter_rows
from ecms_desktop.services.core.errors import ValidationError
from tests.factories import GOOD_IMPORT_ROW, write_import_csv, write_text_pdf

AS_OF = dt.date(2026, 11, 22)


def counts(db) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (Certificate, Customer, Document, AuditEvent))


def test_good_file_imports_with_defaults_and_documents(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_text_pdf(tmp_path / "scan1.pdf")
    path = write_import_csv(tmp_path / "certs.csv", [
        {**GOOD_IMPORT_ROW, "document": "scan1.pdf"},
        {**GOOD_IMPORT_ROW, "customer_number": " c-1001 ", "customer_name": "", "state": "CA", "form": "CA-CDTFA-230",
         "certificate_number": "R-2", "purchaser_tax_id": "123-456789"},
        {**GOOD_IMPORT_ROW, "customer_number": "C-2002", "customer_name": "Lakes Supply", "state": "OH;MI;KY",
         "form": "SST F0003", "certificate_number": "S-1", "review_status": "pending",
         "certificate_type": "single_use", "po_number": "PO-88"},
    ])
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF)
    assert (result.imported, result.customers_created, result.documents_stored) == (3, 2, 1)
    with db.reader() as s:
        rows = {r.certificate_number: r for r in iter_rows(s, CertificateQuery(as_of=AS_OF))}
    assert rows["R-1"].review_state == "approved" and rows["R-1"].form_code == "TX-01-339"
    assert rows["R-2"].customer_number == "C-1001"  # trailing space and case did not create a second customer
    assert rows["S-1"].review_state == "pending" and [line.state for line in rows["S-1"].lines] == ["KY", "MI", "OH"]
    assert rows["S-1"].certificate_type == "single_use"


def test_every_bad_row_is_reported_and_nothing_is_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    path = write_import_csv(tmp_path / "certs.csv", [
        GOOD_IMPORT_ROW,                                                               # row 2: fine
        {**GOOD_IMPORT_ROW, "signed_date": "15/03/2026", "certificate_number": "A"},   # row 3: date
        {**GOOD_IMPORT_ROW, "state": "XX", "certificate_number": "B"},                 # row 4: state
        {**GOOD_IMPORT_ROW, "form": "TX-99-999", "certificate_number": "C"},           # row 5: form
        {**GOOD_IMPORT_ROW, "customer_number": "", "certificate_number": "D"},         # row 6: customer number
        {**GOOD_IMPORT_ROW, "document": "missing.pdf", "certificate_number": "E"},     # row 7: missing file
        {**GOOD_IMPORT_ROW, "document": "broken.pdf", "certificate_number": "F"},      # row 8: corrupt file
        {**GOOD_IMPORT_ROW, "exempt_reason": "because", "certificate_number": "G"},    # row 9: reason
        {**GOOD_IMPORT_ROW, "customer_number": "C-9", "customer_name": "",
         "certificate_number": "H"},  # row 10: new, no name
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
    path = write_import_csv(tmp_path / "certs.csv",
                            [GOOD_IMPORT_ROW, {**GOOD_IMPORT_ROW, "state": "QQ", "certificate_number": "X"}])
    result = CertificateImporter(db).import_file(path, company_id=company_id, skip_invalid=True)
    assert result.imported == 1 and result.skipped_rows == 1
    assert [(p.row, p.column) for p in result.problems] == [(3, "state")]


def test_encrypted_document_is_reported_not_stored(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_text_pdf(tmp_path / "locked.pdf", password="secret")
    path = write_import_csv(tmp_path / "certs.csv", [{**GOOD_IMPORT_ROW, "document": "locked.pdf"}])
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    (problem,) = info.value.problems
    assert problem.column == "document" and "password" in problem.message.lower()
    assert counts(db)[2] == 0


def test_reimporting_the_same_rows_is_refused_as_duplicates(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_import_csv(tmp_path / "certs.csv", [GOOD_IMPORT_ROW])
    CertificateImporter(db).import_file(path, company_id=company_id)
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    assert "already stored" in info.value.problems[0].message
    twice = {**GOOD_IMPORT_ROW, "certificate_number": "Z"}
    dup_in_file = write_import_csv(tmp_path / "dup.csv", [twice, twice])
    with pytest.raises(ValidationError, match="1 of 2 rows"):
        CertificateImporter(db).import_file(dup_in_file, company_id=company_id)


def test_form_not_accepted_by_the_state_is_still_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """New York accepts neither the SST nor the MTC form: that is a validation finding, not an import error
    (the certificate is stored, pending review)."""
    path = write_import_csv(tmp_path / "certs.csv", [{**GOOD_IMPORT_ROW, "state": "NY", "form": "SST-F0003"}])
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF)
    assert result.imported == 1 and result.held_for_review == 1


def test_expiry_date_in_the_file_is_an_override_with_a_reason(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_import_csv(tmp_path / "certs.csv", [{**GOOD_IMPORT_ROW, "expiry_date": "2027-06-30"}])
    result = CertificateImporter(db).import_file(path, company_id=company_id)
    from ecms_desktop.services.certificates.service import CertificateService

    detail = CertificateService(db).get(result.certificate_ids[0], dt.date(2026, 11, 22))
    assert detail.lines[0].expiry_date == dt.date(2027, 6, 30) and detail.lines[0].expiry_origin == "override"


def test_xlsx_with_real_excel_date_cells_and_partial_exemption(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    headers = [*REQUIRED_COLUMNS, "product_codes", "exempt_percent", "currency"]
    ws.append([h.replace("_", " ").title() for h in headers])  # "Customer Number" etc. is accepted
    values = {**GOOD_IMPORT_ROW, "signed_date": dt.datetime(2026, 3, 15), "product_codes": "P-1; P-2",
              "exempt_percent": 50, "currency": "usd"}
    ws.append([values.get(h, "") for h in headers])
    ws.append([{**values, "certificate_number": "R-9", "effective_date": "not a date"}.get(h, "") for h in headers])
    path = tmp_path / "certs.xlsx"
    wb.save(path)
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id)
    assert [(p.row, p.column) for p in info.value.problems] == [(3, "effective_date")]
    result = CertificateImporter(db).import_file(path, company_id=company_id, skip_invalid=True)
    from ecms_desktop.services.certificates.service import CertificateService

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


# -- the approval gate (imported "approved" rows pass the desk's gate) ----------------------------------


def _runs_and_acks(db, cert_id):  # type: ignore[no-untyped-def]
    """The certificate's last validation run (plain values), its finding rules, and its acknowledgements."""
    from types import SimpleNamespace

    from ecms_desktop.models.validation import ValidationRun, WarningAcknowledgement

    with db.reader() as s:
        run = s.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id)
                        .order_by(ValidationRun.id.desc())).scalars().first()
        rules = sorted(f.rule for f in run.findings)
        acks = [SimpleNamespace(run_id=a.run_id, note=a.note, acknowledged_by=a.acknowledged_by,
                                acknowledged_at=a.acknowledged_at, warnings=a.warnings)
                for a in s.execute(select(WarningAcknowledgement)
                                   .where(WarningAcknowledgement.certificate_id == cert_id)).scalars()]
        return SimpleNamespace(id=run.id, trigger=run.trigger, warning_count=run.warning_count), rules, acks


def test_imported_certificates_with_validation_errors_land_pending_with_their_findings(  # type: ignore[no-untyped-def]
        db, company_id, tmp_path) -> None:
    """An SST form covering Texas resale and an MTC form for New York are refused by those states: asked
    for as approved (the default for migrated records), they are stored pending review with their
    findings, never active; the summary counts them."""
    path = write_import_csv(tmp_path / "certs.csv", [
        GOOD_IMPORT_ROW,
        {**GOOD_IMPORT_ROW, "form": "SST-F0003", "certificate_number": "S-TX", "business_type": "retailer"},
        {**GOOD_IMPORT_ROW, "customer_number": "C-2", "customer_name": "Hudson Goods Inc", "state": "NY",
         "form": "MTC-UNIFORM", "certificate_number": "M-NY", "review_status": "approved"},
    ])
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF)
    with db.reader() as s:
        rows = {r.certificate_number: r for r in iter_rows(s, CertificateQuery(as_of=AS_OF))}
    assert rows["R-1"].review_state == "approved" and rows["R-1"].status.value == "active"
    for number, rule in (("S-TX", "sst.refused"), ("M-NY", "mtc.refused")):
        assert rows[number].review_state == "pending" and rows[number].status.value == "pending_review"
        run, rules, acks = _runs_and_acks(db, rows[number].id)
        assert run.trigger == "import" and rule in rules and acks == []
    assert (result.imported, result.with_errors, result.held_for_review, result.accepted_with_findings) == (3, 2, 2, 0)
    with db.reader() as s:
        created = s.execute(select(AuditEvent).where(AuditEvent.action == "certificate.created",
                                                     AuditEvent.certificate_id == rows["S-TX"].id)).scalar_one()
        assert "held_for_review" in created.details and created.after["review_state"] == "pending"


def test_imported_certificate_with_warnings_only_lands_pending_as_the_desk_would_not_approve_it(  # type: ignore[no-untyped-def]
        db, company_id, tmp_path) -> None:
    """The desk approves a certificate with warnings only when someone acknowledges them (who, when):
    an import does not approve it silently either."""
    # warning: expiry set by hand
    path = write_import_csv(tmp_path / "certs.csv", [{**GOOD_IMPORT_ROW, "expiry_date": "2027-06-30"}])
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF)
    from ecms_desktop.services.certificates.service import CertificateService

    assert CertificateService(db).get(result.certificate_ids[0], AS_OF).review_state == "pending"
    run, rules, _ = _runs_and_acks(db, result.certificate_ids[0])
    assert rules == ["expiry.override"] and run.warning_count == 1
    assert (result.with_errors, result.with_warnings, result.held_for_review) == (0, 1, 1)


def test_accept_findings_with_a_reason_approves_and_records_who_when_and_why_per_certificate(  # type: ignore[no-untyped-def]
        db, company_id, tmp_path) -> None:
    path = write_import_csv(tmp_path / "certs.csv", [
        GOOD_IMPORT_ROW,
        {**GOOD_IMPORT_ROW, "form": "SST-F0003", "certificate_number": "S-TX", "business_type": "retailer"},
        {**GOOD_IMPORT_ROW, "certificate_number": "R-2", "expiry_date": "2027-06-30"},
    ])
    reason = "approved in the old system by the tax manager; audit 2025 accepted them"
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF,
                                                 accept_findings_reason=f"  {reason} ")
    assert (result.imported, result.with_errors, result.with_warnings) == (3, 1, 1)
    assert (result.held_for_review, result.accepted_with_findings) == (0, 2)
    from ecms_desktop.services.certificates.service import CertificateService

    service = CertificateService(db)
    by_number = {service.get(i, AS_OF).data.certificate_number: i for i in result.certificate_ids}
    assert {service.get(i, AS_OF).review_state for i in by_number.values()} == {"approved"}
    assert _runs_and_acks(db, by_number["R-1"])[2] == []  # nothing to accept, nothing recorded
    for number, severity, rule in (("S-TX", "error", "sst.refused"), ("R-2", "warning", "expiry.override")):
        run, _, acks = _runs_and_acks(db, by_number[number])
        (ack,) = acks
        assert ack.run_id == run.id and ack.note == reason and ack.acknowledged_by == "tester"
        assert ack.acknowledged_at is not None
        assert [(f["severity"], f["rule"]) for f in ack.warnings] == [(severity, rule)]
    with db.reader() as s:
        events = s.execute(select(AuditEvent).where(AuditEvent.action == "certificate.findings_accepted")
                           .order_by(AuditEvent.seq)).scalars().all()
        assert {e.certificate_id for e in events} == {by_number["S-TX"], by_number["R-2"]}
        assert all(e.actor == "tester" and e.after["note"] == reason for e in events)
        summary = s.execute(select(AuditEvent).where(AuditEvent.action == "import.certificates")).scalar_one()
        assert summary.details["accepted_with_findings"] == 2 and summary.details["accept_findings_reason"] == reason


# -- every field a form requires has a column -----------------------------------------------------------

#: For each field the rules pack can require: the import column that carries it and a value for it.
#: The seller's name and address are the company's (the company fixture has both).
FIELD_COLUMNS = {
    "purchaser_name": ("purchaser_name", "Bluebonnet Resale LLC"),
    "purchaser_address": ("purchaser_address", "1 Main St, Austin TX 78701"),
    "purchaser_tax_id": ("purchaser_tax_id", "32098765432"),
    "purchaser_ein": ("purchaser_ein", "12-3456789"),
    "business_type": ("business_type", "retailer"),
    "business_description": ("business_description", "hardware store"),
    "property_description": ("property_description", "hardware for resale"),
    "exemption_detail": ("exemption_detail", "IRS 501(c)(3) letter of 2019"),
    "signature": ("signed", "yes"),
    "signer_name": ("signer_name", "Pat Doe"),
    "signer_title": ("signer_title", "Owner"),
    "signed_date": ("signed_date", "2026-03-15"),
    "po_number": ("po_number", "PO-1"),
    "effective_date": ("effective_date", "2026-03-15"),
    "expiry_date": ("expiry_date", "2027-03-14"),
    "exempt_reason": ("exempt_reason", None),  # the reason of the combination
    "home_state": ("state", None),             # the coverage line's state
}
_FROM_COMPANY = {"seller_name", "seller_address"}
#: Left blank, these are filled all the same: the expiry date computed from the rules, the purchaser's
#: name taken from the customer's.
_COMPUTED_WHEN_BLANK = {"expiry_date", "purchaser_name"}


def _required_fields():  # type: ignore[no-untyped-def]
    """Every field any form requires in a state that accepts it, with one (form, state, reason) that
    requires it - derived from the rules pack."""
    from ecms_desktop.rules import load_rules_pack

    rules = load_rules_pack()
    found: dict[str, tuple[str, str, str]] = {}
    for form in rules.forms.values():
        for reason in rules.reason_codes:
            needed = set(form.fields_for(reason))
            for state in sorted(rules.states):
                acceptance = rules.form_acceptance(state, form.code, reason)
                if not rules.state(state).has_sales_tax or not acceptance.accepted:
                    continue
                for name in sorted(needed | set(acceptance.requires_fields)):
                    found.setdefault(name, (form.code, state, reason))
    return found


def test_every_field_a_form_requires_can_be_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """For every field any form of the rules pack requires: a certificate carrying it in its import column
    has no "missing" finding for it, and the same certificate without it has one (so the column really
    reaches the field). business_type, required by SST-F0003 and MTC-UNIFORM, used to be refused as an
    unknown column."""
    from ecms_desktop.services.certificates.import_service import OPTIONAL_COLUMNS
    from ecms_desktop.services.validation.service import ValidationService

    required = _required_fields()
    assert {"business_type", "purchaser_tax_id", "signature"} <= set(required)
    unmapped = set(required) - set(FIELD_COLUMNS) - _FROM_COMPANY
    assert not unmapped, f"fields a form requires that no import column carries: {sorted(unmapped)}"
    columns = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    assert {column for column, _ in FIELD_COLUMNS.values()} <= columns
    full = {column: value for column, value in FIELD_COLUMNS.values() if value is not None}
    validation = ValidationService(db)
    for n, (name, (form, state, reason)) in enumerate(sorted(required.items())):
        base = {**GOOD_IMPORT_ROW, **full, "form": form, "state": state, "exempt_reason": reason,
                "customer_number": f"F-{n}", "certificate_number": f"{name}-with"}
        rows = [base]
        column, value = FIELD_COLUMNS.get(name, (None, None))
        if value is not None and name not in _COMPUTED_WHEN_BLANK:
            rows.append({**base, "certificate_number": f"{name}-without", column: "no" if column == "signed" else "",
                         **({"effective_date": "2026-03-15"} if column == "signed_date" else {})})
        result = CertificateImporter(db).import_file(write_import_csv(tmp_path / f"{name}.csv", rows),
                                                     company_id=company_id, as_of=AS_OF)
        missing = [{(f.field, f.state) for f in validation.latest(cid).findings
                    if f.rule in ("field.required", "sst.restriction", "mtc.restriction") and f.field == name}
                   for cid in result.certificate_ids]
        assert missing[0] == set(), f"{name} ({form}, {state}, {reason}) imported but still missing: {missing[0]}"
        if len(missing) > 1:
            assert missing[1], f"{name}: leaving column {column!r} empty was not noticed ({form}, {state})"


# -- concurrent imports ---------------------------------------------------------------------------------


def test_concurrent_imports_sharing_a_new_customer_all_succeed_with_one_customer(  # type: ignore[no-untyped-def]
        db, db_url, company_id, tmp_path) -> None:
    """Three imports, each with its own database connection, check their rows at the same time (all see
    customer C-NEW as new), then store: each succeeds, C-NEW exists once, nothing is lost or doubled
    (on PostgreSQL two of three used to fail with an IntegrityError traceback)."""
    import threading

    from ecms_desktop.services.core import audit
    from ecms_desktop.services.core.database import Database

    files = [write_import_csv(tmp_path / f"part{i}.csv", [
        {**GOOD_IMPORT_ROW, "customer_number": "C-NEW", "customer_name": "New Buyer LLC",
         "certificate_number": f"P{i}-{j}"}
        for j in range(3)]) for i in range(3)]
    barrier = threading.Barrier(len(files), timeout=60)
    outcomes: dict[int, object] = {}

    def run(i: int) -> None:
        database = Database(db_url)

        def progress(done: int, total: int, text: str) -> None:
            if text.startswith("Checking") and done == total - 1:
                barrier.wait()  # every import has read the customers before any stores

        try:
            outcomes[i] = CertificateImporter(database).import_file(files[i], company_id=company_id, as_of=AS_OF,
                                                                    progress=progress)
        except Exception as exc:  # reported by the assertion below
            outcomes[i] = exc
        finally:
            database.dispose()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(files))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    failures = {i: f"{type(o).__name__}: {o}" for i, o in outcomes.items() if isinstance(o, BaseException)}
    assert not failures and len(outcomes) == 3
    assert sum(o.customers_created for o in outcomes.values()) == 1  # type: ignore[attr-defined]
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Customer).where(Customer.number_key == "c-new")
                         ).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(Certificate)).scalar_one() == 9
        assert audit.verify_chain(s).ok


# -- documents: only from the import's folder, regular files, read once ---------------------------------


def _refused(db, company_id, path, **kwargs):  # type: ignore[no-untyped-def]
    """The problems of an import that must be refused (and store nothing)."""
    before = counts(db)
    with pytest.raises(ValidationError) as info:
        CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF, **kwargs)
    assert counts(db) == before
    return info.value


def test_documents_outside_the_import_folder_are_refused_and_never_read(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                          monkeypatch) -> None:
    """A CSV received from someone else must not pull other files of the user into the database (and on
    into an audit pack): ``../``, absolute paths elsewhere and symbolic links that point out are refused
    by row and column, before anything is opened."""
    from ecms_desktop.services.documents import storage as document_service

    secret = write_text_pdf(tmp_path / "private.pdf", "my private letter")
    folder = tmp_path / "received"
    folder.mkdir()
    (folder / "link.pdf").symlink_to(secret)
    probed: list[str] = []
    monkeypatch.setattr(document_service, "check_bytes",
                        lambda data, name, **kw: probed.append(name))  # nothing may be probed
    path = write_import_csv(folder / "certs.csv", [
        {**GOOD_IMPORT_ROW, "certificate_number": "A", "document": "../private.pdf"},
        {**GOOD_IMPORT_ROW, "certificate_number": "B", "document": str(secret)},
        {**GOOD_IMPORT_ROW, "certificate_number": "C", "document": "link.pdf"},
        {**GOOD_IMPORT_ROW, "certificate_number": "D", "document": "/etc/passwd"},
    ])
    error = _refused(db, company_id, path)
    assert [(p.row, p.column) for p in error.problems] == [(2, "document"), (3, "document"), (4, "document"),
                                                           (5, "document")]
    assert all("outside the folder" in p.message for p in error.problems)
    assert probed == []


def test_documents_are_read_from_the_folder_the_user_names(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    scans = tmp_path / "scans"
    scans.mkdir()
    write_text_pdf(scans / "r1.pdf")
    sheet = tmp_path / "sheets"
    sheet.mkdir()
    path = write_import_csv(sheet / "certs.csv", [{**GOOD_IMPORT_ROW, "document": "r1.pdf"}])
    assert "not found" in _refused(db, company_id, path).problems[0].message
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF, documents_dir=scans)
    assert result.documents_stored == 1
    other = write_import_csv(sheet / "other.csv", [{**GOOD_IMPORT_ROW, "certificate_number": "R-9",
                                                    "document": "../sheets/other.csv"}])
    assert "outside the folder" in _refused(db, company_id, other, documents_dir=scans).problems[0].message


def test_a_device_or_named_pipe_as_document_is_refused_without_reading_it(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``/dev/zero`` read until memory ran out and a named pipe blocked the import for ever: a document
    must be a regular file (checked on the open descriptor, opened without blocking)."""
    import os
    import threading

    os.symlink("/dev/zero", tmp_path / "zero.pdf")
    os.mkfifo(tmp_path / "pipe.pdf")

    def unblock() -> None:  # only ever needed by code that blocks on the pipe: then it reads nothing
        with open(tmp_path / "pipe.pdf", "wb"):
            pass

    watchdog = threading.Timer(20, unblock)
    watchdog.daemon = True
    watchdog.start()
    try:
        path = write_import_csv(tmp_path / "certs.csv",
                                [{**GOOD_IMPORT_ROW, "certificate_number": "P", "document": "pipe.pdf"}])
        (problem,) = _refused(db, company_id, path).problems
        assert problem.column == "document" and "named pipe" in problem.message
    finally:
        watchdog.cancel()
    # /dev/zero through a link in the folder: outside the folder; and named directly by its own folder
    path = write_import_csv(tmp_path / "zero.csv",
                            [{**GOOD_IMPORT_ROW, "certificate_number": "Z", "document": "zero.pdf"}])
    assert "outside the folder" in _refused(db, company_id, path).problems[0].message
    path = write_import_csv(tmp_path / "zero2.csv",
                            [{**GOOD_IMPORT_ROW, "certificate_number": "Z", "document": "zero"}])
    (problem,) = _refused(db, company_id, path, documents_dir=Path("/dev")).problems
    assert "is a device" in problem.message


def test_a_document_larger_than_the_limit_is_refused(db, company_id, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.documents import storage as document_service

    write_text_pdf(tmp_path / "big.pdf")
    monkeypatch.setattr(document_service, "MAX_FILE_BYTES", 100)
    path = write_import_csv(tmp_path / "certs.csv", [{**GOOD_IMPORT_ROW, "document": "big.pdf"}])
    (problem,) = _refused(db, company_id, path).problems
    assert problem.column == "document" and "larger than the 100 bytes limit" in problem.message


def test_the_same_document_on_many_rows_is_read_once_and_stored_once(db, company_id, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same 10.8 MB PDF named by 100 rows took the importer to 1.15 GB: each file is read and probed
    once (and its bytes held once), and stored once."""
    from ecms_desktop.models import DocumentFile
    from ecms_desktop.services.documents import storage as document_service

    write_text_pdf(tmp_path / "shared.pdf")
    (tmp_path / "copy.pdf").write_bytes((tmp_path / "shared.pdf").read_bytes())
    probes: list[str] = []
    real = document_service.check_bytes
    monkeypatch.setattr(document_service, "check_bytes", lambda data, name, **kw: (probes.append(name),
                                                                                  real(data, name, **kw))[1])
    rows = [{**GOOD_IMPORT_ROW, "certificate_number": f"N-{i}", "document": "shared.pdf" if i % 10 else "copy.pdf"}
            for i in range(40)]
    result = CertificateImporter(db).import_file(write_import_csv(tmp_path / "certs.csv", rows), company_id=company_id,
                                                 as_of=AS_OF)
    assert result.documents_stored == 40
    assert sorted(probes) == ["copy.pdf", "shared.pdf"]  # one read and probe per file
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(DocumentFile)).scalar_one() == 1
        names = s.execute(select(Document.original_name)).scalars().all()
    assert sorted(set(names)) == ["copy.pdf", "shared.pdf"] and len(names) == 40


# -- silent misreads become errors ----------------------------------------------------------------------


def test_a_column_given_twice_is_refused_not_read_as_its_last_value(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "certs.csv"
    path.write_text(",".join([*REQUIRED_COLUMNS, "State"]) + "\n"
                    + ",".join([*(GOOD_IMPORT_ROW[c] for c in REQUIRED_COLUMNS), "CA"]) + "\n", encoding="utf-8")
    error = _refused(db, company_id, path)
    assert [(p.row, p.column) for p in error.problems] == [(1, "state")]
    assert "appears 2 times (columns D, P)" in error.problems[0].message


def test_a_decimal_comma_is_refused_not_read_as_a_thousands_separator(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_import_csv(tmp_path / "certs.csv", [
        {**GOOD_IMPORT_ROW, "exempt_percent": "5,5"},
        {**GOOD_IMPORT_ROW, "certificate_number": "R-2", "exempt_amount": "1,250.50"}])
    (problem,) = _refused(db, company_id, path).problems
    assert (problem.row, problem.column) == (2, "exempt_percent") and "decimal comma" in problem.message
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF, skip_invalid=True)
    from ecms_desktop.services.certificates.service import CertificateService

    assert CertificateService(db).get(result.certificate_ids[0], AS_OF).data.exempt_amount == 1250.5


def _workbook(path: Path, rows: list[dict[str, object]], *, percent_format: bool = False) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    headers = [*REQUIRED_COLUMNS, "exempt_percent"]
    ws.append(headers)
    for row in rows:
        ws.append([row.get(h, "") for h in headers])
        if percent_format:
            ws.cell(ws.max_row, len(headers)).number_format = "0%"
    wb.save(path)
    return path


def test_an_excel_cell_showing_50_percent_is_read_as_50_percent(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Excel stores a cell showing 50 % as 0.5; it used to be imported as 0.5 %."""
    from ecms_desktop.services.certificates.service import CertificateService

    path = _workbook(tmp_path / "certs.xlsx", [
        {**GOOD_IMPORT_ROW, "exempt_percent": 0.5},
        {**GOOD_IMPORT_ROW, "certificate_number": "R-2", "exempt_percent": 0.125}], percent_format=True)
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF)
    service = CertificateService(db)
    assert [service.get(i, AS_OF).data.exempt_percent for i in result.certificate_ids] == [50, 12.5]


def test_a_date_followed_by_junk_is_not_a_date(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_import_csv(tmp_path / "certs.csv", [
        {**GOOD_IMPORT_ROW, "signed_date": "2026-03-15 garbage"},
        {**GOOD_IMPORT_ROW, "certificate_number": "R-2", "signed_date": "2026-03-15 10:30"}])
    (problem,) = _refused(db, company_id, path).problems
    assert (problem.row, problem.column) == (2, "signed_date") and "'2026-03-15 garbage'" in problem.message


def test_the_first_visible_sheet_is_imported_not_a_hidden_one(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    hidden = wb.active
    hidden.title = "old export"
    hidden.sheet_state = "hidden"
    visible = wb.create_sheet("certificates")
    for ws, number in ((hidden, "OLD"), (visible, "NEW")):
        ws.append(list(GOOD_IMPORT_ROW))
        ws.append([{**GOOD_IMPORT_ROW, "certificate_number": number}[c] for c in GOOD_IMPORT_ROW])
    wb.active = 1
    wb.save(tmp_path / "certs.xlsx")
    result = CertificateImporter(db).import_file(tmp_path / "certs.xlsx", company_id=company_id, as_of=AS_OF)
    with db.reader() as s:
        assert s.execute(select(Certificate.certificate_number).where(
            Certificate.id.in_(result.certificate_ids))).scalars().all() == ["NEW"]


def test_values_outside_the_named_columns_make_the_row_an_error(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An unquoted comma in a value shifts the rest of the row; the value beyond the header used to be
    dropped without a word."""
    path = tmp_path / "certs.csv"
    header = ",".join(GOOD_IMPORT_ROW)
    good = ",".join(GOOD_IMPORT_ROW.values()).replace("1 Main St, Austin TX 78701", "1 Main St Austin TX 78701")
    shifted = good.replace("R-1", "R-2").replace("Pat Doe", "Doe, Pat")
    path.write_text(f"{header}\n{good}\n{shifted}\n", encoding="utf-8")
    (problem,) = _refused(db, company_id, path).problems
    assert problem.row == 3 and "no header" in problem.message
    assert f"column {chr(65 + len(GOOD_IMPORT_ROW))}" in problem.message


# -- values that cannot be stored: row errors, the same on every database and at the desk -----------------


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("exempt_percent", "NaN", "'NaN' is not a number"),
    ("exempt_percent", "1e-400", "more than 0"),
    ("exempt_amount", "Infinity", "'Infinity' is not a number"),
    ("exempt_amount", "1e20", "too large: at most 14 digits before the decimal point"),
    ("certificate_number", "X" * 65, "is 65 characters long; at most 64 can be stored"),
    ("customer_name", "N" * 301, "is 301 characters long; at most 300 can be stored"),
    ("purchaser_name", "Blue\x00LLC", "NUL character"),
    ("notes", "note \x00", "NUL character"),
    ("product_codes", "P-1;P\x00", "NUL character"),
    ("document", "scan\x00.pdf", "NUL character"),
    ("signed_date", "9999-12-31", "not a plausible date (between 1900 and 2199)"),
    ("effective_date", "0001-01-01", "not a plausible date"),
    ("state", "OH;oh", "state OH is listed twice"),
    ("currency", "\u00c4\u00d6\u00dc", "is not a 3-letter currency code"),
])
def test_values_a_column_cannot_hold_are_row_errors_on_every_database(db, company_id, tmp_path, column, value,  # type: ignore[no-untyped-def]
                                                                       expected) -> None:
    """SQLite stored these and PostgreSQL failed with a DataError traceback (or both failed): each is now
    a row-and-column error, with the same message on both databases."""
    row = {**GOOD_IMPORT_ROW, column: value,
           **({"form": "SST-F0003", "business_type": "retailer"} if column == "state" else {})}
    path = write_import_csv(tmp_path / "certs.csv", [row])
    (problem,) = _refused(db, company_id, path).problems
    assert (problem.row, problem.column) == (2, column) and expected in problem.message


def test_the_desks_form_gets_the_same_message_as_the_import(db, company_id, customer_id_for_desk) -> None:  # type: ignore[no-untyped-def]
    """One place knows what each stored field can hold: saving at the desk is refused with the import's
    message, beside the same field."""
    from dataclasses import replace

    from ecms_desktop.services.certificates.service import CertificateService

    service = CertificateService(db)
    detail = service.get(customer_id_for_desk, AS_OF)
    for field_name, value, expected in (("purchaser_name", "N" * 301, "is 301 characters long; at most 300"),
                                        ("notes", "a\x00b", "NUL character"),
                                        ("exempt_amount", Decimal("1e20"), "too large: at most 14 digits")):
        with pytest.raises(ValidationError) as info:
            service.save(detail.id, replace(detail.data, **{field_name: value}), expected_version=detail.version,
                         as_of=AS_OF)
        (problem,) = info.value.problems
        assert problem.column == field_name and expected in problem.message


@pytest.fixture
def customer_id_for_desk(db, company_id, tmp_path) -> int:  # type: ignore[no-untyped-def]
    """A stored certificate (its id) for the desk's save."""
    return CertificateImporter(db).import_file(write_import_csv(tmp_path / "desk.csv", [GOOD_IMPORT_ROW]),
                                               company_id=company_id, as_of=AS_OF).certificate_ids[0]


# -- malformed files ------------------------------------------------------------------------------------


def _xlsx_with_sheet_xml(path: Path, xml: bytes) -> Path:
    import zipfile

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(list(REQUIRED_COLUMNS))
    wb.save(path)
    with zipfile.ZipFile(path) as src:
        parts = {n: src.read(n) for n in src.namelist()}
    parts["xl/worksheets/sheet1.xml"] = xml
    with zipfile.ZipFile(path, "w") as out:
        for name, data in parts.items():
            out.writestr(name, data)
    return path


_SHEET = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' \
         b'<row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row></sheetData></worksheet>'


@pytest.mark.parametrize(("name", "xml", "expected"), [
    ("corrupt", b"<worksheet><sheetData><row><c>", "cannot be read as an Excel workbook"),
    ("billion-laughs", b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
     b'&a;&a;&a;&a;&a;"><!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>' + _SHEET, "declares entities"),
    ("xxe", b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + _SHEET,
     "declares entities"),
])
def test_malformed_or_hostile_workbook_xml_is_refused_with_a_message(db, company_id, tmp_path, name, xml,  # type: ignore[no-untyped-def]
                                                                      expected) -> None:
    error = _refused(db, company_id, _xlsx_with_sheet_xml(tmp_path / f"{name}.xlsx", xml))
    assert f"{name}.xlsx" in error.message and expected in error.message and "root:" not in error.message


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"),
                                              ("utf-16-be", b"\xfe\xff"), ("cp1252", b"")])
def test_csv_files_in_utf8_utf16_or_windows_1252_are_read(db, company_id, tmp_path, encoding, bom) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.certificates.service import CertificateService

    text = write_import_csv(tmp_path / "u.csv", [{**GOOD_IMPORT_ROW, "customer_name": "Café Société Müller – “Ærø”",
                                                  "notes": "résumé €5"}]).read_text(encoding="utf-8")
    path = tmp_path / "certs.csv"
    path.write_bytes(bom + text.encode(encoding))
    result = CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF)
    detail = CertificateService(db).get(result.certificate_ids[0], AS_OF)
    assert detail.customer_name == "Café Société Müller – “Ærø”" and detail.data.notes == "résumé €5"


@pytest.mark.parametrize(("label", "data", "expected"), [
    ("utf-32", b"\xff\xfe\x00\x00" + "customer_number\n".encode("utf-32-le"), "is UTF-32 text"),
    ("utf-16 without mark", "customer_number,state\nC-1,TX\n".encode("utf-16-le"), "without a byte-order mark"),
    ("cyrillic", "customer_number,customer_name\nC-1,Торговый дом\n".encode("cp1251"), "another encoding"),
    ("japanese", "customer_number,customer_name\nC-1,株式会社テスト\n".encode("shift_jis"), "another encoding"),
    ("undefined byte", b"customer_number,customer_name\nC-1,Caf\x81\n", "byte 0x81"),
])
def test_csv_files_in_other_encodings_are_refused_by_name(db, company_id, tmp_path, label, data, expected) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "certs.csv"
    path.write_bytes(data)
    error = _refused(db, company_id, path)
    assert expected in error.message and "UTF-8" in error.message, label


def test_an_import_that_waits_too_long_for_another_writer_says_so_and_imports_nothing(  # type: ignore[no-untyped-def]
        db, db_url, company_id, tmp_path) -> None:
    """While another desk holds the write (the audit chain's lock), an import waits a bounded time and then
    says plainly that the database is busy and to try again; nothing is half-imported, and the retry works."""
    from ecms_desktop.services.core import audit
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.core.errors import DatabaseBusyError

    path = write_import_csv(tmp_path / "certs.csv", [GOOD_IMPORT_ROW])
    holder, impatient = Database(db_url), Database(db_url, lock_timeout=1)
    try:
        before = counts(db)
        with holder.transaction() as s:
            audit.head_seq(s, lock=True)
            with pytest.raises(DatabaseBusyError, match="try again"):
                CertificateImporter(impatient).import_file(path, company_id=company_id, as_of=AS_OF)
        assert counts(db) == before
        assert CertificateImporter(impatient).import_file(path, company_id=company_id, as_of=AS_OF).imported == 1
    finally:
        holder.dispose()
        impatient.dispose()
