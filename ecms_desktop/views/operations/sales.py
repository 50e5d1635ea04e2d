"""Sales in the desk: importing the ERP's invoice lines, the exposure report, the sales behind a row of
it, and the report as an Excel workbook."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.determination_run import RunSummary
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exposure import ExposureLine, ExposureReport
from ecms_desktop.services.sales.exposure_workbook import write_exposure_xlsx
from ecms_desktop.services.sales.transaction_import import TransactionImporter, TransactionImportResult
from ecms_desktop.views.operations import Operation


def import_invoice_lines(db: Database, path: Path, *, company_id: int) -> Operation[TransactionImportResult]:
    """Import the ERP's invoice lines from a CSV or XLSX file, as ``ecms transactions import`` does: every
    row is checked first; a bad row anywhere, or Cancel, keeps nothing."""
    return Operation(lambda progress, cancel: TransactionImporter(db).import_file(
        path, company_id=company_id, progress=progress, cancel=cancel), title=f"Importing {path.name}")


def load_exposure(db: Database, company_id: int, date_from: dt.date, date_to: dt.date, *,
                  state: str | None) -> Operation[ExposureReport]:
    """The exposure report of a company over a date range (optionally one state)."""
    return Operation(lambda _p, _c: DeterminationService(db).exposure(company_id, date_from, date_to, state=state),
                     title="Computing exposure")


def decide_sales(db: Database, company_id: int, date_from: dt.date, date_to: dt.date) -> Operation[RunSummary]:
    """Decide which certificate covers each imported sale of the range not decided yet (as ``ecms
    determine`` does), with progress and Cancel."""
    return Operation(lambda progress, cancel: DeterminationService(db).run(
        company_id, date_from=date_from, date_to=date_to, progress=progress, cancel=cancel), title="Deciding sales")


def load_exposure_lines(db: Database, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str,
                        period: str, customer_number: str) -> Operation[tuple[ExposureLine, ...]]:
    """The sales behind one row of the exposure report, each with its explanation."""
    return Operation(lambda _p, _c: DeterminationService(db).exposure_lines(
        company_id, date_from, date_to, state=state, period=period, customer_number=customer_number),
        title="Reading the sales")


def export_exposure(report: ExposureReport, path: Path) -> Operation[Path]:
    """The exposure report as an Excel workbook at ``path`` (written whole or not at all)."""

    def work(_p: object, _c: object) -> Path:
        write_exposure_xlsx(report, path)
        return path

    return Operation(work, title=f"Writing {path.name}")
