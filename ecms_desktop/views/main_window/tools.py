"""The other windows the desk opens: the renewal center, the exposure report, reprocessing, the audit
pack and the settings (one window of each kind at a time)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QWidget

from ecms_desktop.services.audit_pack.service import AuditPackService, PackChoices
from ecms_desktop.services.renewals.service import RenewalService
from ecms_desktop.views.audit_pack_dialog import AuditPackDialog
from ecms_desktop.views.exposure_view import ExposureView
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import audit_pack
from ecms_desktop.views.renewal_center import RenewalCenterDialog
from ecms_desktop.views.reprocess_dialog import ReprocessDialog
from ecms_desktop.views.settings_dialog import SettingsDialog


class ToolsMixin(DeskWindow):
    """Opening the other features' windows."""

    def _show_tool(self, key: str, widget: QWidget) -> None:
        old = self.tools.get(key)
        if old is not None:
            try:
                old.close()
                old.deleteLater()
            except RuntimeError:  # already deleted by Qt
                pass
        self.tools[key] = widget
        widget.show()
        widget.raise_()
        self.tool_opened.emit(widget)

    def open_renewal_center(self) -> None:
        """Renewals > Renewal center: the plan as of the desk's date, previews, sending."""
        if self.db is None or self.company_id is None:
            return
        dialog = RenewalCenterDialog(RenewalService(self.db, self.rules), self.company_id, self.as_of,
                                     runner=self.runner, parent=self)
        dialog.setObjectName("renewalCenter")
        dialog.batch_sent.connect(lambda _r: self.refresh())
        self._show_tool("renewals", dialog)

    def open_exposure_report(self) -> None:
        """Transactions > Exposure report, for the year to the desk's date."""
        if self.db is None or self.company_id is None:
            return
        view = ExposureView(self.db, self.company_id, runner=self.runner,
                            date_from=self.as_of.replace(month=1, day=1), date_to=self.as_of, parent=self)
        view.setObjectName("exposureView")
        view.setWindowFlag(Qt.WindowType.Window, True)
        view.setWindowTitle("Exposure report")
        view.resize(1100, 720)
        self._show_tool("exposure", view)
        view.refresh()

    def open_reprocess_dialog(self) -> None:
        """Transactions > Reprocess certificate: the selected certificate over a date range."""
        detail = self.current_detail
        if self.db is None or detail is None:
            return
        dialog = ReprocessDialog(self.db, detail.id, as_of=self.as_of, runner=self.runner,
                                 date_from=self.as_of.replace(month=1, day=1), date_to=self.as_of, parent=self)
        dialog.setObjectName("reprocessDialog")
        dialog.reprocessed.connect(lambda _r: self.refresh())
        self._show_tool("reprocess", dialog)

    def open_audit_pack_dialog(self) -> None:
        """File > Audit pack: the choices are read off the GUI thread, then the dialog opens."""
        db, rules = self.db, self.rules
        if db is None:
            return
        service = AuditPackService(db, rules)
        audit_pack.read_pack_choices(service).success(lambda choices: self._open_audit_pack(service, choices)) \
            .failure(self._on_background_error).run(self.runner)

    def _open_audit_pack(self, service: AuditPackService, choices: PackChoices) -> None:
        folder = self.settings.value("dirs/audit_pack")
        dialog = AuditPackDialog(service, self.runner, today=self.as_of, parent=self, choices=choices,
                                 default_folder=Path(str(folder)) if folder else None)
        dialog.setObjectName("auditPackDialog")
        index = dialog.company.findData(self.company_id)
        if index >= 0:
            dialog.company.setCurrentIndex(index)
        self._show_tool("audit_pack", dialog)

    def open_settings(self) -> None:
        if self.db is None:
            return
        dialog = SettingsDialog(self.db, self.runner, self.settings, company_id=self.company_id,
                                companies=self.companies, expiring_soon_days=self.window_days, as_of=self.as_of,
                                parent=self)
        dialog.rules_changed.connect(lambda _change: self.use_rules_in_force())
        dialog.saved.connect(lambda: self.leave_form(lambda: self.set_database(self.db)))
        dialog.open_database_requested.connect(lambda: QTimer.singleShot(0, self.open_database_dialog))
        self.settings_dialog = dialog
        dialog.open()
