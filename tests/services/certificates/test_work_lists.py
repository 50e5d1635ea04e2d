"""Work lists from the checks: validation errors, warnings to acknowledge, permits never checked, and the
counts of the latest validation run on each row, all in SQL."""

from __future__ import annotations

from sqlalchemy import delete

from ecms_desktop.models.validation import ValidationRun
from ecms_desktop.services.certificates.query import (
    CertificateQuery,
    CheckFilter,
    count_by_status,
    load_rows,
    matching_ids,
)
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.validation.permit_service import PermitService
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import AS_OF, complete_fields, make_certificate, make_desk_certificate, write_image


def _seed(db, company_id):  # type: ignore[no-untyped-def]
    """approved: complete, approved (warnings acknowledged); broken: pending, fields missing (errors);
    weak: pending, complete but the purchaser's name only weakly matches the customer (a warning)."""
    approved = make_certificate(db, company_id, customer="C-1", name="Alpha Traders").id
    broken = make_desk_certificate(db, company_id, as_of=AS_OF, customer="C-2", name="Bravo Stores",
                                   purchaser_name="Bravo Stores").id
    weak = make_desk_certificate(db, company_id, as_of=AS_OF, customer="C-3", name="Charlie Retail",
                                 state_ids={"TX": "32012345678"},
                                 **complete_fields("Charlie Retail Holdings", "TX")).id
    return approved, broken, weak


def _ids(db, **kw):  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return matching_ids(s, CertificateQuery(as_of=AS_OF, **kw))


def test_errors_and_warnings_lists_follow_the_latest_validation_run(db, company_id) -> None:  # type: ignore[no-untyped-def]
    approved, broken, weak = _seed(db, company_id)
    latest = ValidationService(db).latest(weak)
    assert latest is not None and latest.warnings and not latest.errors
    assert _ids(db, check=CheckFilter.ERRORS) == [broken]
    assert _ids(db, check=CheckFilter.WARNINGS) == [weak]
    # The filter combines with the others, and the status strip counts within it.
    assert _ids(db, check=CheckFilter.ERRORS, text="alpha") == []
    with db.reader() as s:
        counts = count_by_status(s, CertificateQuery(as_of=AS_OF, check=CheckFilter.ERRORS))
    assert sum(counts.values()) == 1
    # Approving with the warnings acknowledged takes the certificate off the list.
    detail = CertificateService(db).get(weak, AS_OF)
    CertificateService(db).approve(weak, expected_version=detail.version, as_of=AS_OF, acknowledge_warnings=True)
    assert _ids(db, check=CheckFilter.WARNINGS) == []
    # Only the LATEST run counts: the approved certificate validated again later with an error shows up.
    assert approved not in _ids(db, check=CheckFilter.ERRORS)
    with db.transaction() as s:
        s.add(ValidationRun(certificate_id=approved, company_id=company_id, rules_version="x", as_of=AS_OF,
                            trigger="revalidation", fingerprint="f", error_count=1, warning_count=0))
    assert set(_ids(db, check=CheckFilter.ERRORS)) == {approved, broken}


def test_rows_carry_the_latest_counts_and_sort_by_them(db, company_id) -> None:  # type: ignore[no-untyped-def]
    approved, broken, weak = _seed(db, company_id)
    with db.transaction() as s:  # a certificate never validated
        s.execute(delete(ValidationRun).where(ValidationRun.certificate_id == approved))
    with db.reader() as s:
        rows = {r.id: r for r in load_rows(s, [approved, broken, weak], AS_OF)}
    assert rows[approved].errors is None and rows[approved].warnings is None
    assert rows[broken].errors and rows[broken].errors > 0
    assert rows[weak].errors == 0 and rows[weak].warnings == 1
    assert _ids(db, sort="errors", descending=True)[0] == broken
    assert _ids(db, sort="warnings", descending=True)[0] == weak
    assert _ids(db, sort="errors")[-1] == broken


def test_permit_not_checked_lists_states_without_a_recorded_check(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    approved, broken, weak = _seed(db, company_id)
    assert set(_ids(db, check=CheckFilter.PERMIT_UNCHECKED)) == {approved, broken, weak}
    evidence = write_image(tmp_path / "lookup.png", 40, 20)
    PermitService(db).record_manual_check(approved, state="TX", result="active", evidence=evidence,
                                          source_url="https://example.test/lookup", as_of=AS_OF)
    assert set(_ids(db, check=CheckFilter.PERMIT_UNCHECKED)) == {broken, weak}
    # Rejected certificates are no work: they leave the list.
    detail = CertificateService(db).get(broken, AS_OF)
    CertificateService(db).reject(broken, "not signed", expected_version=detail.version, as_of=AS_OF)
    assert _ids(db, check=CheckFilter.PERMIT_UNCHECKED) == [weak]


def test_a_batch_with_counts_still_takes_two_statements(db, company_id) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    ids = list(_seed(db, company_id))
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with db.reader() as s:
        event.listen(s.get_bind(), "before_cursor_execute", count)
        try:
            rows = load_rows(s, ids, AS_OF)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", count)
    assert len(rows) == 3 and len([st for st in statements if st.lstrip().upper().startswith("SELECT")]) == 2
