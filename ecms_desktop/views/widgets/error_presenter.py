"""One place that turns errors into dialogs: expected errors show their message; unexpected ones are
written to the log file with their traceback and shown plainly, once, with the log file's path.

:func:`install_exception_hooks` sends the errors nobody caught (on the GUI thread or any other) the
same way."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ecms_desktop import logfile
from ecms_desktop.services.core.errors import (
    Cancelled,
    ConflictError,
    DatabaseBusyError,
    DatabaseError,
    DocumentError,
    EcmsError,
    ExternalServiceError,
    NotFoundError,
    NotSetUpError,
    ValidationError,
)

log = logging.getLogger(__name__)

_TITLES: list[tuple[type[EcmsError], str]] = [
    (DatabaseBusyError, "The database is busy"),
    (ValidationError, "Please check the input"),
    (ConflictError, "Changed by someone else"),
    (NotSetUpError, "Not set up yet"),
    (NotFoundError, "Not found"),
    (DocumentError, "Cannot use this document"),
    (DatabaseError, "Database problem"),
    (ExternalServiceError, "A server did not answer as expected"),
]


def error_title(error: BaseException) -> str:
    for cls, title in _TITLES:
        if isinstance(error, cls):
            return title
    return "Something went wrong"


def error_text(error: BaseException, log_path: Path | None = None) -> str:
    if isinstance(error, EcmsError):
        return str(error)
    where = f"the log file:\n{log_path}" if log_path is not None else "the program's error output"
    return (f"An unexpected error happened: {type(error).__name__}: {error}\n\n"
            f"The details were written to {where}\n"
            "Please send that file with a short note of what you were doing.")


#: The unexpected errors already shown (type, message, where raised): the same fault repeating (e.g. on
#: every repaint) is written to the log each time but shown once.
_shown: set[tuple[str, str, str]] = set()


def _signature(error: BaseException) -> tuple[str, str, str]:
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return type(error).__name__, str(error), where


def present_error(parent: QWidget | None, error: BaseException) -> None:
    """Show an error to the user (nothing for a cancellation). An unexpected error is written to the log
    file with its traceback; the same unexpected error again is only logged."""
    if isinstance(error, Cancelled):
        return
    log_path: Path | None = None
    if not isinstance(error, EcmsError):
        log_path = logfile.log_unexpected(error, log)
        signature = _signature(error)
        if signature in _shown:
            return
        _shown.add(signature)
    box = QMessageBox(QMessageBox.Icon.Warning if isinstance(error, EcmsError) else QMessageBox.Icon.Critical,
                      error_title(error), error_text(error, log_path), QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorBox")
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # the log path can be copied
    box.open() if parent is not None else box.exec()


class _UncaughtRelay(QObject):
    """Carries an error raised on any thread to the GUI thread (a queued signal)."""

    raised = Signal(object)

    def __init__(self, window: Callable[[], QWidget | None]) -> None:
        super().__init__(QApplication.instance())  # lives on the GUI thread
        self._window = window
        self.raised.connect(self._on_raised)  # a slot of an object on the GUI thread: queued from others

    def _on_raised(self, error: BaseException) -> None:
        present_error(self._window(), error)


def install_exception_hooks(window: Callable[[], QWidget | None]) -> Callable[[], None]:
    """Errors nobody caught - in a slot on the GUI thread or in any other thread - are written to the
    log file and shown over ``window()`` once, plainly, with the log file's path. Returns the function
    that puts the previous hooks back (when the window closes)."""
    before = sys.excepthook, threading.excepthook
    relay = _UncaughtRelay(window)

    def gui_hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, tb)
            return
        if error.__traceback__ is None:
            error = error.with_traceback(tb)
        relay.raised.emit(error)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        error = args.exc_value
        if error is None or isinstance(error, SystemExit):
            return
        relay.raised.emit(error)  # queued to the GUI thread, where the window is

    def uninstall() -> None:
        sys.excepthook, threading.excepthook = before
        relay.deleteLater()

    sys.excepthook = gui_hook
    threading.excepthook = thread_hook
    return uninstall


def offer_retry(parent: QWidget, error: BaseException, retry: Callable[[], None], *, what: str = "") -> bool:
    """A busy database (another desk or program is writing): say so plainly and offer Retry / Cancel;
    Retry calls ``retry()``. Returns False (and shows nothing) for any other error."""
    if not isinstance(error, DatabaseBusyError):
        return False
    box = QMessageBox(QMessageBox.Icon.Warning, error_title(error), error_text(error),
                      QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("databaseBusyBox")
    box.setInformativeText(f"{what} Retry when the other program has finished, or cancel.".strip())
    box.setDefaultButton(QMessageBox.StandardButton.Retry)

    def answered(_result: int) -> None:
        clicked = box.clickedButton()
        box.deleteLater()
        if clicked is not None and box.standardButton(clicked) == QMessageBox.StandardButton.Retry:
            retry()

    box.finished.connect(answered)
    box.open()
    return True
