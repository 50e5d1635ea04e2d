"""The findings panel and the permit-check status widget."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from ecms_desktop.services.validation.engine import Finding
from ecms_desktop.services.validation.permit_service import LookupLink, PermitCheckInfo
from ecms_desktop.views.certificates.findings_panel import FindingsPanel, FindingsTableModel, PermitCheckStatusWidget

FINDINGS = [
    Finding("permit.format", "error", "TX", "purchaser_tax_id",
            "1234 does not match the Texas sales and use tax permit number format: 11 digits.", "34 TAC", "high"),
    Finding("purchaser.name_mismatch", "warning", "", "purchaser_name",
            "The purchaser name 'Gulf Coast' does not match the customer's legal name.", "", ""),
    Finding("permit.check_stale", "info", "TX", "purchaser_tax_id", "The last permit check is old.", "", ""),
]


def test_model_passes_the_tester(qtbot):
    model = FindingsTableModel(field_labels={"purchaser_tax_id": "Permit number"})
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_findings(FINDINGS)
    assert model.rowCount() == 3 and model.columnCount() == 4
    assert model.data(model.index(0, 0)) == "Error"
    assert model.data(model.index(0, 2)) == "Permit number"
    assert model.data(model.index(1, 1)) == "All"
    assert not model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole).isNull()
    assert "Source: 34 TAC" in model.data(model.index(0, 3), Qt.ItemDataRole.ToolTipRole)
    model.set_findings([])
    assert model.rowCount() == 0


def test_click_emits_field_and_state_and_errors_block_acknowledgement(qtbot):
    panel = FindingsPanel()
    qtbot.addWidget(panel)
    panel.set_findings(FINDINGS, checked_on=dt.date(2026, 11, 20), rules_version="2026.11.1")
    assert panel.has_errors
    assert "1 error, 1 warning, 1 note" in panel.summary.text() and "blocked" in panel.summary.text()
    assert not panel.acknowledge_button.isEnabled()
    rect = panel.table.visualRect(panel.model.index(0, 3))
    with qtbot.waitSignal(panel.field_activated) as blocker:
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["purchaser_tax_id", "TX"]


def test_acknowledge_warnings(qtbot, tmp_path):
    panel = FindingsPanel()
    qtbot.addWidget(panel)
    panel.set_findings(FINDINGS[1:])
    assert not panel.has_errors and panel.acknowledge_button.isEnabled()
    assert "acknowledgement" in panel.summary.text()
    with qtbot.waitSignal(panel.acknowledge_requested):
        qtbot.mouseClick(panel.acknowledge_button, Qt.MouseButton.LeftButton)
    panel.set_findings(FINDINGS[1:], acknowledged=("pat", dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)))
    assert not panel.acknowledge_button.isEnabled()
    assert "acknowledged by pat on 2026-11-20 09:30" in panel.acknowledged_label.text()
    panel.set_findings([])
    assert "No findings" in panel.summary.text()
    panel.set_findings(FINDINGS)
    panel.resize(900, 260)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.grab().save(str(tmp_path / "findings.png"))


def _check(**kw) -> PermitCheckInfo:
    base = dict(id=1, certificate_id=7, state="TX", number_checked="32012345678", method="manual",
                source="https://mycpa.cpa.state.tx.us/staxpayersearch/", result="active", name_on_record="",
                message="", checked_at=dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC), checked_by="pat",
                as_of=dt.date(2026, 11, 2), snapshot_id=None, evidence_document_id=42, evidence_sha256="ab" * 32)
    base.update(kw)
    return PermitCheckInfo(**base)


def test_permit_status_widget(qtbot):
    widget = PermitCheckStatusWidget()
    qtbot.addWidget(widget)
    link = LookupLink("NY", "https://www.tax.ny.gov/", "NY lookup", "12-3456789")
    widget.set_checks(["TX", "NY", "FL"], {"TX": _check(), "FL": _check(state="FL", result="inactive",
                                                                      evidence_document_id=None, method="registry",
                                                                      as_of=dt.date(2025, 1, 1))},
                      as_of=dt.date(2026, 11, 20), max_age_days=365, links={"NY": link})
    tx = widget.rows["TX"].text()
    assert "Active" in tx and "2026-11-02" in tx and "pat" in tx and "Evidence attached" in tx
    assert "not checked yet" in widget.rows["NY"].text() and "https://www.tax.ny.gov/" in widget.rows["NY"].text()
    fl = widget.rows["FL"].text()
    assert "NOT active" in fl and "Older than 365 days" in fl
    button = widget.findChild(type(widget.rows["TX"]).__mro__[0], "permitStatusTX")
    assert button is widget.rows["TX"]
    from PySide6.QtWidgets import QPushButton

    evidence = widget.findChild(QPushButton, "permitEvidenceTX")
    with qtbot.waitSignal(widget.evidence_requested) as blocker:
        qtbot.mouseClick(evidence, Qt.MouseButton.LeftButton)
    assert blocker.args == [42]
    assert widget.findChild(QPushButton, "permitEvidenceFL") is None
    with qtbot.waitSignal(widget.check_requested) as blocker:
        qtbot.mouseClick(widget.findChild(QPushButton, "permitCheckNY"), Qt.MouseButton.LeftButton)
    assert blocker.args == ["NY"]
    widget.set_checks(["TX"], {}, as_of=dt.date(2026, 11, 20), max_age_days=365)
    assert list(widget.rows) == ["TX"]


def test_findings_on_the_forms_own_fields_are_named_as_the_form_names_them(qtbot):
    """Seen in the review queue: a document for another form was listed under the field "form code"."""
    from ecms_desktop.rules.loader import load_rules_pack
    from ecms_desktop.services.validation.engine import ValidationEngine
    from ecms_desktop.views.certificates.findings_panel import field_labels

    model = FindingsTableModel(field_labels=field_labels(ValidationEngine(load_rules_pack()).label))
    model.set_findings([Finding("document.form_differs", "error", "", "form_code", "The document is another form.",
                                "", ""),
                        Finding("document.state_differs", "error", "", "states", "The document is for TX.", "", "")])
    assert [model.data(model.index(r, 2)) for r in range(2)] == ["Form", "States"]
