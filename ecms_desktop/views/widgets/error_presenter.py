"""One place that turns errors into dialogs: expected errors show their message; unexpected ones are
logged with a traceback and shown plainly."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from ecms_desktop.services.core.errors import (
    Cancelled,
    ConflictError,
    DatabaseBusyError,
    DatabaseError,
    DocumentError,
    EcmsError,
    ExternalServiceError,
    NotFoundError,
    ValidationError,
)

log = logging.getLogger(__name__)

_TITLES: list[tuple[type[EcmsError], str]] = [
    (DatabaseBusyError, "The database is busy"),
    (ValidationError, "Please check the input"),
    (ConflictError, "Changed by someone else"),
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


def error_text(error: BaseException) -> str:
    if isinstance(error, EcmsError):
        return str(error)
    return (f"An unexpected error happened: {type(error).__name__}: {error}\n\n"
            "Details were written to the log file.")


def present_error(parent: QWidget | None, error: BaseException) -> None:
    """Show an error to the user (nothing for a cancellation)."""
    if isinstance(error, Cancelled):
        return
    if not isinstance(error, EcmsError):
        log.error("unexpected error", exc_info=error)
    box = QMessageBox(QMessageBox.Icon.Warning if isinstance(error, EcmsError) else QMessageBox.Icon.Critical,
                      error_title(error), error_text(error), QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorBox")
    box.open() if parent is not None else box.exec()


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
