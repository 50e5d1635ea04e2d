"""The certificate grid's model: QAbstractItemModelTester with fetch-more, batches, SQL sorting and
filtering, and a statement count showing that rows are not loaded one query per row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester
from sqlalchemy import event

from ecms_desktop.models import Status
from ecms_desktop.services.certificates.query import CertificateQuery, count_by_status, matching_ids
from ecms_desktop.views.certificates.status_badge_delegate import STATUS_ROLE
from ecms_desktop.views.certificates.table_model import CERT_ID_ROLE, COLUMN_KEYS, COLUMNS, CertificateTableModel
from ecms_desktop.views.operations.task_runner import TaskRunner
from tests.factories import seed_certificates

AS_OF = dt.date(2026, 6, 1)


def wait_query(qtbot: Any, model: CertificateTableModel, query: CertificateQuery) -> None:
    with qtbot.waitSignal(model.query_finished, timeout=10000):
        model.set_query(query)


@pytest.fixture
def runner(qtbot: Any) -> Any:
    r = TaskRunner()
    yield r
    r.wait()
    # Deliver queued results (e.g. a prefetch) while the runner still exists.
    QCoreApplication.sendPostedEvents()
    QCoreApplication.processEvents()


def test_model_passes_the_model_tester_with_fetch_more(qtbot, db, company_id, runner) -> None:
    ids = seed_certificates(db, company_id, 450)
    model = CertificateTableModel(db, runner, batch_size=200)
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    wait_query(qtbot, model, CertificateQuery(company_id=company_id, as_of=AS_OF, sort="id"))
    assert model.total == 450
    assert model.rowCount() == 0 and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == 200
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == 450
    assert [model.index(r, 0).data(CERT_ID_ROLE) for r in range(model.rowCount())] == sorted(ids)
    # sorting by another column runs a new query in SQL and the tester watches the reset
    with qtbot.waitSignal(model.query_finished, timeout=10000):
        model.sort(COLUMN_KEYS.index("certificate_number"), Qt.SortOrder.DescendingOrder)
    model.fetchMore()
    numbers = [model.index(r, COLUMN_KEYS.index("certificate_number")).data() for r in range(model.rowCount())]
    assert numbers == sorted(numbers, reverse=True)
    assert numbers[0] == "EC-00449"


def test_rows_show_the_query_rows(qtbot, db, company_id, runner) -> None:
    seed_certificates(db, company_id, 60)
    model = CertificateTableModel(db, runner)
    query = CertificateQuery(company_id=company_id, as_of=AS_OF, sort="id")
    wait_query(qtbot, model, query)
    model.fetchMore()
    with db.reader() as s:
        expected_counts = count_by_status(s, query)
    seen: dict[Status, int] = {}
    for r in range(model.rowCount()):
        status = Status(model.index(r, COLUMN_KEYS.index("status")).data(STATUS_ROLE))
        assert model.index(r, COLUMN_KEYS.index("status")).data() == status.label
        seen[status] = seen.get(status, 0) + 1
    assert seen == {k: v for k, v in expected_counts.items() if v}
    assert len(seen) >= 4  # the seed covers several statuses
    assert model.columnCount() == len(COLUMNS)
    assert model.headerData(0, Qt.Orientation.Horizontal) == "Customer"
    days = model.index(1, COLUMN_KEYS.index("days_left"))
    assert int(days.data(Qt.ItemDataRole.TextAlignmentRole)) & int(Qt.AlignmentFlag.AlignRight)


def test_filtering_runs_in_sql(qtbot, db, company_id, runner) -> None:
    seed_certificates(db, company_id, 120)
    model = CertificateTableModel(db, runner)
    base = CertificateQuery(company_id=company_id, as_of=AS_OF)
    for q in (CertificateQuery(company_id=company_id, as_of=AS_OF, states=("NY",)),
              CertificateQuery(company_id=company_id, as_of=AS_OF, statuses=(Status.EXPIRED,)),
              CertificateQuery(company_id=company_id, as_of=AS_OF, text="buyer 07"),
              CertificateQuery(company_id=company_id, as_of=AS_OF, text="EC-0011"),
              CertificateQuery(company_id=company_id, as_of=AS_OF, form_code="FL-DR-13"),
              CertificateQuery(company_id=company_id, as_of=AS_OF, expiring_within_days=200)):
        wait_query(qtbot, model, q)
        while model.canFetchMore():
            model.fetchMore()
        with db.reader() as s:
            expected = matching_ids(s, q)
            everything = matching_ids(s, base)
        shown = [model.index(r, 0).data(CERT_ID_ROLE) for r in range(model.rowCount())]
        assert shown == expected
        assert 0 < len(shown) < len(everything), q
    wait_query(qtbot, model, CertificateQuery(company_id=company_id, as_of=AS_OF, states=("NY",)))
    model.fetchMore()
    assert {model.index(r, COLUMN_KEYS.index("states")).data() for r in range(model.rowCount())} == {"NY"}


def test_grid_does_not_issue_a_query_per_row(qtbot, db, company_id, runner) -> None:
    seed_certificates(db, company_id, 600)
    model = CertificateTableModel(db, None, batch_size=200)  # synchronous: every statement is counted here
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        model.set_query(CertificateQuery(company_id=company_id, as_of=AS_OF))
        assert len(statements) == 1  # matching_ids
        while model.canFetchMore():
            model.fetchMore()
        for r in range(model.rowCount()):  # reading every cell issues no statement
            for c in range(model.columnCount()):
                model.index(r, c).data()
                model.index(r, c).data(Qt.ItemDataRole.ToolTipRole)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert model.rowCount() == 600
    assert len(statements) == 1 + 3 * 2  # 3 batches of 200, two statements each


def test_a_stale_query_result_is_ignored(qtbot, db, company_id, runner) -> None:
    seed_certificates(db, company_id, 30)
    model = CertificateTableModel(db, runner)
    model.set_query(CertificateQuery(company_id=company_id, as_of=AS_OF))
    with qtbot.waitSignal(model.query_finished, timeout=10000) as blocker:
        model.set_query(CertificateQuery(company_id=company_id, as_of=AS_OF, states=("TX",)))
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)  # the first result arrived too, and was dropped
    assert blocker.args == [5]
    assert model.total == 5


def test_reload_rows_after_a_change(qtbot, db, company_id, runner) -> None:
    ids = seed_certificates(db, company_id, 12)
    model = CertificateTableModel(db, runner)
    wait_query(qtbot, model, CertificateQuery(company_id=company_id, as_of=AS_OF, sort="id"))
    model.fetchMore()
    from ecms_desktop.services.certificates.service import CertificateService

    svc = CertificateService(db)
    detail = svc.get(ids[1], AS_OF)
    svc.archive(ids[1], "Customer closed", expected_version=detail.version, as_of=AS_OF)
    with qtbot.waitSignal(model.dataChanged, timeout=2000):
        model.reload_rows([ids[1]])
    assert model.index(1, COLUMN_KEYS.index("status")).data(STATUS_ROLE) == Status.ARCHIVED.value
    assert model.data(QModelIndex()) is None
