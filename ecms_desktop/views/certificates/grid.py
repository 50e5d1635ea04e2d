"""The review desk's certificate grid: the table of certificates, its columns (widths, order, which are
shown, all kept between sessions) and moving around it. Rows come from a
:class:`~ecms_desktop.views.certificates.table_model.CertificateTableModel`."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QPoint, QSettings, Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QMenu, QTableView, QWidget

from ecms_desktop.views.certificates.status_badge_delegate import StatusBadgeDelegate
from ecms_desktop.views.certificates.table_model import COLUMN_KEYS, COLUMNS, STATUS_COLUMN, CertificateTableModel

#: Where the header (column order, widths, hidden columns, sort) is kept in the UI settings.
HEADER_KEY = "grid/header"
_WIDTHS = {"customer": 200, "customer_number": 84, "states": 64, "form": 104, "certificate_number": 124,
           "exempt_reason": 104, "expiry": 88, "days_left": 70, "status": 120, "review_state": 80, "errors": 56,
           "warnings": 70}


class CertificateGrid(QTableView):
    """One row per certificate, sorted in SQL by the header, the status drawn as a badge."""

    def __init__(self, certificates: CertificateTableModel, settings: QSettings, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.certificates = certificates
        self.settings = settings
        self.setObjectName("certificateGrid")
        self.setModel(certificates)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSortingEnabled(True)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setShowGrid(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.badge_delegate = StatusBadgeDelegate(self)
        self.setItemDelegateForColumn(STATUS_COLUMN, self.badge_delegate)
        header = self.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_context_menu)
        for i, column in enumerate(COLUMNS):
            self.setColumnWidth(i, _WIDTHS.get(column.key, 100))

    # -- columns

    def restore_header(self) -> None:
        """The columns as the user left them; the first time, "Review" hidden (it repeats what the
        status says for most rows; offered in the column menu) and the status badge, what the eye
        looks for first, right after the customer, followed by the counts of errors and warnings. A
        column added since the user's layout was saved is shown at the end."""
        header = self.horizontalHeader()
        state = self.settings.value(HEADER_KEY)
        if not isinstance(state, QByteArray | bytes) or not header.restoreState(QByteArray(state)):
            header.setSectionHidden(COLUMN_KEYS.index("review_state"), True)
            for position, key in enumerate(("status", "errors", "warnings"), start=1):
                header.moveSection(header.visualIndex(COLUMN_KEYS.index(key)), position)
        header.setSortIndicatorShown(True)

    def save_header(self) -> None:
        self.settings.setValue(HEADER_KEY, self.horizontalHeader().saveState())

    def fill_columns_menu(self, menu: QMenu) -> None:
        """One checkable entry per column (the last visible column cannot be hidden)."""
        menu.clear()
        header = self.horizontalHeader()
        visible = sum(1 for i in range(len(COLUMNS)) if not header.isSectionHidden(i))
        for i, column in enumerate(COLUMNS):
            act = menu.addAction(column.title)
            act.setCheckable(True)
            act.setChecked(not header.isSectionHidden(i))
            act.setEnabled(header.isSectionHidden(i) or visible > 1)
            act.toggled.connect(lambda on, i=i: self.set_column_visible(i, on))

    def set_column_visible(self, section: int, visible: bool) -> None:
        self.horizontalHeader().setSectionHidden(section, not visible)
        self.save_header()

    def _on_header_context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        self.fill_columns_menu(menu)
        menu.popup(self.horizontalHeader().mapToGlobal(pos))

    # -- moving around

    def selected_certificate_id(self) -> int | None:
        index = self.currentIndex()
        return self.certificates.certificate_id(index.row()) if index.isValid() else None

    def select_certificate(self, cert_id: int) -> bool:
        """Select ``cert_id`` if it is in the current result (loading batches up to it)."""
        pos = self.certificates.position_of(cert_id)
        if pos is None:
            return False
        self.certificates.fetch_until(pos)
        self.selectRow(pos)
        self.scrollTo(self.certificates.index(pos, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def go_to_last_row(self) -> None:
        """Load every remaining batch and select the last certificate."""
        if self.certificates.total == 0:
            return
        self.certificates.fetch_until(self.certificates.total - 1)
        self.selectRow(self.certificates.rowCount() - 1)
        self.scrollToBottom()

    def copy_certificate_number(self) -> None:
        """The selected certificate's number (its id when it has none) to the clipboard."""
        index = self.currentIndex()
        row = self.certificates.row_data(index.row()) if index.isValid() else None
        if row is not None:
            QApplication.clipboard().setText(row.certificate_number or str(row.id))
