"""Finding certificates: SQL filters, status counts, batch loading."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event

from ecms_desktop.models import Status
from ecms_desktop.services.certificates.query import (
    CertificateQuery,
    CertificateQueryService,
    count_by_status,
    iter_rows,
    load_rows,
    matching_ids,
)
from ecms_desktop.services.certificates.service import CertificateService
from tests.factories import AS_OF, make_certificate

D = dt.date


def _seed(db, company_id):  # type: ignore[no-untyped-def]
    ids = {}
    ids["fl_soon"] = make_certificate(db, company_id, customer="C-100", name="Sunshine Traders",
                                      form="FL-DR-13", states=("FL",), signed=D(2026, 2, 1),
                                      certificate_number="FL-77").id
    ids["ct_expired"] = make_certificate(db, company_id, customer="C-200", name="Nutmeg Hardware",
                                         form="CT-RESALE", states=("CT",), signed=D(2022, 1, 1)).id
    ids["ca_active"] = make_certificate(db, company_id, customer="C-300", name="Golden Gate Resale",
                                        form="CA-CDTFA-230", states=("CA",), purchaser_tax_id="123-456789").id
    ids["sst_pending"] = make_certificate(db, company_id, customer="C-400", name="Lakes Supply",
                                          form="SST-F0003", states=("OH", "MI"), approve=False).id
    d = make_certificate(db, company_id, customer="C-500", name="Closed Shop", approve=True)
    ids["archived"] = CertificateService(db).archive(d.id, "closed", expected_version=d.version, as_of=AS_OF).id
    return ids


def _ids(db, **kw):  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return matching_ids(s, CertificateQuery(as_of=AS_OF, **kw))


def test_status_counts_and_filters(db, company_id) -> None:  # type: ignore[no-untyped-def]
    ids = _seed(db, company_id)
    with db.reader() as s:
        counts = count_by_status(s, CertificateQuery(as_of=D(2026, 12, 5)))
    assert counts[Status.EXPIRING_SOON] == 1 and counts[Status.EXPIRED] == 1 and counts[Status.ACTIVE] == 1
    assert counts[Status.PENDING_REVIEW] == 1 and counts[Status.ARCHIVED] == 1 and counts[Status.REJECTED] == 0
    assert _ids(db, statuses=(Status.EXPIRED,)) == [ids["ct_expired"]]
    assert set(_ids(db, statuses=(Status.ARCHIVED, Status.PENDING_REVIEW))) == {ids["archived"], ids["sst_pending"]}


def test_text_matches_customer_number_name_certificate_and_permit(db, company_id) -> None:  # type: ignore[no-untyped-def]
    ids = _seed(db, company_id)
    assert _ids(db, text="sunshine") == [ids["fl_soon"]]
    assert _ids(db, text=" c-300 ") == [ids["ca_active"]]
    assert _ids(db, text="fl-77") == [ids["fl_soon"]]
    assert _ids(db, text="456789") == [ids["ca_active"]]


def test_state_form_and_expiring_within(db, company_id) -> None:  # type: ignore[no-untyped-def]
    ids = _seed(db, company_id)
    assert _ids(db, states=("MI",)) == [ids["sst_pending"]]
    assert _ids(db, form_code="CA-CDTFA-230") == [ids["ca_active"]]
    with db.reader() as s:
        assert matching_ids(s, CertificateQuery(as_of=D(2026, 12, 1), expiring_within_days=31)) == [ids["fl_soon"]]
        assert matching_ids(s, CertificateQuery(as_of=D(2026, 11, 1), expiring_within_days=30)) == []


def test_sorting_runs_in_sql(db, company_id) -> None:  # type: ignore[no-untyped-def]
    _seed(db, company_id)
    with db.reader() as s:
        names = [r.customer_name for r in iter_rows(s, CertificateQuery(as_of=AS_OF, sort="customer"))]
        assert names == sorted(names, key=str.casefold)
        desc = [r.customer_name for r in iter_rows(s, CertificateQuery(as_of=AS_OF, sort="customer",
                                                                      descending=True))]
        assert desc == list(reversed(names))
        expiries = [r.expiry_date for r in iter_rows(s, CertificateQuery(as_of=AS_OF, sort="expiry"))]
        dated = [e for e in expiries if e is not None]
        assert dated == sorted(dated) and expiries[-1] is None  # no-expiry last


def test_loading_a_batch_takes_two_statements_whatever_its_size(db, company_id) -> None:  # type: ignore[no-untyped-def]
    for i in range(30):
        make_certificate(db, company_id, customer=f"C-{i}", name=f"Buyer {i}", form="SST-F0003",
                         states=("OH", "MI"), approve=False)
    statements: list[str] = []
    with db.reader() as s:
        ids = matching_ids(s, CertificateQuery(as_of=AS_OF))
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            rows = load_rows(s, ids, AS_OF)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    assert len(rows) == 30 and all(len(r.lines) == 2 for r in rows)
    assert [r.id for r in rows] == ids
    assert len(statements) == 2


def test_row_status_is_the_worst_line(db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.core.expiry import certificate_status

    _seed(db, company_id)
    make_certificate(db, company_id, customer="C-600", name="Mixed Lines", form="SST-F0003",
                     states=("OH", "KY", "WA"), signed=D(2022, 12, 1))
    for day in (D(2026, 11, 22), D(2026, 12, 20), D(2027, 6, 1)):
        with db.reader() as s:
            for row in iter_rows(s, CertificateQuery(as_of=day)):
                expected = certificate_status(row.review_state, [line.expiry_date for line in row.lines], day)
                assert row.status is expected, (row.certificate_number, day)


def test_query_service_reads_what_the_session_functions_read(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """The grid's reads through the service, each in its own read: the same ids, counts and rows."""
    ids = _seed(db, company_id)
    service = CertificateQueryService(db)
    query = CertificateQuery(as_of=AS_OF, sort="customer")
    with db.reader() as s:
        expected_ids = matching_ids(s, query)
        expected_counts = count_by_status(s, query)
        expected_rows = load_rows(s, expected_ids, AS_OF)
    assert service.matching_ids(query) == expected_ids and len(expected_ids) == len(ids)
    assert service.count_by_status(query) == expected_counts
    assert service.load_rows(expected_ids, AS_OF) == expected_rows
    assert CertificateService(db).company_of(ids["fl_soon"]) == company_id
    assert CertificateService(db).company_of(max(ids.values()) + 1000) is None
