"""Settings: the database in use, the expiring-soon window (a business setting in the database,
audited) and the companies' profiles. Per-user look (theme) is kept in QSettings.

Nothing is written until OK; the save runs through the task runner and the dialog closes when it
has succeeded (an error is shown and the dialog stays open).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.company_service import CompanyInfo, CompanyService
from ecms_desktop.services.database import Database
from ecms_desktop.views.error_presenter import present_error
from ecms_desktop.views.task_runner import TaskRunner

THEME_KEY = "ui/theme"


class SettingsDialog(QDialog):
    """Edit settings on a copy; ``saved`` is emitted after OK has stored them."""

    saved = Signal()
    #: The user asked to open another database (the main window handles it).
    open_database_requested = Signal()

    def __init__(self, db: Database, runner: TaskRunner, settings: QSettings, *, company_id: int | None,
                 companies: list[CompanyInfo], expiring_soon_days: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumSize(620, 440)
        self.db, self.runner, self.qsettings = db, runner, settings
        self.company_id = company_id
        self.companies = companies
        self._initial_days = expiring_soon_days
        self._new_company: dict[str, object] | None = None

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._database_tab(), "Database")
        self.tabs.addTab(self._review_tab(expiring_soon_days), "Review")
        self.tabs.addTab(self._companies_tab(), "Companies")

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self._on_ok_clicked)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.buttons)

    # -- tabs

    def _database_tab(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        self.url_label = QLabel(self.db.display_url, page)
        self.url_label.setObjectName("databaseUrl")
        self.url_label.setWordWrap(True)
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Database in use:", self.url_label)
        kind = "Shared PostgreSQL database" if self.db.dialect == "postgresql" else "Local database file"
        form.addRow("Kind:", QLabel(kind, page))
        other = QPushButton("Open another database…", page)
        other.setObjectName("openOtherDatabase")
        other.clicked.connect(self._on_open_other_clicked)
        form.addRow("", other)
        note = QLabel("The password of a shared database is never shown or stored in a plain file.", page)
        note.setWordWrap(True)
        note.setEnabled(False)
        form.addRow("", note)
        return page

    def _review_tab(self, days: int) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        self.expiring_spin = QSpinBox(page)
        self.expiring_spin.setObjectName("expiringSoonDays")
        self.expiring_spin.setRange(1, 365)
        self.expiring_spin.setSuffix(" days")
        self.expiring_spin.setValue(days)
        company = next((c.name for c in self.companies if c.id == self.company_id), None)
        scope = f"for {company}" if company else "for all companies"
        form.addRow("Expiring soon window:", self.expiring_spin)
        hint = QLabel(f"A certificate shows as “Expiring soon” this many days before it expires ({scope}). "
                      "Shared with everyone using this database; the change is recorded in the audit trail.",
                      page)
        hint.setWordWrap(True)
        form.addRow("", hint)
        self.theme_combo = QComboBox(page)
        self.theme_combo.setObjectName("theme")
        for label, value in (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark")):
            self.theme_combo.addItem(label, value)
        current = str(self.qsettings.value(THEME_KEY, "system"))
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(current)))
        form.addRow("Appearance (this computer):", self.theme_combo)
        return page

    def _companies_tab(self) -> QWidget:
        page = QWidget(self)
        layout = QHBoxLayout(page)
        left = QVBoxLayout()
        self.company_list = QListWidget(page)
        self.company_list.setObjectName("companyList")
        for c in self.companies:
            item = QListWidgetItem(c.name)
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            self.company_list.addItem(item)
        left.addWidget(self.company_list, 1)
        self.add_company_button = QPushButton("Add company…", page)
        self.add_company_button.setObjectName("addCompany")
        self.add_company_button.clicked.connect(self._on_add_company_clicked)
        left.addWidget(self.add_company_button)
        layout.addLayout(left, 1)

        self.profile = QWidget(page)
        form = QFormLayout(self.profile)
        self.f_name = QLineEdit(self.profile)
        self.f_legal = QLineEdit(self.profile)
        self.f_address = QPlainTextEdit(self.profile)
        self.f_address.setFixedHeight(64)
        self.f_city = QLineEdit(self.profile)
        self.f_state = QLineEdit(self.profile)
        self.f_state.setMaxLength(2)
        self.f_state.setFixedWidth(48)
        self.f_zip = QLineEdit(self.profile)
        self.f_reply = QLineEdit(self.profile)
        self.f_regs = QLineEdit(self.profile)
        self.f_regs.setPlaceholderText("TX=32012345678, CA=SR-123-456789")
        self.f_colour = QLabel(self.profile)
        self.f_logo = QLabel(self.profile)
        for name, widget in (("companyName", self.f_name), ("companyLegalName", self.f_legal),
                             ("companyAddress", self.f_address), ("companyCity", self.f_city),
                             ("companyState", self.f_state), ("companyZip", self.f_zip),
                             ("companyReplyTo", self.f_reply), ("companyRegistrations", self.f_regs)):
            widget.setObjectName(name)
        form.addRow("Name:", self.f_name)
        form.addRow("Legal name:", self.f_legal)
        form.addRow("Address:", self.f_address)
        form.addRow("City:", self.f_city)
        state_row = QHBoxLayout()
        state_row.addWidget(self.f_state)
        state_row.addWidget(QLabel("ZIP:", self.profile))
        state_row.addWidget(self.f_zip, 1)
        form.addRow("State:", state_row)
        form.addRow("Reply-to e-mail:", self.f_reply)
        form.addRow("Registrations:", self.f_regs)
        form.addRow("Brand colour:", self.f_colour)
        form.addRow("Logo:", self.f_logo)
        self.profile_note = QLabel(self.profile)
        self.profile_note.setWordWrap(True)
        self.profile_note.setEnabled(False)
        form.addRow("", self.profile_note)
        layout.addWidget(self.profile, 2)
        self.company_list.currentRowChanged.connect(self._on_company_list_row_changed)
        if self.companies:
            row = next((i for i, c in enumerate(self.companies) if c.id == self.company_id), 0)
            self.company_list.setCurrentRow(row)
        else:
            self._show_company(None)
        return page

    def _show_company(self, company: CompanyInfo | None) -> None:
        editable = company is None and self._new_company is not None
        c = company
        self.f_name.setText(c.name if c else "")
        self.f_legal.setText(c.legal_name if c else "")
        lines = (c.address.splitlines() if c else [])
        self.f_address.setPlainText(lines[0] if lines else "")
        self.f_city.setText("")
        self.f_state.setText(c.state if c else "")
        self.f_zip.setText("")
        if c and len(lines) > 1:
            self.f_address.setPlainText("\n".join(lines))
        self.f_reply.setText(c.reply_to_email if c else "")
        self.f_regs.setText(", ".join(f"{k}={v}" for k, v in sorted(c.registrations.items())) if c else "")
        colour = c.brand_color if c else "#1F4E79"
        self.f_colour.setText(f"<span style='background:{colour};color:{_text_on(colour)}'>&nbsp;{colour}&nbsp;</span>")
        self.f_logo.setText(("a logo is stored" if c.has_logo else "no logo") if c else "")
        for w in (self.f_name, self.f_legal, self.f_city, self.f_state, self.f_zip, self.f_reply, self.f_regs):
            w.setReadOnly(not editable)
        self.f_address.setReadOnly(not editable)
        self.f_city.setVisible(True)
        self.profile_note.setText(
            "Enter the new company's details; it is created when you press OK." if editable else
            "Company profiles are shown here; changing an existing profile (and its brand colour and logo) "
            "is not available in this version yet." if c else "There is no company yet: add one.")

    def _on_company_list_row_changed(self, row: int) -> None:
        if 0 <= row < len(self.companies):
            self._new_company = None
            self._show_company(self.companies[row])

    def _on_add_company_clicked(self) -> None:
        self._new_company = {}
        self.company_list.clearSelection()
        self.company_list.setCurrentRow(-1)
        self._show_company(None)
        self.f_name.setFocus()

    def _on_open_other_clicked(self) -> None:
        self.open_database_requested.emit()
        self.reject()

    # -- saving

    def _new_company_fields(self) -> dict[str, object] | None:
        if self._new_company is None:
            return None
        regs: dict[str, str] = {}
        for part in self.f_regs.text().split(","):
            if "=" in part:
                st, num = part.split("=", 1)
                if st.strip() and num.strip():
                    regs[st.strip().upper()] = num.strip()
        return {"name": self.f_name.text().strip(), "legal_name": self.f_legal.text().strip(),
                "address_line1": self.f_address.toPlainText().strip(), "city": self.f_city.text().strip(),
                "state": self.f_state.text().strip(), "postal_code": self.f_zip.text().strip(),
                "reply_to_email": self.f_reply.text().strip(), "registrations": regs}

    def _on_ok_clicked(self) -> None:
        self.qsettings.setValue(THEME_KEY, self.theme_combo.currentData())
        days = self.expiring_spin.value()
        new_company = self._new_company_fields()
        db, company_id = self.db, self.company_id
        change_days = days != self._initial_days

        def work(_progress: Callable[[int, int, str], None], _cancel: Callable[[], bool]) -> None:
            service = CompanyService(db)
            if new_company is not None:
                service.create(**new_company)  # type: ignore[arg-type]
            if change_days:
                service.set_setting("expiring_soon_days", days, company_id)

        self.buttons.setEnabled(False)
        self.runner.run(work, on_done=self._on_saved, on_error=self._on_save_failed, title="Saving settings",
                        parent=self)

    def _on_saved(self, _result: object) -> None:
        self.buttons.setEnabled(True)
        self.saved.emit()
        self.accept()

    def _on_save_failed(self, error: BaseException) -> None:
        self.buttons.setEnabled(True)
        present_error(self, error)


def _text_on(colour: str) -> str:
    return "#000000" if QColor(colour).lightness() > 140 else "#FFFFFF"
