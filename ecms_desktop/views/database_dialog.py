"""Choosing the database: open a file, create a new one, connect to a shared server, recent ones;
and the message for a database that cannot be opened (URL with the password hidden, and a way
to choose another).

Recent databases are per-user UI state (QSettings) and are stored WITHOUT passwords; a server
password is kept in the OS keyring when one is available (never in a plain file).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ecms_desktop.services.core.database import display_url, normalize_url
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name, get_save_file_name

log = logging.getLogger(__name__)

RECENT_KEY = "database/recent"
MAX_RECENT = 8
_KEYRING_SERVICE = "ecms-desktop database"


def url_without_password(url: str) -> str:
    """The URL with the password removed (not masked): safe to store in a settings file."""
    try:
        u = make_url(normalize_url(url))
    except ArgumentError:
        return url
    return u.set(password=None).render_as_string(hide_password=False) if u.password else str(u)


def _store_password(url: str) -> None:
    try:
        u = make_url(normalize_url(url))
    except ArgumentError:
        return
    if not u.password:
        return
    try:
        import keyring

        keyring.set_password(_KEYRING_SERVICE, url_without_password(url), str(u.password))
    except Exception as exc:  # each keyring backend raises its own errors (none installed, locked, D-Bus down)
        log.info("password not kept (no keyring): %s", exc)


def url_with_saved_password(url: str) -> str:
    """A recent URL with its password from the keyring, when one was kept."""
    try:
        u = make_url(normalize_url(url))
    except ArgumentError:
        return url
    if u.password or u.get_backend_name() == "sqlite":
        return url
    try:
        import keyring

        password = keyring.get_password(_KEYRING_SERVICE, url_without_password(url))
    except Exception:  # each keyring backend raises its own errors: then the user types the password
        password = None
    return u.set(password=password).render_as_string(hide_password=False) if password else url


def recent_databases(settings: QSettings) -> list[str]:
    value = settings.value(RECENT_KEY, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):  # nothing stored yet (None)
        return []
    return [str(v) for v in value if v]


def remember_database(settings: QSettings, url: str) -> list[str]:
    """Put ``url`` first in the recent list (without its password) and return the list."""
    _store_password(url)
    clean = url_without_password(normalize_url(url))
    items = [clean] + [u for u in recent_databases(settings) if u != clean]
    settings.setValue(RECENT_KEY, items[:MAX_RECENT])
    return items[:MAX_RECENT]


def choose_database_file(parent: QWidget | None, start: str = "") -> str | None:
    """File > Open database: an existing SQLite file, as a URL."""
    path = get_open_file_name(parent, "Open database", start,
                              "ECMS databases (*.sqlite *.db *.sqlite3);;All files (*)", show_database=True)
    return f"sqlite:///{Path(path).resolve()}" if path else None


def choose_new_database_file(parent: QWidget | None, start: str = "") -> str | None:
    """File > New database: where to create an empty SQLite database, as a URL."""
    path = get_save_file_name(parent, "New database", start or "ecms.sqlite", "ECMS databases (*.sqlite)",
                              show_database=True)
    if not path:
        return None
    p = Path(path)
    if p.suffix == "":
        p = p.with_suffix(".sqlite")
    return f"sqlite:///{p.resolve()}"


class DatabaseDialog(QDialog):
    """Choose a database; with ``error``, explains why the current one could not be opened.

    After ``exec()`` returns Accepted, ``chosen_url`` is the URL to open and ``create`` says whether
    an empty database may be created there.
    """

    def __init__(self, current_url: str | None, recent: list[str], parent: QWidget | None = None, *,
                 error: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("databaseDialog")
        self.setWindowTitle("Cannot open the database" if error else "Choose a database")
        self.setMinimumWidth(560)
        self.chosen_url: str | None = None
        #: The chosen database is to be created (empty) rather than opened.
        self.create_new = False
        layout = QVBoxLayout(self)

        if error:
            self.message = QLabel(self)
            self.message.setObjectName("databaseError")
            self.message.setWordWrap(True)
            self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            shown = display_url(current_url) if current_url else "(none)"
            self.message.setText(
                f"<b>ECMS Desktop could not open the database</b><br><br>{_escape(shown)}<br><br>"
                f"{_escape(_hide_passwords(error, current_url))}<br><br>"
                "If it is a shared database, check the network and that the server is running, "
                "or choose another database below.")
            layout.addWidget(self.message)
        else:
            self.message = QLabel(f"Current database: {display_url(current_url) if current_url else '(none)'}",
                                  self)
            self.message.setObjectName("databaseCurrent")
            self.message.setWordWrap(True)
            layout.addWidget(self.message)

        layout.addWidget(QLabel("Recent databases:", self))
        self.recent_list = QListWidget(self)
        self.recent_list.setObjectName("recentDatabases")
        for url in recent:
            item = QListWidgetItem(display_url(url))
            item.setData(Qt.ItemDataRole.UserRole, url)
            item.setToolTip(display_url(url))
            self.recent_list.addItem(item)
        self.recent_list.itemActivated.connect(self._on_recent_activated)
        layout.addWidget(self.recent_list)

        server_row = QHBoxLayout()
        self.server_edit = QLineEdit(self)
        self.server_edit.setObjectName("serverUrl")
        self.server_edit.setPlaceholderText("postgresql://user@server/ecms  (shared database)")
        self.server_edit.setEchoMode(QLineEdit.EchoMode.Normal)
        connect = QPushButton("Connect", self)
        connect.clicked.connect(self._on_connect_clicked)
        server_row.addWidget(self.server_edit, 1)
        server_row.addWidget(connect)
        layout.addLayout(server_row)

        buttons = QDialogButtonBox(self)
        self.open_button = buttons.addButton("Open file…", QDialogButtonBox.ButtonRole.ActionRole)
        self.new_button = buttons.addButton("New database…", QDialogButtonBox.ButtonRole.ActionRole)
        self.use_button = buttons.addButton("Open selected", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton("Quit" if error and parent is None else "Cancel", QDialogButtonBox.ButtonRole.RejectRole)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.new_button.clicked.connect(self._on_new_clicked)
        self.use_button.clicked.connect(self._on_use_clicked)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        if self.recent_list.count():
            self.recent_list.setCurrentRow(0)

    def choose(self, url: str, *, create: bool = False) -> None:
        self.chosen_url = url
        self.create_new = create
        self.accept()

    def _on_recent_activated(self, item: QListWidgetItem) -> None:
        self.choose(url_with_saved_password(item.data(Qt.ItemDataRole.UserRole)))

    def _on_use_clicked(self) -> None:
        item = self.recent_list.currentItem()
        if item is not None:
            self._on_recent_activated(item)

    def _on_connect_clicked(self) -> None:
        text = self.server_edit.text().strip()
        if text:
            self.choose(normalize_url(text))

    def _on_open_clicked(self) -> None:
        url = choose_database_file(self)
        if url:
            self.choose(url)

    def _on_new_clicked(self) -> None:
        url = choose_new_database_file(self)
        if url:
            self.choose(url, create=True)


def _hide_passwords(text: str, url: str | None) -> str:
    if not url:
        return text
    try:
        password = make_url(normalize_url(url)).password
    except ArgumentError:
        return text
    return text.replace(str(password), "***") if password else text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
