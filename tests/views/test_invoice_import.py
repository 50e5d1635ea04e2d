"""Transactions > Import invoice lines: the same service and the same row errors as ``ecms transactions
import``, the problems to copy or save, progress and Cancel (a cancelled import keeps nothing)."""

from __future__ import annotations

import csv
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QApplication
from sqlalchemy import func, select

from ecms_desktop.cli import main
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.sales.transaction_import import TransactionImportResult
from ecms_desktop.views.main_window import MainWindow
from tests.factories import write_sales_csv

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def window(qtbot, db, company_id, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    w = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat),
                   interactive=False)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignals([w.grid_ready, w.counts_updated], timeout=15000):
        w.set_database(db)
    yield w
    w.shutdown()


def _lines(db) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return int(s.execute(select(func.count()).select_from(TransactionLine)).scalar_one())


def test_the_menu_imports_invoice_lines(qtbot, window, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tx_menu = next(m for m in window.menus if m.title().replace("&", "") == "Transactions")
    assert window.act_import_invoices in tx_menu.actions() and window.act_import_invoices.isEnabled()
    assert window.act_import_invoices.shortcut().isEmpty()
    path = write_sales_csv(tmp_path, "A1,1,2026-02-10,C-1,TX,100,0,yes", "A2,1,2026-03-10,C-2,TX,40,0,yes")
    window.import_invoice_lines(path)
    qtbot.waitUntil(lambda: window.invoice_import_outcome is not None, timeout=20000)
    assert isinstance(window.invoice_import_outcome, TransactionImportResult)
    assert window.invoice_import_outcome.inserted == 2 and _lines(db) == 2
    assert window.invoice_import_report is not None
    assert window.invoice_import_report.text() == ("sales.csv: 2 new invoice lines, 0 changed, 0 already present "
                                                  "(2 rows).")


def test_row_errors_are_the_clis_and_can_be_copied_and_saved(qtbot, window, db, db_url, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            capsys) -> None:
    bad = write_sales_csv(tmp_path, "B1,1,2026-02-30,C-1,TX,100,0,yes", "B2,1,2026-02-11,C-1,TX,abc,0,yes",
                          "B3,1,2026-02-12,C-1,TX,5,0,yes", name="bad.csv")
    window.import_invoice_lines(bad)
    qtbot.waitUntil(lambda: window.invoice_import_outcome is not None, timeout=20000)
    error = window.invoice_import_outcome
    assert isinstance(error, ValidationError) and _lines(db) == 0
    dialog = window.invoice_problems_dialog
    assert dialog is not None and "nothing was imported" in dialog.message.text()
    QAbstractItemModelTester(dialog.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    shown = [[dialog.model.index(r, c).data() for c in range(4)] for r in range(dialog.model.rowCount())]
    assert [row[:3] for row in shown] == [["bad.csv", "2", "invoice_date"], ["bad.csv", "3", "amount"]]
    # the same problems, word for word, as the command line prints
    assert main(["--db", db_url, "transactions", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    for file, row, column, message in shown:
        assert f"{file}, row {row}, column '{column}': {message}" in err

    dialog.copy_button.click()
    copied = QApplication.clipboard().text().splitlines()
    assert copied[0] == "File\tRow\tColumn\tWhat is wrong"
    assert copied[1:] == ["\t".join(row) for row in shown]

    with qtbot.waitSignal(dialog.saved, timeout=10000) as saved:
        dialog.save_to(tmp_path / "problems")
    path = saved.args[0]
    assert path == tmp_path / "problems.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["File", "Row", "Column", "What is wrong"], *shown]


def test_a_cancelled_import_keeps_nothing(qtbot, window, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The import waits behind other work; Cancel is pressed before it starts: the service stops at its
    first check and nothing is stored."""
    path = write_sales_csv(tmp_path, *(f"C{i},1,2026-02-10,C-1,TX,100,0,yes" for i in range(50)))
    release = threading.Event()
    window.runner.pool.setMaxThreadCount(1)
    window.runner.run(lambda _p, _c: release.wait(20), show_progress=False)
    window.import_invoice_lines(path)
    window.runner.cancel_all()
    release.set()
    qtbot.waitUntil(lambda: window.invoice_import_outcome is not None, timeout=20000)
    assert isinstance(window.invoice_import_outcome, Cancelled) and _lines(db) == 0
    assert "nothing was imported" in window.statusBar().currentMessage()


def test_the_report_warns_of_new_lines_in_filed_periods(qtbot, window, db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A filed return never changes silently: the import names the new lines dated inside it (as the CLI)."""
    from PySide6.QtWidgets import QMessageBox

    from ecms_desktop.services.sales.periods import PeriodService

    PeriodService(db).file(company_id, "TX", "2026-02")
    path = write_sales_csv(tmp_path, "L1,1,2026-02-10,C-1,TX,100,0,yes", "L2,1,2026-03-10,C-2,TX,40,0,yes")
    window.import_invoice_lines(path)
    qtbot.waitUntil(lambda: window.invoice_import_outcome is not None, timeout=20000)
    box = window.invoice_import_report
    assert box is not None and box.icon() == QMessageBox.Icon.Warning
    assert "1 new lines are dated inside periods already filed" in box.informativeText()
    assert "TX 2026-02: invoice L1 line 1 (2026-02-10)" in box.detailedText()
    assert "L2" not in box.detailedText()
