"""A permit registry file is read like every other import: Windows-1252 text, the first visible sheet,
no named pipe (it used to read the header with a reader of its own)."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest

from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.validation.permit_service import TEXAS_ACTIVE_PERMITS_COLUMNS, PermitService

#: The Texas layout's header (its column keys read as themselves).
TX_HEADERS = list(TEXAS_ACTIVE_PERMITS_COLUMNS)

ROW = ["32012345678", "CAF\u00c9 LONE STAR LLC", "1 Elm St", "AUSTIN", "TX", "78701", "227", "CL", "00001",
       "CAF\u00c9 LONE STAR LLC", "1 Elm St", "AUSTIN", "TX", "78701", "227", "444130", "Y", "01/15/2019", "01/15/2019"]


def test_a_windows_1252_registry_file_is_read(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "permits.csv"
    path.write_bytes((",".join(TX_HEADERS) + "\r\n" + ",".join(ROW) + "\r\n").encode("cp1252"))
    snap = PermitService(db).import_registry(path, "TX", data_date=dt.date(2026, 11, 1))
    assert snap.row_count == 1


def test_a_registry_workbook_is_read_from_its_first_visible_sheet(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "notes"
    wb.active.sheet_state = "hidden"
    wb.active.append(["not", "the", "registry"])
    ws = wb.create_sheet("permits")
    ws.append(list(TX_HEADERS))
    ws.append(ROW)
    wb.active = 1
    wb.save(tmp_path / "permits.xlsx")
    assert PermitService(db).import_registry(tmp_path / "permits.xlsx", "TX",
                                             data_date=dt.date(2026, 11, 1)).row_count == 1


def test_a_named_pipe_as_registry_file_is_refused_without_blocking(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "permits.csv"
    os.mkfifo(path)

    def unblock() -> None:  # only ever needed by code that blocks on the pipe: then it reads nothing
        with open(path, "wb"):
            pass

    watchdog = threading.Timer(20, unblock)
    watchdog.daemon = True
    watchdog.start()
    try:
        with pytest.raises(ValidationError, match="named pipe"):
            PermitService(db).import_registry(path, "TX", data_date=dt.date(2026, 11, 1))
    finally:
        watchdog.cancel()
