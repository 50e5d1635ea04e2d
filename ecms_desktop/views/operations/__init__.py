"""Named background operations of the review desk, in the manner of Anki's ``aqt/operations``.

Each user action that runs long work is one small function in this package, named for what the
accountant asked for (``validate_all``, ``receive_files``, ``back_up``...). It returns an
:class:`Operation`: the work (a plain function calling services, with ``progress`` and ``cancel``) and
how its progress is shown. The window says what happens afterwards and starts it::

    validate_all(db, rules, company_id=company_id, as_of=as_of).success(self._on_all_validated) \\
        .failure(self._on_validate_all_failed).run(self.runner, parent=self)

The work never touches a widget; the ``success`` and ``failure`` callbacks run on the GUI thread (the
task runner delivers them). Without a failure callback the error presenter shows the error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from PySide6.QtWidgets import QWidget

from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.views.operations.task_runner import Task, TaskRunner

T = TypeVar("T")


class Operation(Generic[T]):
    """One piece of background work and what follows it. ``title``: the progress dialog's text (shown
    with Cancel when the work lasts over half a second); no title, no dialog."""

    def __init__(self, work: Callable[[Progress, CancelCheck], T], *, title: str = "",
                 show_progress: bool = True) -> None:
        self.work = work
        self.title = title
        self.show_progress = show_progress
        self._on_success: Callable[[T], None] | None = None
        self._on_failure: Callable[[BaseException], None] | None = None

    def success(self, callback: Callable[[T], None]) -> Operation[T]:
        """Call ``callback(result)`` on the GUI thread when the work is done."""
        self._on_success = callback
        return self

    def failure(self, callback: Callable[[BaseException], None]) -> Operation[T]:
        """Call ``callback(error)`` on the GUI thread when the work fails or is cancelled."""
        self._on_failure = callback
        return self

    def run(self, runner: TaskRunner, parent: QWidget | None = None) -> Task:
        """Start the work on ``runner`` (again, for a retry); ``parent`` owns the progress dialog."""
        return runner.run(self.work, on_done=self._on_success, on_error=self._on_failure, title=self.title,
                          parent=parent, show_progress=self.show_progress)


__all__ = ["Operation"]
