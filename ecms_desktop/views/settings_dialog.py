"""Settings: the database in use, the expiring-soon window (a business setting in the database,
audited), the company's e-mail (mail server, keyring password, sender, reply-to, test message) and the
companies' profiles. Per-user look (theme) is kept in QSettings.

Company profiles (address, registrations, brand colour, logo) are edited here too.
Nothing is written until OK; the save runs through the task runner and the dialog closes when it
has succeeded (an error is shown and the dialog stays open).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QColor, QPixmap
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
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.companies.service import CompanyInfo, CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import DocumentError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import SETTING_BOUNDS
from ecms_desktop.services.core.user_files import read_user_file
from ecms_desktop.services.documents.shared_sandbox import render_thumbnail
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.views.email_settings import EmailSettingsWidget
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.people_views import PeopleTab, refusal_tip
from ecms_desktop.views.rules_pack_tab import RulesPackTab
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name
from ecms_desktop.views.widgets.images import png_image

THEME_KEY = "ui/theme"
#: Largest logo file read (a logo is a small picture; anything larger is a mistake).
_LOGO_MAX_BYTES = 10 * 1024 * 1024


class SettingsDialog(QDialog):
    """Edit settings on a copy; ``saved`` is emitted after OK has stored them."""

    saved = Signal()
    #: The user asked to open another database (the main window handles it).
    open_database_requested = Signal()
    #: A rules pack was installed or gone back from (at once, not on OK: see the Rules pack tab).
    rules_changed = Signal(object)

    def __init__(self, db: Database, runner: TaskRunner, settings: QSettings, *, company_id: int | None,
                 companies: list[CompanyInfo], expiring_soon_days: int, as_of: dt.date | None = None,
                 parent: QWidget | None = None) -> None:
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
        current = next((c for c in self.companies if c.id == company_id), None)
        self.email_tab = EmailSettingsWidget(EmailService(db), runner, company_id if current else None,
                                             reply_to=current.reply_to_email if current else "",
                                             company_name=current.name if current else "", parent=self)
        self.email_tab.setObjectName("emailSettings")
        self.tabs.addTab(self.email_tab, "E-mail")
        actor = db.actor_box.known
        self.people_tab = PeopleTab(db, runner, actor, self)
        self.tabs.addTab(self.people_tab, "People")
        self.rules_tab = RulesPackTab(db, runner, as_of=as_of or dt.date.today(), parent=self)
        self.rules_tab.rules_changed.connect(self.rules_changed)
        self.tabs.addTab(self.rules_tab, "Rules pack")
        # What only an admin may change is shown, not editable, to others, with the reason.
        why = refusal_tip(actor, Permission.ADMINISTER, "change business settings or the mail server")
        if why:
            for widget in (self.expiring_spin, self.email_tab):
                widget.setEnabled(False)
                widget.setToolTip(why)
        # One reply-to address, shown on two tabs: an edit on either shows on the other.
        self.email_tab.reply_to.textEdited.connect(self._on_email_reply_to_edited)
        self.f_reply.textEdited.connect(self._on_company_reply_to_edited)

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
        low, high, _unit = SETTING_BOUNDS["expiring_soon_days"]
        self.expiring_spin.setRange(low, high)
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
        self.f_address = QLineEdit(self.profile)
        self.f_address.setPlaceholderText("Street and number")
        self.f_city = QLineEdit(self.profile)
        self.f_state = QLineEdit(self.profile)
        self.f_state.setMaxLength(2)
        self.f_state.setFixedWidth(48)
        self.f_zip = QLineEdit(self.profile)
        self.f_reply = QLineEdit(self.profile)
        self.f_reply.setPlaceholderText("Where customers' replies go, e.g. ar@yourcompany.com")
        self.f_regs = QLineEdit(self.profile)
        self.f_regs.setPlaceholderText("TX=32012345678, CA=SR-123-456789")
        self.f_colour = QLineEdit(self.profile)
        self.f_colour.setMaxLength(7)
        self.f_colour.setFixedWidth(90)
        self.f_colour.setPlaceholderText("#RRGGBB")
        self.f_colour.setToolTip("The brand colour of renewal letters and audit-pack covers (#RRGGBB)")
        self.colour_swatch = QLabel(self.profile)
        self.colour_swatch.setObjectName("companyColourSwatch")
        self.colour_swatch.setFixedSize(40, 22)
        self.colour_button = QPushButton("Choose…", self.profile)
        self.colour_button.setObjectName("chooseColour")
        self.colour_button.clicked.connect(self._on_colour_button_clicked)
        self.f_colour.textChanged.connect(self._on_colour_text_changed)
        self.f_logo = QLabel(self.profile)
        self.f_logo.setObjectName("companyLogoPreview")
        self.f_logo.setMinimumHeight(40)
        self.logo_button = QPushButton("Choose logo…", self.profile)
        self.logo_button.setObjectName("chooseLogo")
        self.logo_button.setToolTip("A PNG or JPEG image for the letters' and audit packs' letterhead")
        self.logo_button.clicked.connect(self._on_logo_button_clicked)
        for name, widget in (("companyName", self.f_name), ("companyLegalName", self.f_legal),
                             ("companyAddress", self.f_address), ("companyCity", self.f_city),
                             ("companyState", self.f_state), ("companyZip", self.f_zip),
                             ("companyReplyTo", self.f_reply), ("companyRegistrations", self.f_regs),
                             ("companyColour", self.f_colour)):
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
        colour_row = QHBoxLayout()
        colour_row.addWidget(self.f_colour)
        colour_row.addWidget(self.colour_swatch)
        colour_row.addWidget(self.colour_button)
        colour_row.addStretch(1)
        form.addRow("Brand colour:", colour_row)
        logo_row = QHBoxLayout()
        logo_row.addWidget(self.f_logo, 1)
        logo_row.addWidget(self.logo_button)
        form.addRow("Logo:", logo_row)
        self.profile_note = QLabel(self.profile)
        self.profile_note.setWordWrap(True)
        self.profile_note.setEnabled(False)
        form.addRow("", self.profile_note)
        layout.addWidget(self.profile, 2)
        #: Edited profiles not saved yet, by company id (kept when switching between companies).
        self._edits: dict[int, dict[str, object]] = {}
        self._shown: CompanyInfo | None = None
        self._logo_bytes: bytes | None = None
        self.company_list.currentRowChanged.connect(self._on_company_list_row_changed)
        if self.companies:
            row = next((i for i, c in enumerate(self.companies) if c.id == self.company_id), 0)
            self.company_list.setCurrentRow(row)
        else:
            self._show_company(None)
        return page

    def _show_company(self, company: CompanyInfo | None) -> None:
        c = company
        self._shown = c
        edits = self._edits.get(c.id, {}) if c is not None else {}
        fields: dict[str, object] = self._profile_fields(c) if c is not None else {
            "name": "", "legal_name": "", "address_line1": "", "city": "", "state": "", "postal_code": "",
            "reply_to_email": "", "registrations": {}, "brand_color": "#1F4E79"}
        fields.update(edits)
        self.f_name.setText(str(fields["name"]))
        self.f_legal.setText(str(fields["legal_name"]))
        self.f_address.setText(str(fields["address_line1"]))
        self.f_city.setText(str(fields["city"]))
        self.f_state.setText(str(fields["state"]))
        self.f_zip.setText(str(fields["postal_code"]))
        self.f_reply.setText(str(fields["reply_to_email"]))
        regs = fields["registrations"]
        self.f_regs.setText(", ".join(f"{k}={v}" for k, v in sorted(regs.items()))
                            if isinstance(regs, dict) else str(regs))
        self.f_colour.setText(str(fields["brand_color"]))
        logo = edits.get("logo")
        self._logo_bytes = logo if isinstance(logo, bytes) else None
        if self._logo_bytes is not None:
            self._show_logo(self._logo_bytes)
        else:
            self.f_logo.setPixmap(QPixmap())
            self.f_logo.setText(("A logo is stored." if c.has_logo else "No logo.") if c else "No logo.")
        editable = c is not None or self._new_company is not None
        for w in (self.f_name, self.f_legal, self.f_address, self.f_city, self.f_state, self.f_zip, self.f_reply,
                  self.f_regs, self.f_colour):
            w.setReadOnly(not editable)
        self.colour_button.setEnabled(editable)
        self.logo_button.setEnabled(c is not None)
        self.profile_note.setText(
            "Enter the new company's details; it is created when you press OK." if c is None and editable else
            "Changes are saved when you press OK, and recorded in the audit trail with the values before and "
            "after." if c else "There is no company yet: add one.")

    @staticmethod
    def _profile_fields(c: CompanyInfo) -> dict[str, object]:
        return {"name": c.name, "legal_name": c.legal_name, "address_line1": c.address_line1, "city": c.city,
                "state": c.state, "postal_code": c.postal_code, "reply_to_email": c.reply_to_email,
                "registrations": dict(c.registrations), "brand_color": c.brand_color}

    def _typed_fields(self) -> dict[str, object]:
        regs: dict[str, str] = {}
        for part in self.f_regs.text().split(","):
            if "=" in part:
                st, num = part.split("=", 1)
                if st.strip() and num.strip():
                    regs[st.strip().upper()] = num.strip()
        return {"name": self.f_name.text().strip(), "legal_name": self.f_legal.text().strip(),
                "address_line1": self.f_address.text().strip(), "city": self.f_city.text().strip(),
                "state": self.f_state.text().strip().upper(), "postal_code": self.f_zip.text().strip(),
                "reply_to_email": self.f_reply.text().strip(), "registrations": regs,
                "brand_color": self.f_colour.text().strip()}

    def _remember_edits(self) -> None:
        """Keep what was typed for the company on screen (only the fields that differ)."""
        c = self._shown
        if c is None:
            return
        stored = self._profile_fields(c)
        typed = self._typed_fields()
        changed: dict[str, object] = {k: v for k, v in typed.items()
                                      if v != stored[k] and not (k == "brand_color" and str(v).upper()
                                                                  == str(stored[k]).upper())}
        if self._logo_bytes is not None:
            changed["logo"] = self._logo_bytes
        if changed:
            self._edits[c.id] = changed
        else:
            self._edits.pop(c.id, None)

    def profile_changes(self) -> dict[int, dict[str, object]]:
        """The changed profile fields per company, as OK would save them."""
        self._remember_edits()
        return {cid: dict(v) for cid, v in self._edits.items()}

    def set_logo(self, data: bytes) -> None:
        """Use ``data`` as the shown company's new logo (checked by the service on OK)."""
        self._logo_bytes = data
        self._show_logo(data)

    def _show_logo(self, data: bytes) -> None:
        # The chosen file is decoded by the document worker (time and memory limits), never here.
        try:
            thumb = render_thumbnail(data, max_side=160, filename="The logo", timeout=5.0)
        except DocumentError as exc:
            self.f_logo.setPixmap(QPixmap())
            self.f_logo.setText(f"New logo chosen; it cannot be previewed: {exc}")
            return
        pixmap = QPixmap.fromImage(png_image(thumb.png))
        self.f_logo.setPixmap(pixmap.scaledToHeight(40, Qt.TransformationMode.SmoothTransformation))

    def _on_colour_text_changed(self, text: str) -> None:
        colour = QColor(text.strip())
        valid = len(text.strip()) == 7 and colour.isValid()
        self.colour_swatch.setStyleSheet(f"background: {text.strip()}; border: 1px solid palette(mid);"
                                         if valid else "border: 1px dashed #c62828;")
        self.colour_swatch.setToolTip("" if valid else "Write the colour as #RRGGBB")

    def _on_colour_button_clicked(self) -> None:
        from PySide6.QtWidgets import QColorDialog

        colour = QColorDialog.getColor(QColor(self.f_colour.text().strip() or "#1F4E79"), self, "Brand colour")
        if colour.isValid():
            self.f_colour.setText(colour.name().upper())

    def _on_logo_button_clicked(self) -> None:
        path = get_open_file_name(self, "Company logo", "", "Images (*.png *.jpg *.jpeg)")
        if path:
            try:
                data = read_user_file(Path(path), max_bytes=_LOGO_MAX_BYTES)
            except DocumentError as exc:
                present_error(self, exc)
                return
            self.set_logo(data)

    def _on_company_list_row_changed(self, row: int) -> None:
        if self._new_company is None:
            self._remember_edits()
        if 0 <= row < len(self.companies):
            self._new_company = None
            self._show_company(self.companies[row])

    def _on_add_company_clicked(self) -> None:
        self._remember_edits()
        self._new_company = {}
        self.company_list.blockSignals(True)
        self.company_list.clearSelection()
        self.company_list.setCurrentRow(-1)
        self.company_list.blockSignals(False)
        self._show_company(None)
        self.f_name.setFocus()

    def _on_email_reply_to_edited(self, text: str) -> None:
        if self._shown is not None and self._shown.id == self.company_id and self._new_company is None:
            self.f_reply.setText(text)
        elif self.company_id is not None:
            self._edits.setdefault(self.company_id, {})["reply_to_email"] = text.strip()

    def _on_company_reply_to_edited(self, text: str) -> None:
        if self._shown is not None and self._shown.id == self.company_id and self._new_company is None:
            self.email_tab.reply_to.setText(text)

    def _on_open_other_clicked(self) -> None:
        self.open_database_requested.emit()
        self.reject()

    # -- saving

    def _new_company_fields(self) -> dict[str, object] | None:
        if self._new_company is None:
            return None
        fields = self._typed_fields()
        fields.pop("brand_color")
        return fields

    def _on_ok_clicked(self) -> None:
        self.qsettings.setValue(THEME_KEY, self.theme_combo.currentData())
        days = self.expiring_spin.value()
        new_company = self._new_company_fields()
        changes = self.profile_changes() if new_company is None else {
            cid: dict(v) for cid, v in self._edits.items()}
        db, company_id = self.db, self.company_id
        change_days = days != self._initial_days
        smtp = self.email_tab.pending_change()

        def work(_progress: Progress, _cancel: CancelCheck) -> None:
            if smtp is not None and company_id is not None:  # first: its mistakes are the likeliest
                smtp.save(EmailService(db), company_id)
            service = CompanyService(db)
            for cid, fields in changes.items():
                service.update(cid, **fields)  # type: ignore[arg-type]
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
