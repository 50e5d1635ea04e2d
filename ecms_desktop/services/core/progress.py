"""How long work reports progress and learns it should stop: the two callables every long-running
service takes, so that the desk can run it off the GUI thread with a progress bar and a Cancel button
(``views/operations/task_runner.py``) and the CLI can print or ignore the progress."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total, text)``: ``done`` of ``total`` steps are finished; ``text`` says what is
#: being done, in words a user reads.
Progress = Callable[[int, int, str], None]

#: ``cancelled()``: true once the user asked to stop; the service then raises
#: :class:`~ecms_desktop.services.core.errors.Cancelled` and leaves nothing half-written.
CancelCheck = Callable[[], bool]
