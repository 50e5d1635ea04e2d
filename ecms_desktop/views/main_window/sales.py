"""Sales at the desk: Transactions > Import invoice lines, the ERP's invoice lines from a CSV or XLSX file,
through the same service as ``ecms transactions import`` (every row checked first; a bad row anywhere, or
Cancel, keeps nothing), with progress and Cancel, and the same row errors in a dialog to copy or save."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.sales.transaction_import import TransactionImportResult
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import sales
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name
from ecms_desktop.views.widgets.problems_dialog import ProblemsDialog


class SalesMixin(DeskWindow):
    """Importing invoice lines."""

    def _build_sales_actions(self) -> None:
        """Transactions > Import invoice lines… (no shortcut)."""
        self.act_import_invoices = QAction("&Import invoice lines…", self)
        self.act_import_invoices.setObjectName("actImportInvoiceLines")
        self.act_import_invoices.setStatusTip("Import the ERP's invoice lines (CSV or XLSX) for the exposure report: "
                                              "every row is checked first, nothing is kept if one is wrong")
        self.act_import_invoices.triggered.connect(lambda _checked=False: self.import_invoice_lines_dialog())
        self.addAction(self.act_import_invoices)
        #: The last import's summary, and the problems of the last refused file (opened when interactive).
        self.invoice_import_report: QMessageBox | None = None
        self.invoice_problems_dialog: ProblemsDialog | None = None
        #: How the last import ended: its TransactionImportResult, or the error that kept everything out
        #: (row problems, Cancelled, ...); None while one runs.
        self.invoice_import_outcome: TransactionImportResult | BaseException | None = None

    def _update_sales_actions(self) -> None:
        self.act_import_invoices.setEnabled(self.db is not None and self.company_id is not None)

    def import_invoice_lines_dialog(self) -> None:
        if self.db is None or self.company_id is None:
            self._on_background_error(ValidationError("Choose or add a company before importing invoice lines."))
            return
        path = get_open_file_name(self, "Import invoice lines", str(self.settings.value("dirs/import", "")),
                                  "Spreadsheets (*.csv *.xlsx)")
        if path:
            self.settings.setValue("dirs/import", str(Path(path).parent))
            self.import_invoice_lines(Path(path))

    def import_invoice_lines(self, path: Path) -> None:
        """Import ``path`` for the company in the desk, off the GUI thread with progress and Cancel."""
        db, company_id = self.db, self.company_id
        if db is None or company_id is None:
            return
        self.invoice_import_outcome = None
        sales.import_invoice_lines(db, path, company_id=company_id) \
            .success(lambda result: self._on_invoice_lines_imported(path, result)) \
            .failure(lambda error: self._on_invoice_import_failed(path, error)).run(self.runner, parent=self)

    def _on_invoice_lines_imported(self, path: Path, result: TransactionImportResult) -> None:
        summary = (f"{path.name}: {result.inserted:,} new invoice lines, {result.updated:,} changed, "
                   f"{result.unchanged:,} already present ({result.rows:,} rows).")
        self.statusBar().showMessage(summary, 15000)
        icon = QMessageBox.Icon.Warning if result.warning else QMessageBox.Icon.Information
        box = QMessageBox(icon, "Invoice lines imported", summary, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("invoiceImportReport")
        if result.warning:  # new lines dated inside filed periods: named in full below the summary
            box.setDetailedText(result.warning)
        box.setInformativeText("Transactions > Exposure report decides the new lines (Decide new sales) and shows "
                               "the sales exempt without a covering certificate and the tax collected on covered "
                               "sales." + (f" {result.determinations_cleared:,} changed lines will be decided again."
                                           if result.determinations_cleared else "")
                           + (f" {len(result.in_filed_periods):,} new lines are dated inside periods already "
                              "filed: they are booked in the current open period, and the filed returns do not "
                              "change (Show Details names them)." if result.warning else ""))
        self.invoice_import_report = box
        if self.interactive:
            box.open()
        self.invoice_import_outcome = result

    def _on_invoice_import_failed(self, path: Path, error: BaseException) -> None:
        self.invoice_import_outcome = error
        if isinstance(error, Cancelled):
            self.statusBar().showMessage(f"Import of {path.name} cancelled: nothing was imported.", 10000)
            return
        if not isinstance(error, ValidationError) or not error.problems:
            self._on_background_error(error)
            return
        dialog = ProblemsDialog("Invoice lines not imported", error.message, error.problems, runner=self.runner,
                                folder=str(path.parent), parent=self)
        dialog.setObjectName("invoiceImportProblems")
        self.invoice_problems_dialog = dialog
        if self.interactive:
            dialog.open()
