"""The filter bar above the grid: free text (debounced), state, status, expiring within N days, form,
what the checks left to do (validation errors, warnings to acknowledge, permit not checked), whose they are
(all, "Mine": claimed by the person acting, "Unclaimed": pending and nobody's), and the
"Work lists" button whose menu (views/certificates/work_lists.py) applies quick and saved filters."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QWidget,
)

from ecms_desktop.models import Status
from ecms_desktop.services.certificates.query import CheckFilter, ClaimFilter
from ecms_desktop.views.widgets.theme import STATUS_ORDER

DEBOUNCE_MS = 250


@dataclass(frozen=True)
class Filters:
    """What the filter bar asks for (empty values do not filter)."""

    text: str = ""
    state: str = ""
    status: Status | None = None
    expiring_within_days: int | None = None
    form_code: str = ""
    check: CheckFilter | None = None
    claim: ClaimFilter | None = None


def _shrinkable(combo: QComboBox, chars: int) -> None:
    """Let a combo box with long entries (form codes, check names) be narrower than its longest entry, so
    that the filter bar fits a 1280-pixel screen whatever fonts the system draws with: it keeps room for
    ``chars`` characters, takes more when there is, and its list opens wide enough for every entry; the
    current entry is also its tooltip."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    combo.setSizePolicy(QSizePolicy.Policy.Preferred, combo.sizePolicy().verticalPolicy())
    view = combo.view()
    view.setMinimumWidth(view.sizeHintForColumn(0) + 2 * view.frameWidth() + 24)

    def tip() -> None:
        combo.setToolTip(f"{combo.property('baseToolTip') or ''}\n{combo.currentText()}".strip())

    combo.setProperty("baseToolTip", combo.toolTip())
    combo.currentIndexChanged.connect(tip)
    tip()


class FilterBar(QWidget):
    """Emits ``filters_changed`` when the accountant changes a filter (typing is debounced)."""

    filters_changed = Signal(object)  # Filters

    def __init__(self, states: list[str] | None = None, forms: list[str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(6)

        self.text_edit = QLineEdit(self)
        self.text_edit.setObjectName("filterText")
        self.text_edit.setPlaceholderText("Search customer, customer no., certificate no., permit no.")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.setMinimumWidth(120)
        layout.addWidget(self.text_edit, 3)

        self.state_combo = QComboBox(self)
        self.state_combo.setObjectName("filterState")
        self.state_combo.setToolTip("Only certificates covering this state")
        self._fill(self.state_combo, "All states", states or [])
        layout.addWidget(self._label("State", self.state_combo))
        layout.addWidget(self.state_combo)

        self.status_combo = QComboBox(self)
        self.status_combo.setObjectName("filterStatus")
        self.status_combo.addItem("Any status", None)
        for status in STATUS_ORDER:
            self.status_combo.addItem(status.label, status.value)
        _shrinkable(self.status_combo, 7)
        layout.addWidget(self._label("Status", self.status_combo))
        layout.addWidget(self.status_combo)

        self.expiring_spin = QSpinBox(self)
        self.expiring_spin.setObjectName("filterExpiring")
        self.expiring_spin.setRange(0, 3650)
        self.expiring_spin.setSpecialValueText("any time")
        self.expiring_spin.setSuffix(" days")
        self.expiring_spin.setToolTip("Approved certificates expiring within N days (0: no filter)")
        layout.addWidget(self._label("Expiring", self.expiring_spin))
        layout.addWidget(self.expiring_spin)

        self.form_combo = QComboBox(self)
        self.form_combo.setObjectName("filterForm")
        self._fill(self.form_combo, "All forms", forms or [])
        self.form_combo.setMaxVisibleItems(20)
        _shrinkable(self.form_combo, 12)
        layout.addWidget(self._label("Form", self.form_combo))
        layout.addWidget(self.form_combo)

        self.check_combo = QComboBox(self)
        self.check_combo.setObjectName("filterCheck")
        self.check_combo.setToolTip("Only the certificates the checks left work on")
        self.check_combo.addItem("Any", None)
        for check in CheckFilter:
            self.check_combo.addItem(check.label, check.value)
        _shrinkable(self.check_combo, 10)
        layout.addWidget(self._label("Checks", self.check_combo))
        layout.addWidget(self.check_combo)

        self.claim_combo = QComboBox(self)
        self.claim_combo.setObjectName("filterClaim")
        self.claim_combo.setToolTip("All certificates, those you claimed (Mine), or the pending ones nobody claimed")
        # Its entries say what they are, so it needs no label (the bar fits 1280 pixels with it).
        self.claim_combo.addItem("All claims", None)
        for claim in ClaimFilter:
            self.claim_combo.addItem(claim.label, claim.value)
        _shrinkable(self.claim_combo, 5)
        layout.addWidget(self.claim_combo)

        self.lists_button = QToolButton(self)
        self.lists_button.setObjectName("workListsButton")
        self.lists_button.setText("Work lists")
        self.lists_button.setToolTip("Quick filters (validation errors, pending review…) and your saved filters")
        self.lists_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        layout.addWidget(self.lists_button)

        self.clear_button = QToolButton(self)
        self.clear_button.setObjectName("filterClear")
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear all filters")
        self.clear_button.clicked.connect(self.clear)
        layout.addWidget(self.clear_button)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit)
        self._quiet = False
        #: The work list last applied by name (quick or saved filter) and its filters.
        self._applied: tuple[str, Filters] | None = None
        self.text_edit.textChanged.connect(self._debounce.start)
        self.text_edit.returnPressed.connect(self._emit_now)
        for combo in (self.state_combo, self.status_combo, self.form_combo, self.check_combo, self.claim_combo):
            combo.currentIndexChanged.connect(self._emit_now)
        self.expiring_spin.valueChanged.connect(self._debounce.start)

    def _label(self, text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text + ":", self)
        label.setBuddy(buddy)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return label

    def filters(self) -> Filters:
        status_value = self.status_combo.currentData()
        days = self.expiring_spin.value()
        check_value = self.check_combo.currentData()
        claim_value = self.claim_combo.currentData()
        return Filters(text=self.text_edit.text().strip(), state=self.state_combo.currentData() or "",
                       status=Status(status_value) if status_value else None,
                       expiring_within_days=days or None, form_code=self.form_combo.currentData() or "",
                       check=CheckFilter(check_value) if check_value else None,
                       claim=ClaimFilter(claim_value) if claim_value else None)

    @staticmethod
    def _fill(combo: QComboBox, everything: str, codes: list[str]) -> None:
        """The combo's choices: ``everything`` (no filter) and ``codes``; the current choice is kept when it
        is still one of them (no signal)."""
        current = combo.currentData() or ""
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(everything, "")
        for code in codes:
            combo.addItem(code, code)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    def set_choices(self, states: list[str], forms: list[str]) -> None:
        """The states and forms to choose from (those of the rules pack in force)."""
        self._fill(self.state_combo, "All states", states)
        self._fill(self.form_combo, "All forms", forms)

    def set_filters(self, filters: Filters) -> None:
        """Show exactly these filters (the others cleared) and emit once. A state or form the rules pack
        does not know (a saved filter from an older pack) is left out."""
        self._quiet = True
        try:
            self.text_edit.setText(filters.text)
            for combo, value in ((self.state_combo, filters.state), (self.form_combo, filters.form_code),
                                 (self.status_combo, filters.status.value if filters.status else None),
                                 (self.check_combo, filters.check.value if filters.check else None),
                                 (self.claim_combo, filters.claim.value if filters.claim else None)):
                combo.setCurrentIndex(max(combo.findData(value), 0))
            self.expiring_spin.setValue(filters.expiring_within_days or 0)
        finally:
            self._quiet = False
        self._emit_now()

    def apply_list(self, name: str, filters: Filters) -> None:
        """Apply a work list by name (a quick filter or a saved one): its filters replace the current ones."""
        self._applied = (name, filters)
        self.set_filters(filters)

    def list_name(self) -> str:
        """What the grid shows, in words: the work list applied while its filters are unchanged, else
        "Filtered certificates" (or "" with no filter at all)."""
        current = self.filters()
        if self._applied is not None and self._applied[1] == current:
            return self._applied[0]
        return "" if current == Filters() else "Filtered certificates"

    def set_status(self, status: Status | None) -> None:
        """Select a status (the status strip uses this) and emit once."""
        index = self.status_combo.findData(status.value if status else None)
        if index >= 0 and index != self.status_combo.currentIndex():
            self.status_combo.setCurrentIndex(index)

    def clear(self) -> None:
        self._quiet = True
        try:
            self.text_edit.clear()
            self.state_combo.setCurrentIndex(0)
            self.status_combo.setCurrentIndex(0)
            self.expiring_spin.setValue(0)
            self.form_combo.setCurrentIndex(0)
            self.check_combo.setCurrentIndex(0)
            self.claim_combo.setCurrentIndex(0)
        finally:
            self._quiet = False
        self._emit_now()

    def _emit_now(self) -> None:
        self._debounce.stop()
        self._emit()

    def _emit(self) -> None:
        if not self._quiet:
            self.filters_changed.emit(self.filters())
