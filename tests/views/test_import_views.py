"""Imports at the desk: the form refuses what a database column cannot hold with the import's message
beside the field; File > Import certificates says what validation found and what was held for review."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QSettings, Qt

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.views.certificates.form import CertificateForm
from tests.factories import make_desk_certificate

AS_OF = dt.date(2026, 6, 1)


def test_a_name_longer_than_its_column_is_refused_beside_the_field(qtbot, db, company_id) -> None:  # type: ignore[no-untyped-def]
    """SQLite stored a 301-character purchaser name that PostgreSQL refused with a DataError: both now
    refuse it, and the form shows the same message as the import, beside the field; nothing is saved."""
    rules = load_rules_pack()
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, purchaser_name="Lone Star Hardware LLC",
                                   signed_date=dt.date(2026, 3, 15))
    form = CertificateForm(db, rules)
    form.set_as_of(AS_OF)
    qtbot.addWidget(form)
    form.resize(760, 1100)
    form.show()
    form.load(detail)
    edit = form.builder.editor("purchaser_name")
    edit.clear()
    edit.setText("N" * 301)
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("at most 300 can be stored" in message
                                for _, message in form.findings_shown().get("purchaser_name", [])), timeout=10000)
    form.runner.wait(10000)
    stored = CertificateService(db, rules).get(detail.id, AS_OF)
    assert stored.version == detail.version and stored.data.purchaser_name == "Lone Star Hardware LLC"


def test_the_desks_import_reports_findings_and_certificates_held_for_review(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The window's import (as of the desk's date) says how many certificates have errors and warnings and
    how many asked-for approvals were held for review."""
    from ecms_desktop.views.main_window import MainWindow

    path = tmp_path / "certs.csv"
    path.write_text("customer_number,customer_name,customer_email,state,form,certificate_number,exempt_reason,"
                    "purchaser_tax_id,certificate_type,po_number,signed_date,effective_date,expiry_date,"
                    "review_status,document\n"
                    "C-1,Blue LLC,,TX,SST-F0003,S-1,resale,32098765432,blanket,,2026-03-15,,,,\n"
                    "C-2,Red LLC,,NY,NY-ST-120,N-1,resale,,blanket,,2026-03-15,,,pending,\n", encoding="utf-8")
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.set_database(db)
    try:
        window.interactive = False  # the report is kept, not opened
        window.import_certificates(path)
        qtbot.waitUntil(lambda: window.import_report is not None, timeout=30000)
        assert window.import_report.text() == (
            "certs.csv: 2 certificates imported (2 with errors, 0 with warnings); 1 held for review because of "
            "their findings.")
        assert "review queue" in window.import_report.informativeText()
    finally:
        window.shutdown()
