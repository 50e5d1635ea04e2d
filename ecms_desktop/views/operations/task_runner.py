"""One small task runner for long work: off the GUI thread, with progress, Cancel, and results and
errors delivered back on the GUI thread.

A service function takes ``progress(done, total, text)`` and ``cancel() -> bool`` and raises
:class:`~ecms_desktop.services.core.errors.Cancelled` when asked to stop. The view calls::

    runner.run(lambda progress, cancel: service.do(..., progress=progress, cancel=cancel),
               on_done=self._on_import_done, title="Importing documents")

A progress dialog appears only if the work lasts longer than ~0.5 s. Never touch a widget from the
worker; ``on_done`` and ``on_error`` run on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget
from shiboken6 import isValid

from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.views.widgets.error_presenter import present_error

log = logging.getLogger(__name__)

Work = Callable[[Progress, CancelCheck], Any]


class _Signals(QObject):
    progressed = Signal(int, int, str)
    finished = Signal(object, object)  # (result, error)


class _Job(QRunnable):
    def __init__(self, work: Work, signals: _Signals, cancel_event: threading.Event) -> None:
        super().__init__()
        self.work, self.signals, self.cancel_event = work, signals, cancel_event
        self.setAutoDelete(True)

    def run(self) -> None:  # runs on a pool thread
        def progress(done: int, total: int, text: str = "") -> None:
            self.signals.progressed.emit(int(done), int(total), text)

        try:
            result = self.work(progress, self.cancel_event.is_set)
        except BaseException as exc:
            self.signals.finished.emit(None, exc)
        else:
            self.signals.finished.emit(result, None)


class Task(QObject):
    """A running piece of work; ``cancel()`` asks it to stop."""

    progressed = Signal(int, int, str)
    done = Signal(object)
    failed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self.finished_flag = False

    def cancel(self) -> None:
        self.cancel_event.set()


class TaskRunner(QObject):
    """Runs work on a thread pool and reports back on the GUI thread."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._running: set[Task] = set()

    def run(self, work: Work, *, on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None, title: str = "",
            parent: QWidget | None = None, show_progress: bool = True, delay_ms: int = 500) -> Task:
        """Start ``work`` off the GUI thread. With a ``title`` and ``show_progress``, a modal progress
        dialog with Cancel appears after ``delay_ms`` if the work is still running. ``parent``: the window
        the work is for; if it is deleted before the work ends, the result is dropped (``on_done`` and
        ``on_error`` are not called)."""
        task = Task(self)
        signals = _Signals()
        dialog: QProgressDialog | None = None
        timer: QTimer | None = None

        if title and show_progress:
            timer = QTimer(task)
            timer.setSingleShot(True)

            def show_dialog() -> None:
                nonlocal dialog
                if task.finished_flag:
                    return
                dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
                dialog.setWindowTitle(title)
                dialog.setWindowModality(Qt.WindowModality.WindowModal)
                dialog.setMinimumDuration(0)
                dialog.canceled.connect(task.cancel)
                dialog.show()

            timer.timeout.connect(show_dialog)
            timer.start(delay_ms)

        @Slot(int, int, str)
        def on_progress(done: int, total: int, text: str) -> None:
            task.progressed.emit(done, total, text)
            if dialog is not None:
                dialog.setMaximum(max(total, 0))
                dialog.setValue(min(done, total) if total else 0)
                if text:
                    dialog.setLabelText(text)

        @Slot(object, object)
        def on_finished(result: Any, error: BaseException | None) -> None:
            if not (isValid(self) and isValid(task)):
                return  # the runner (and its window) went away while the work ran: nobody to tell
            task.finished_flag = True
            if timer is not None:
                timer.stop()
            if dialog is not None:
                dialog.reset()
                dialog.deleteLater()
            self._running.discard(task)
            self.busy_changed.emit(bool(self._running))
            signals.deleteLater()
            if parent is not None and not isValid(parent):
                return  # the window the work was for is gone (a shared runner outlives it): nobody to tell
            if error is None:
                task.done.emit(result)
                if on_done:
                    on_done(result)
            else:
                if not isinstance(error, Cancelled):
                    log.error("background task failed", exc_info=error)
                task.failed.emit(error)
                if on_error:
                    on_error(error)
                elif not isinstance(error, Cancelled):
                    present_error(parent, error)

        signals.progressed.connect(on_progress, Qt.ConnectionType.QueuedConnection)
        signals.finished.connect(on_finished, Qt.ConnectionType.QueuedConnection)
        self._running.add(task)
        self.busy_changed.emit(True)
        self.pool.start(_Job(work, signals, task.cancel_event))
        return task

    @property
    def busy(self) -> bool:
        """Whether work started here has not reported back yet."""
        return bool(self._running)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Wait for running work to end (used at exit and in tests)."""
        return self.pool.waitForDone(msecs)
