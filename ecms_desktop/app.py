"""``ecms-desktop``: the review desk.

    ecms-desktop [--db URL] [--select CERT_ID] [--as-of YYYY-MM-DD]
                 [--view main|review|settings|shortcuts|findings|renewals|outbox|exposure|audit-pack|worklist|
                         customers|customer|about|inbox]
                 [--screenshot FILE.png] [--size WIDTHxHEIGHT] [--theme system|light|dark] [FILE ...]

Files named on the command line (the desktop's "Open with ECMS Desktop" runs ``ecms-desktop %F``) are
received into the intake inbox as File > Import documents does, and the desk shows its Inbox; a file
that cannot be taken is named with the reason (in the window, and on standard error) and the others
are still taken.

Opens on the local database by default (``ECMS_DATABASE_URL`` or the SQLite file in the user data
folder); on the first run, when there is none yet, it offers to create it. A database named with
``--db`` must exist (``ecms init`` or File > New database creates one). With ``--screenshot`` the
window is drawn offscreen; the program waits until the grid rows (and with ``--select`` the
certificate's first page and form) are painted, saves the picture and exits 0 (1 when the database
or the certificate cannot be opened, 2 when the window was not ready within ``--timeout`` seconds;
the picture is saved anyway).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Qt and the views are imported when the window opens (see main)
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QWidget

    from ecms_desktop.models import Status
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.views.main_window import MainWindow
    from ecms_desktop.views.operations.intake import ReceivedFiles

log = logging.getLogger("ecms_desktop.app")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1440x900") from None
    if not (320 <= w <= 7680 and 240 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"{text}: the size must be between 320x240 and 7680x4320")
    return w, h


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecms-desktop", description="ECMS Desktop: the certificate review desk.")
    p.add_argument("--db", metavar="URL", help="database URL or SQLite file (default: $ECMS_DATABASE_URL, "
                   "else the local database in the user data folder)")
    p.add_argument("--select", metavar="CERT_ID", type=int, help="select this certificate on start")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", type=_date, help="show statuses as of this date (default: today)")
    p.add_argument("--view", choices=("main", "review", "settings", "shortcuts", "findings", "renewals", "outbox",
                                      "exposure", "audit-pack", "worklist", "customers", "customer", "about", "inbox"),
                   default="main",
                   help="what to show: the main window, the review queue, or (for screenshots) the settings dialog, "
                   "the shortcuts overlay, the selected certificate's form with its findings, the renewal center, "
                   "the e-mail outbox, the exposure report, the audit pack dialog, the desk with the work list "
                   "of validation errors (--select then picks a certificate of that list), the customers, the "
                   "customer of --select with its exemption matrix, Help > About ECMS Desktop or the desk with "
                   "its Inbox")
    p.add_argument("--screenshot", metavar="FILE.png", type=Path, help="save a picture of the window and exit")
    p.add_argument("--size", metavar="WIDTHxHEIGHT", type=_size, help="window size, e.g. 1440x900")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="appearance (default: as in Settings)")
    p.add_argument("--timeout", type=float, default=60.0, help="screenshot mode: seconds to wait for the window")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to standard error")
    p.add_argument("files", nargs="*", metavar="FILE", type=Path,
                   help="documents (PDF, PNG, JPEG, TIFF) to receive into the intake inbox of the database's "
                   "company once it is open; the desk then shows its Inbox")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; files may come before, between or after the options (a file manager puts them last,
    a person anywhere)."""
    return build_parser().parse_intermixed_args(argv)


def on_first_grid(window: MainWindow, *, select: int | None, review: bool) -> None:
    """What the command line asks for on start (``--select``, ``--view review``), done once the grid's first
    rows are in, and only then: the grid announces itself again after every search, and the accountant's
    later choices must stand."""
    from PySide6.QtCore import Qt

    if select is not None:
        window.grid_ready.connect(lambda: window.request_select(select), Qt.ConnectionType.SingleShotConnection)
    if review:
        window.grid_ready.connect(window.open_review_queue, Qt.ConnectionType.SingleShotConnection)


def receive_on_start(window: MainWindow, files: Sequence[Path]) -> None:
    """Files named on the command line, received into the intake inbox once the database is open and the
    grid's first rows are in (then the company is known), through the desk's own File > Import documents
    path (off the GUI thread, with progress); the Inbox is shown after, with the first of them. What became
    of each file (and why one was not taken) is also said on standard error, for a terminal."""
    from PySide6.QtCore import Qt

    paths = [Path(os.path.abspath(f.expanduser())) for f in files]

    def received(result: ReceivedFiles) -> None:
        for message in result.messages():
            print(f"ecms-desktop: {message}", file=sys.stderr)
        ids = [item.document_id for item in result.arrived or () if item.document_id is not None]
        if ids:  # the first of them selected and shown in the viewer, once the Inbox is read with them
            window.inbox_updated.connect(lambda _items: window.inbox_pane.select_document(ids[0]),
                                         Qt.ConnectionType.SingleShotConnection)
        window.show_inbox()

    window.intake_finished.connect(received, Qt.ConnectionType.SingleShotConnection)
    window.grid_ready.connect(lambda: window.receive_files(paths), Qt.ConnectionType.SingleShotConnection)


#: Screenshot views that open another feature's window from the main window.
_TOOL_VIEWS = ("renewals", "outbox", "exposure", "audit-pack", "customers", "customer", "about")


class _Screenshot:
    """Waits until the window is ready, saves the picture and ends the event loop."""

    def __init__(self, app: QCoreApplication, window: MainWindow, args: argparse.Namespace) -> None:
        from PySide6.QtCore import QTimer

        self.app, self.window, self.args = app, window, args
        self.grid = self.counts = False
        self.selection = args.select is None
        self.review_ready = args.view not in ("review", "worklist", "inbox", *_TOOL_VIEWS)
        # With --select, the form's stored validation run and permit checks are waited for too.
        self.checks = args.select is None
        # Files named on the command line: the picture shows them received (see receive_on_start).
        self.received = not args.files
        if args.files:
            window.intake_finished.connect(self._on_files_received)
        if not self.checks:
            window.form.checks_loaded.connect(self._on_checks_loaded)
        window.tool_opened.connect(self._on_tool_opened)
        self.tool: QWidget | None = None
        self.done = False
        self.exit_code = 0
        window.database_opened.connect(self._on_database_opened)
        window.database_failed.connect(self._on_failed)
        window.grid_ready.connect(self._on_grid_ready)
        window.counts_updated.connect(self._on_counts)
        window.selection_ready.connect(self._on_selection_ready)
        window.selection_failed.connect(self._on_failed)
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._on_timeout)
        self.timer.start(int(args.timeout * 1000))

    def _on_database_opened(self, db: Database | None) -> None:
        if db is None:
            self._on_failed("no database")

    def _on_failed(self, message: str) -> None:
        print(f"ecms-desktop: {message}", file=sys.stderr)
        self.exit_code = 1
        self._finish(save=False)

    def _on_counts(self, _counts: dict[Status, int]) -> None:
        self.counts = True
        self._check()

    def _on_grid_ready(self) -> None:
        if self.grid:
            return
        self.grid = True
        if self.args.view == "worklist":  # the list first, then the certificate selected in it
            from ecms_desktop.services.certificates.query import CheckFilter

            self.window.counts_updated.connect(self._on_worklist_counted)
            self.window.show_work_list(CheckFilter.ERRORS)
            return
        if self.args.select is not None:
            self.window.request_select(self.args.select)
        if self.args.view == "settings":
            self.window.open_settings()
        elif self.args.view == "shortcuts":
            self.window.show_shortcuts()
        elif self.args.view == "renewals":
            self.window.open_renewal_center()
        elif self.args.view == "outbox":
            self.window.open_outbox()
        elif self.args.view == "exposure":
            self.window.open_exposure_report()
        elif self.args.view == "audit-pack":
            self.window.open_audit_pack_dialog()
        elif self.args.view == "customers":
            self.window.open_customers()
        elif self.args.view == "customer":
            if self.args.select is None:
                self._on_failed("--view customer shows the customer of the certificate given with --select")
                return
            self.window.open_customer_of_certificate(self.args.select)
        elif self.args.view == "about":
            self.window.open_about()
        elif self.args.view == "inbox" and not self.args.files:
            # ready once the inbox is read and its first document is drawn (with files: once they are in)
            from PySide6.QtCore import Qt

            self.window.inbox_updated.connect(self._on_inbox_read, Qt.ConnectionType.SingleShotConnection)
            self.window.show_inbox()
        elif self.args.view == "review":
            self.window.open_review_queue()
            rw = self.window.review_window
            if rw is None:
                self._on_failed("the review queue is not available")
                return
            if self.args.size:  # the queue is a window of its own: the picture's size is asked of it too
                rw.resize(*self.args.size)
            rw.viewer.page_painted.connect(self._on_review_ready)
        self._check()

    def _on_files_received(self, _received: ReceivedFiles) -> None:
        """The files are in; with --view inbox, the Inbox (read again with them) and its first document."""
        from PySide6.QtCore import Qt

        self.received = True
        if self.args.view == "inbox":
            self.window.inbox_updated.connect(self._on_inbox_read, Qt.ConnectionType.SingleShotConnection)
        self._check()

    def _on_inbox_read(self, items: list[object]) -> None:
        from PySide6.QtCore import Qt

        if items and not self.window.viewer.page_count:
            self.window.viewer.page_painted.connect(self._on_review_ready, Qt.ConnectionType.SingleShotConnection)
        else:  # nothing to draw, or the document is drawn already (a later read keeps it shown)
            self._on_review_ready()

    def _on_tool_opened(self, widget: QWidget) -> None:
        from ecms_desktop.views.customers.list_view import CustomersView
        from ecms_desktop.views.customers.matrix_view import CustomerView
        from ecms_desktop.views.exposure_view import ExposureView
        from ecms_desktop.views.outbox_dialog import OutboxDialog
        from ecms_desktop.views.renewal_center import RenewalCenterDialog

        self.tool = widget
        # the renewal center is ready when its preview is drawn, the exposure report when its figures are
        # in; the audit pack dialog opens with its choices already read
        if isinstance(widget, RenewalCenterDialog):
            widget.preview_shown.connect(self._on_review_ready)
        elif isinstance(widget, ExposureView):
            widget.report_loaded.connect(self._on_review_ready)
        elif isinstance(widget, OutboxDialog):
            widget.outbox_loaded.connect(self._on_review_ready)
        elif isinstance(widget, CustomersView | CustomerView):  # when the list or the matrix is read
            widget.loaded.connect(self._on_review_ready)
        else:
            self._on_review_ready()

    def _on_worklist_counted(self, _counts: object) -> None:
        self.window.counts_updated.disconnect(self._on_worklist_counted)
        if self.args.select is not None:
            self.window.request_select(self.args.select)
        self._on_review_ready()

    def _on_checks_loaded(self) -> None:
        self.checks = True
        self._check()

    def _on_review_ready(self, *_args: object) -> None:
        self.review_ready = True
        self._check()

    def _on_selection_ready(self) -> None:
        self.selection = True
        self._check()

    def _check(self) -> None:
        if (self.grid and self.counts and self.selection and self.review_ready and self.checks and self.received
                and not self.done):
            from PySide6.QtCore import QTimer

            if self.window.viewer.busy:  # a re-render after a layout change: wait for it
                QTimer.singleShot(100, self._check)
                return

            QTimer.singleShot(50, lambda: self._finish(save=True))  # let queued paints run

    def _on_timeout(self) -> None:
        if self.done:
            return
        waiting = [name for name, ok in (("grid rows", self.grid), ("status counts", self.counts),
                                         ("selected certificate", self.selection),
                                         ("review queue or window", self.review_ready),
                                         ("validation and permit checks", self.checks),
                                         ("files named on the command line", self.received)) if not ok]
        print(f"ecms-desktop: window not ready after {self.args.timeout:.0f} s (waiting for "
              f"{', '.join(waiting)}); saving the picture anyway", file=sys.stderr)
        self.exit_code = 2
        self._finish(save=True)

    def _finish(self, *, save: bool) -> None:
        if self.done:
            return
        self.done = True
        self.timer.stop()
        if save:
            target: QWidget = self.window
            if self.args.view == "review" and self.window.review_window is not None:
                target = self.window.review_window
            elif self.args.view == "settings" and self.window.settings_dialog is not None:
                target = self.window.settings_dialog
            elif self.args.view in _TOOL_VIEWS and self.tool is not None:
                target = self.tool
            elif self.args.view == "findings":
                target = self.window.form
            picture = target.grab()
            path: Path = self.args.screenshot
            path.parent.mkdir(parents=True, exist_ok=True)
            if not picture.save(str(path), "PNG"):
                print(f"ecms-desktop: cannot write {path}", file=sys.stderr)
                self.exit_code = 1
        self.app.exit(self.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from ecms_desktop import logfile, paths
    from ecms_desktop.services.documents import shared_sandbox
    from ecms_desktop.services.documents.sandbox import DocumentSandbox
    from ecms_desktop.views.main_window import MainWindow, ui_settings
    from ecms_desktop.views.settings_dialog import THEME_KEY
    from ecms_desktop.views.widgets.app_icon import application_icon
    from ecms_desktop.views.widgets.error_presenter import install_exception_hooks
    from ecms_desktop.views.widgets.theme import apply_theme

    logfile.start_log_file()

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "ecms-desktop"])
    app.setOrganizationName("ECMS")
    app.setApplicationName("ECMS Desktop")
    QApplication.setDesktopFileName("ecms-desktop")  # the .desktop file: icon and name in the task bar (Wayland)
    QApplication.setWindowIcon(application_icon())
    settings = ui_settings()
    if args.screenshot is not None:
        # Pictures do not depend on (nor change) the user's saved layout.
        import tempfile

        from PySide6.QtCore import QSettings

        fd, scratch = tempfile.mkstemp(prefix="ecms-screenshot-", suffix=".ini")
        os.close(fd)
        settings = QSettings(scratch, QSettings.Format.IniFormat)
    apply_theme(app, args.theme or str(settings.value(THEME_KEY, "system")))  # type: ignore[arg-type]

    sandbox = DocumentSandbox()
    window = MainWindow(None, as_of=args.as_of, settings=settings, sandbox=sandbox,
                        interactive=args.screenshot is None)
    if args.size:
        window.resize(*args.size)
        if (window.width(), window.height()) != tuple(args.size):
            print(f"ecms-desktop: the window cannot be smaller than {window.width()}x{window.height()}",
                  file=sys.stderr)
    uninstall_hooks = install_exception_hooks(lambda: window)
    shot = _Screenshot(app, window, args) if args.screenshot is not None else None
    window.show()
    if args.screenshot is None:
        on_first_grid(window, select=args.select, review=args.view == "review")
    if args.files:
        receive_on_start(window, args.files)
    # Only the default local database may be created here (after asking, on the first run); a database
    # named with --db must exist: a mistyped path is never silently a new, empty database.
    window.open_database(args.db or paths.default_database_url(), offer_create=args.db is None)
    try:
        code = app.exec()
    finally:
        if shot is None:
            window.save_ui_state()
        window.shutdown()
        sandbox.close()
        shared_sandbox.close()
        window.deleteLater()
        app.processEvents()
        if args.screenshot is not None:
            Path(settings.fileName()).unlink(missing_ok=True)
        uninstall_hooks()
        logfile.stop_log_file()
    return shot.exit_code if shot is not None else int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
