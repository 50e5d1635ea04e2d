"""The problems found in an input file, one per row (file, row, column, what is wrong), to read, copy
or save as a CSV file: what ``ecms`` prints for the same file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.errors import Problem
from ecms_desktop.services.exports.problem_list import PROBLEM_HEADINGS, problem_cells
from ecms_desktop.views.operations.exports import save_problems
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_save_file_name

_Index = QModelIndex | QPersistentModelIndex


class ProblemsTableModel(QAbstractTableModel):
    """One row per problem: file, row, column, what is wrong."""

    def __init__(self, problems: Sequence[Problem], parent: Any = None) -> None:
        super().__init__(parent)
        self._rows = [problem_cells(p) for p in problems]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(PROBLEM_HEADINGS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(PROBLEM_HEADINGS)):
            return PROBLEM_HEADINGS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            value = self._rows[index.row()][index.column()]
            return "" if value is None else str(value)
        return None

    def as_text(self) -> str:
        """Every problem as tab-separated lines under the headings (for the clipboard)."""
        lines = ["\t".join(PROBLEM_HEADINGS)]
        lines += ["\t".join("" if v is None else str(v).replace("\t", " ") for v in row) for row in self._rows]
        return "\n".join(lines) + "\n"


class ProblemsDialog(QDialog):
    """The message of a refused input and each of its problems, with Copy and Save."""

    saved = Signal(object)  # Path

    def __init__(self, title: str, message: str, problems: Sequence[Problem], *, runner: TaskRunner,
                 folder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.problems = tuple(problems)
        self.runner, self.folder = runner, folder
        self.message = QLabel(message)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model = ProblemsTableModel(self.problems, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = self.buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button = self.buttons.addButton("Save…", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy every problem to the clipboard (tab-separated, pastes into a spreadsheet)")
        self.save_button.setToolTip("Save every problem as a CSV file")
        self.copy_button.clicked.connect(self.copy_all)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        self.resize(820, 460)

    def copy_all(self) -> None:
        """Every problem onto the clipboard."""
        QApplication.clipboard().setText(self.model.as_text())

    def _on_save_clicked(self) -> None:
        chosen = get_save_file_name(self, "Save the problems", str(Path(self.folder) / "problems.csv"),
                                    "CSV files (*.csv)")
        if chosen:
            self.save_to(Path(chosen))

    def save_to(self, path: Path) -> None:
        """Write every problem to ``path`` as CSV, off the GUI thread; ``saved`` follows."""
        if path.suffix.lower() != ".csv":
            path = path.with_name(path.name + ".csv")
        self.save_button.setEnabled(False)
        save_problems(self.problems, path).success(self._on_saved).failure(self._on_save_failed) \
            .run(self.runner, parent=self)

    def _on_saved(self, path: Path) -> None:
        self.save_button.setEnabled(True)
        self.saved.emit(path)

    def _on_save_failed(self, error: BaseException) -> None:
        self.save_button.setEnabled(True)
        present_error(self, error)
