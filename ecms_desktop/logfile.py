"""The log file: every warning and unexpected error of the program, with its traceback, in
``ecms.log`` in the platform's log folder (:func:`ecms_desktop.paths.log_dir`; ``ECMS_LOG_DIR``
overrides it), rotated at 1 MB with five older files kept. The desk and the ``ecms`` command write
to the same file, so a user reporting a problem has one file to send.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from ecms_desktop import paths

LOG_NAME = "ecms.log"
MAX_BYTES = 1_000_000
BACKUPS = 5

_handler: RotatingFileHandler | None = None


def log_file() -> Path:
    """Where the log is written (the folder is created on first use)."""
    return paths.log_dir() / LOG_NAME


def start_log_file(*, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> Path | None:
    """Send the program's warnings and errors to the log file from now on; returns its path (None when
    the log folder cannot be written: the messages then go to standard error only)."""
    global _handler
    try:
        path = log_file()
        if _handler is not None and Path(_handler.baseFilename) == path.resolve():
            return path
        stop_log_file()  # the log folder was moved (ECMS_LOG_DIR / ECMS_DATA_DIR changed): follow it
        handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot write the log file: %s", exc)
        return None
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"))
    logging.getLogger().addHandler(handler)
    _handler = handler
    return path


def stop_log_file() -> None:
    """Close the log file (at exit, and between tests)."""
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()
        _handler = None


def log_unexpected(error: BaseException, logger: logging.Logger, what: str = "unexpected error") -> Path | None:
    """Write an unexpected error with its traceback to the log file; returns the file's path (None when
    it cannot be written; the error then went to standard error)."""
    path = start_log_file()
    logger.error(what, exc_info=(type(error), error, error.__traceback__))
    return path
