"""Named background operations: the work runs on the task runner, success and failure come back on the
GUI thread, the progress title reaches the runner, and an operation can be run again (Retry)."""

from __future__ import annotations

from typing import Any

import pytest

from ecms_desktop.services.core.errors import DatabaseBusyError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.views.operations import Operation
from ecms_desktop.views.operations.task_runner import TaskRunner


def test_success_gets_the_result_and_the_title_reaches_the_runner(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = TaskRunner()
    titles: list[str] = []
    real_run = runner.run

    def run(work: Any, **kwargs: Any) -> Any:
        titles.append(kwargs["title"])
        return real_run(work, **kwargs)

    monkeypatch.setattr(runner, "run", run)

    def work(progress: Progress, _cancel: CancelCheck) -> int:
        progress(1, 1, "done")
        return 7

    results: list[int] = []
    Operation(work, title="Counting").success(results.append).run(runner)
    qtbot.waitUntil(lambda: results == [7], timeout=5000)
    assert titles == ["Counting"]
    runner.wait()


def test_failure_gets_the_error_and_the_operation_runs_again(qtbot: Any) -> None:
    runner = TaskRunner()
    attempts: list[int] = []
    errors: list[BaseException] = []
    results: list[str] = []

    def work(_p: Progress, _c: CancelCheck) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise DatabaseBusyError("another program is writing")
        return "stored"

    operation = Operation(work).success(results.append).failure(errors.append)
    operation.run(runner)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], DatabaseBusyError) and results == []
    operation.run(runner)  # what Retry does
    qtbot.waitUntil(lambda: results == ["stored"], timeout=5000)
    assert len(attempts) == 2
    runner.wait()
