"""The task runner: results and errors come back on the GUI thread; progress; cancel; a runner that
is gone before its work ends is not an error."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.views.operations.task_runner import TaskRunner


def test_result_arrives_on_the_gui_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    runner = TaskRunner()
    seen: dict[str, object] = {}

    def work(progress, cancel):  # type: ignore[no-untyped-def]
        seen["worker_thread"] = threading.get_ident()
        progress(1, 2, "half")
        return 42

    def done(value: object) -> None:
        seen["value"] = value
        seen["on_gui_thread"] = QThread.currentThread() is QApplication.instance().thread()

    task = runner.run(work, on_done=done)
    progress: list[tuple[int, int, str]] = []
    task.progressed.connect(lambda d, t, x: progress.append((d, t, x)))
    qtbot.waitUntil(lambda: "value" in seen, timeout=5000)
    assert seen["value"] == 42 and seen["on_gui_thread"] is True
    assert seen["worker_thread"] != threading.get_ident()
    runner.wait()


def test_errors_and_cancellation_reach_on_error(qtbot) -> None:  # type: ignore[no-untyped-def]
    runner = TaskRunner()
    errors: list[BaseException] = []
    release = threading.Event()

    def slow(progress, cancel):  # type: ignore[no-untyped-def]
        release.wait(5)
        if cancel():
            raise Cancelled()
        raise ValueError("boom")

    task = runner.run(slow, on_error=errors.append)
    task.cancel()
    release.set()
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], Cancelled)
    runner.run(slow, on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
    assert isinstance(errors[1], ValueError)
    runner.wait()


def test_a_deleted_runner_ignores_late_results(qtbot) -> None:  # type: ignore[no-untyped-def]
    runner = TaskRunner()
    release = threading.Event()
    called: list[object] = []
    runner.run(lambda p, c: release.wait(5) or "late", on_done=called.append)
    threading.Timer(0.2, release.set).start()  # the work ends while the runner is being deleted
    runner.deleteLater()
    qtbot.waitUntil(lambda: not _alive(runner), timeout=5000)
    for _ in range(3):
        QApplication.processEvents()  # deliver the late result: it must be dropped quietly
    assert called == []


def test_a_deleted_window_gets_no_late_result(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Seen in the suite: the review queue's certificate was still loading on the main window's (shared)
    runner when the queue was closed and deleted; the result arrived and the queue's callback touched its
    deleted widgets ("Internal C++ object already deleted")."""
    from PySide6.QtWidgets import QWidget

    runner = TaskRunner()
    window = QWidget()
    release = threading.Event()
    called: list[object] = []
    runner.run(lambda p, c: release.wait(5) or "late", on_done=called.append, on_error=called.append,
               parent=window)
    window.deleteLater()
    qtbot.waitUntil(lambda: not _alive(window), timeout=5000)
    release.set()
    runner.wait()
    for _ in range(3):
        QApplication.processEvents()
    assert called == [] and not runner.busy  # dropped, and the runner is not left busy
    kept: list[object] = []
    runner.run(lambda p, c: "on time", on_done=kept.append, parent=QWidget())
    qtbot.waitUntil(lambda: kept == ["on time"], timeout=5000)


def _alive(obj: object) -> bool:
    from shiboken6 import isValid

    return isValid(obj)


@pytest.fixture(autouse=True)
def _app(qapp):  # type: ignore[no-untyped-def]
    return qapp
