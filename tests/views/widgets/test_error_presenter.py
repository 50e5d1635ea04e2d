"""Unexpected errors: written to the log file with the traceback, shown once, plainly, with the log's
path; the same for errors nobody caught, on the GUI thread or another."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox, QWidget

from ecms_desktop import logfile
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.views.widgets.error_presenter import install_exception_hooks, present_error


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ECMS_LOG_DIR", str(tmp_path / "logs"))
    logfile.stop_log_file()
    yield tmp_path / "logs"
    logfile.stop_log_file()


@pytest.fixture
def parent(qtbot) -> QWidget:  # type: ignore[no-untyped-def]
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def _boxes(parent: QWidget) -> list[QMessageBox]:
    return parent.findChildren(QMessageBox, "errorBox")


def _raise(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as exc:
        return exc


def test_an_unexpected_error_is_logged_and_shown_once_with_the_log_path(qtbot, parent, log_dir) -> None:  # type: ignore[no-untyped-def]
    error = _raise(KeyError("purchaser_zip"))
    present_error(parent, error)
    present_error(parent, error)  # the same fault again: logged, not shown a second time
    boxes = _boxes(parent)
    assert len(boxes) == 1
    assert "KeyError: 'purchaser_zip'" in boxes[0].text()
    assert str(log_dir / "ecms.log") in boxes[0].text()
    text = (log_dir / "ecms.log").read_text(encoding="utf-8")
    assert text.count("Traceback (most recent call last)") == 2 and "in _raise" in text


def test_an_expected_error_is_shown_and_not_logged(qtbot, parent, log_dir) -> None:  # type: ignore[no-untyped-def]
    present_error(parent, ValidationError("The permit number is missing."))
    assert [b.text() for b in _boxes(parent)] == ["The permit number is missing."]
    assert not (log_dir / "ecms.log").exists() or "permit" not in (log_dir / "ecms.log").read_text()


def test_uncaught_errors_of_any_thread_reach_the_log_and_the_window(qtbot, parent, log_dir) -> None:  # type: ignore[no-untyped-def]
    before = sys.excepthook, threading.excepthook
    uninstall = install_exception_hooks(lambda: parent)
    try:
        error = _raise(RuntimeError("a slot failed"))
        sys.excepthook(type(error), error, error.__traceback__)
        qtbot.waitUntil(lambda: len(_boxes(parent)) == 1, timeout=5000)

        def work() -> None:
            raise LookupError("a worker thread failed")

        thread = threading.Thread(target=work, name="worker-for-test")
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: len(_boxes(parent)) == 2, timeout=5000)
    finally:
        uninstall()
    texts = [b.text() for b in _boxes(parent)]
    assert "RuntimeError: a slot failed" in texts[0] and "LookupError: a worker thread failed" in texts[1]
    log_text = (log_dir / "ecms.log").read_text(encoding="utf-8")
    assert "in work" in log_text and "in _raise" in log_text
    assert (sys.excepthook, threading.excepthook) == before  # put back when the window closes


def test_a_missing_mail_server_is_titled_as_not_set_up(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """Seen in the customer's matrix: Request with no mail server set showed a box titled "Not found"."""
    from ecms_desktop.services.core.errors import NotSetUpError
    from ecms_desktop.services.renewals.email_service import EmailService
    from ecms_desktop.views.widgets.error_presenter import error_title

    with pytest.raises(NotSetUpError) as raised:
        EmailService(db).require_profile(company_id)
    assert error_title(raised.value) == "Not set up yet" and "Settings > E-mail" in raised.value.message
