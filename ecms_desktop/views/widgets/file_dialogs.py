"""Every file dialog of the program, made in one place so that none of them opens a file it lists.

Qt's file dialog asks its icon provider for each listed file's icon and type, and the stock provider
finds them with ``QMimeDatabase``, which opens files to sniff their content; a native dialog (the GTK
platform theme) does the same in this process. Opening and closing the open database's files drops
SQLite's POSIX locks on them (see :mod:`ecms_desktop.services.core.user_files`). So the program always uses
Qt's own dialog with :class:`StatOnlyIconProvider` (names and ``stat`` only) and hides SQLite's files
of the database in use; a path typed by hand is still refused by the services' guard.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileInfo, QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QFileDialog, QFileIconProvider, QFileSystemModel, QWidget

from ecms_desktop.services.core.user_files import database_file_kind

_IconType = QFileIconProvider.IconType


class StatOnlyIconProvider(QFileIconProvider):
    """Icons and type names from the file's name and ``stat`` only: never opens a file. Called from
    the file system model's gatherer thread too, so the icons are made once, up front."""

    def __init__(self) -> None:
        super().__init__()
        stock = QFileIconProvider()  # icons by kind come from the style, not from files
        self._icons = {kind: stock.icon(kind) for kind in (_IconType.Computer, _IconType.Desktop,
                                                            _IconType.Trashcan, _IconType.Network,
                                                            _IconType.Drive, _IconType.Folder, _IconType.File)}

    def icon(self, what: QFileInfo | QFileIconProvider.IconType) -> QIcon:
        if not isinstance(what, QFileInfo):
            return QIcon(self._icons.get(what, self._icons[_IconType.File]))
        if what.isRoot():
            return QIcon(self._icons[_IconType.Drive])
        return QIcon(self._icons[_IconType.Folder if what.isDir() else _IconType.File])

    def type(self, info: QFileInfo) -> str:
        if info.isRoot():
            return "Drive"
        if info.isDir():
            return "Folder"
        suffix = info.suffix()
        return f"{suffix.upper()} file" if suffix else "File"


class _HideDatabaseFiles(QSortFilterProxyModel):
    """Leaves out the open database's own files (``stat`` only); the database file itself stays
    listed where a database is chosen."""

    def __init__(self, parent: QObject, *, show_database: bool) -> None:
        super().__init__(parent)
        self.show_database = show_database

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, QFileSystemModel):
            return True
        index = model.index(source_row, 0, source_parent)
        found = database_file_kind(Path(model.filePath(index)))
        return found is None or (self.show_database and found[0] == "database file")


class _StatOnlyFileDialog(QFileDialog):
    """A Qt file dialog holding on to its icon provider (Qt does not own it: without a reference the
    provider would be collected while the dialog still asks it for icons)."""

    def __init__(self, parent: QWidget | None, caption: str, directory: str, name_filter: str) -> None:
        super().__init__(parent, caption, directory, name_filter)
        self.icon_provider = StatOnlyIconProvider()
        self.setIconProvider(self.icon_provider)


def file_dialog(parent: QWidget | None, caption: str, directory: str = "", name_filter: str = "", *,
                mode: QFileDialog.FileMode = QFileDialog.FileMode.ExistingFile,
                accept: QFileDialog.AcceptMode = QFileDialog.AcceptMode.AcceptOpen,
                show_database: bool = False) -> QFileDialog:
    """A file dialog that never opens the files it lists and hides the open database's files."""
    dialog = _StatOnlyFileDialog(parent, caption, directory, name_filter)
    dialog.setObjectName("fileDialog")
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setProxyModel(_HideDatabaseFiles(dialog, show_database=show_database))
    dialog.setFileMode(mode)
    dialog.setAcceptMode(accept)
    if mode == QFileDialog.FileMode.Directory:
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    return dialog


def _run(dialog: QFileDialog) -> list[str]:
    try:
        return dialog.selectedFiles() if dialog.exec() == QFileDialog.DialogCode.Accepted else []
    finally:
        dialog.deleteLater()


def get_open_file_name(parent: QWidget | None, caption: str, directory: str = "", name_filter: str = "", *,
                       show_database: bool = False) -> str:
    """One existing file, or "" when cancelled."""
    files = _run(file_dialog(parent, caption, directory, name_filter, show_database=show_database))
    return files[0] if files else ""


def get_open_file_names(parent: QWidget | None, caption: str, directory: str = "",
                        name_filter: str = "") -> list[str]:
    """Existing files, or [] when cancelled."""
    return _run(file_dialog(parent, caption, directory, name_filter, mode=QFileDialog.FileMode.ExistingFiles))


def get_save_file_name(parent: QWidget | None, caption: str, directory: str = "", name_filter: str = "", *,
                       show_database: bool = False) -> str:
    """A file name to write, or "" when cancelled."""
    files = _run(file_dialog(parent, caption, directory, name_filter, mode=QFileDialog.FileMode.AnyFile,
                             accept=QFileDialog.AcceptMode.AcceptSave, show_database=show_database))
    return files[0] if files else ""


def get_existing_directory(parent: QWidget | None, caption: str, directory: str = "") -> str:
    """A folder, or "" when cancelled."""
    files = _run(file_dialog(parent, caption, directory, mode=QFileDialog.FileMode.Directory))
    return files[0] if files else ""


__all__ = ["StatOnlyIconProvider", "file_dialog", "get_existing_directory", "get_open_file_name",
           "get_open_file_names", "get_save_file_name"]
