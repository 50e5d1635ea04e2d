"""The document viewer: certificate PDFs and scans, rendered off the GUI thread in the sandbox.

Every page is rendered by the bounded worker process of
:mod:`ecms_desktop.services.documents.sandbox` through the task runner, so a corrupt, huge or hostile
file never freezes the window: it shows a clear message in place of the page. A newer request
(next page, zoom, rotate, another document) supersedes an older one; an old render still running
after a moment is cancelled (its worker is killed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.documents.results import PasswordRequired, WrongPassword
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.images import png_image
from ecms_desktop.views.widgets.page_picture import PagePicture, ShownPage

#: Zoom steps (1.0 = 100 %, 72 dpi times the screen's pixel ratio).
ZOOM_STEPS = (0.25, 0.33, 0.5, 0.67, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
#: Thumbnails are rendered for at most this many pages (the list still names every page).
MAX_THUMBNAILS = 200
THUMB_SIDE = 110
#: The viewer's width from which the thumbnails are shown beside the page (the page keeps about 4/5).
THUMBNAILS_ROOM = 5 * (THUMB_SIDE + 34)

#: (keys, what they do) for the help overlay.
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("PgDown / PgUp", "Next / previous page"),
    ("Home / End", "First / last page"),
    ("Ctrl+= / Ctrl+-", "Zoom in / out"),
    ("Ctrl+0", "Fit the page width"),
    ("Ctrl+[ / Ctrl+]", "Rotate left / right"),
)

PasswordProvider = Callable[[str, bool], "str | None"]
Box = tuple[float, float, float, float]


@dataclass
class _Doc:
    data: bytes
    sha256: str
    name: str
    password: str | None = None
    page_count: int = 0
    first_size: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Request:
    gen: int
    doc: _Doc
    page: int
    dpi: float
    rotation: int


class DocumentViewer(QWidget):
    """Shows one document: pages, thumbnails, zoom, fit, rotate, page navigation.

    ``show_document(data, sha256=, name=, rotation=)`` displays a file; ``clear(message)`` empties
    the viewer. ``rotation_changed(int)`` tells the caller the user rotated (save it as a view
    setting; the file is never altered); ``page_painted()`` fires when a page image is on screen;
    ``message_shown(str)`` when a message is shown in place of the page. ``highlight(page, box)`` marks
    a place on a page (a value read from it) and ``clear_highlight()`` removes the mark.
    """

    rotation_changed = Signal(int)
    page_painted = Signal()
    page_changed = Signal(int)
    message_shown = Signal(str)

    def __init__(self, sandbox: DocumentSandbox | None = None, parent: QWidget | None = None, *,
                 runner: TaskRunner | None = None, thumbnail_sandbox: DocumentSandbox | None = None,
                 timeout: float = 15.0, probe_timeout: float | None = None,
                 thumbnail_timeout: float = 5.0, thumbnails: bool = True,
                 password_provider: PasswordProvider | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("documentViewer")
        self._own_sandboxes: list[DocumentSandbox] = []
        if sandbox is None:
            sandbox = DocumentSandbox()
            self._own_sandboxes.append(sandbox)
        self.sandbox = sandbox
        self._thumb_sandbox = thumbnail_sandbox
        self.runner = runner or TaskRunner(self, max_threads=2)
        self.timeout = timeout
        self.probe_timeout = probe_timeout if probe_timeout is not None else timeout
        self.thumbnail_timeout = thumbnail_timeout
        self.thumbnails_enabled = thumbnails
        #: ``provider(file_name, wrong_before) -> password or None``; default asks with a dialog.
        self.password_provider: PasswordProvider = password_provider or self._ask_password

        self._doc: _Doc | None = None
        self._gen = 0  # bumps on every new request; results of older generations are dropped
        self._doc_gen = 0  # bumps on every new document
        self._page = 0
        self._rotation = 0
        self._zoom = 1.0
        self._fit: str | None = "width"  # "width" | "page" | None (fixed zoom)
        self._sizes: dict[int, tuple[float, float]] = {}  # unrotated page size in points
        self._in_flight: _Request | None = None
        self._in_flight_since = 0.0
        self._pending: _Request | None = None
        self._thumb_next = 0
        self._thumb_busy = False
        self._message = ""
        self._probing = 0
        self._shown: ShownPage | None = None
        #: (page index, box in the page's own unrotated coordinates, in points) to highlight.
        self._highlight: tuple[int, Box] | None = None
        self._build()
        self._set_enabled(False)

    # ------------------------------------------------------------------ UI

    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.setSpacing(2)

        def tool(name: str, text: str, tip: str, slot: Callable[[], Any]) -> QToolButton:
            b = QToolButton()
            b.setObjectName(name)
            b.setText(text)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            bar.addWidget(b)
            return b

        self.prev_button = tool("prevPage", "◀", "Previous page (PgUp)", self.previous_page)
        self.page_edit = QLineEdit()
        self.page_edit.setObjectName("pageNumber")
        self.page_edit.setFixedWidth(36)
        self.page_edit.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.page_edit.setToolTip("Page number (type a number and press Enter)")
        self.page_edit.returnPressed.connect(self._on_page_edit_return)
        bar.addWidget(self.page_edit)
        self.page_total = QLabel("/ 0")
        self.page_total.setObjectName("pageTotal")
        bar.addWidget(self.page_total)
        self.next_button = tool("nextPage", "▶", "Next page (PgDown)", self.next_page)
        bar.addSpacing(6)
        self.zoom_out_button = tool("zoomOut", "−", "Zoom out (Ctrl+-)", self.zoom_out)
        self.zoom_label = QLabel("100%")
        self.zoom_label.setObjectName("zoomLabel")
        self.zoom_label.setMinimumWidth(38)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bar.addWidget(self.zoom_label)
        self.zoom_in_button = tool("zoomIn", "+", "Zoom in (Ctrl+=)", self.zoom_in)
        # Glyphs with tooltips keep the bar narrow: the viewer shares the window with the grid and the form.
        self.fit_width_button = tool("fitWidth", "↔", "Fit width: the page as wide as the viewer (Ctrl+0)",
                                     self.fit_width)
        self.fit_page_button = tool("fitPage", "⤢", "Fit page: show the whole page", self.fit_page)
        for b in (self.fit_width_button, self.fit_page_button):
            b.setAccessibleName(b.toolTip().split(":")[0])
        bar.addSpacing(6)
        self.rotate_left_button = tool("rotateLeft", "⟲", "Rotate left (Ctrl+[)", self.rotate_left)
        self.rotate_right_button = tool("rotateRight", "⟳", "Rotate right (Ctrl+])", self.rotate_right)
        bar.addStretch(1)
        self.name_label = QLabel("")
        self.name_label.setObjectName("documentName")
        self.name_label.setStyleSheet("color: palette(mid);")
        # The file name never widens the viewer: it is cut to the room left (full name in the tooltip).
        self.name_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.name_label.setMinimumWidth(0)
        bar.addWidget(self.name_label, 1)

        self.thumbs = QListWidget()
        self.thumbs.setObjectName("thumbnails")
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setFlow(QListWidget.Flow.TopToBottom)
        self.thumbs.setWrapping(False)
        self.thumbs.setMovement(QListWidget.Movement.Static)
        self.thumbs.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.thumbs.setSpacing(4)
        self.thumbs.setUniformItemSizes(True)
        self.thumbs.setFixedWidth(THUMB_SIDE + 34)
        self.thumbs.currentRowChanged.connect(self._on_thumbs_current_row_changed)

        self.page_label = PagePicture()
        self.page_area = QScrollArea()
        self.page_area.setObjectName("pageArea")
        self.page_area.setWidget(self.page_label)
        self.page_area.setWidgetResizable(False)
        self.page_area.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.page_area.setStyleSheet("QScrollArea { background: palette(dark); }")

        msg_box = QWidget()
        msg_layout = QVBoxLayout(msg_box)
        msg_layout.addStretch(1)
        self.message_label = QLabel("")
        self.message_label.setObjectName("viewerMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setStyleSheet("font-size: 11pt; padding: 16px;")
        msg_layout.addWidget(self.message_label)
        self.password_button = QPushButton("Enter password…")
        self.password_button.setObjectName("enterPassword")
        self.password_button.clicked.connect(self._on_password_button_clicked)
        self.password_button.setVisible(False)
        msg_layout.addWidget(self.password_button, 0, Qt.AlignmentFlag.AlignCenter)
        msg_layout.addStretch(2)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.page_area)
        self.stack.addWidget(msg_box)

        self.warning_label = QLabel("")
        self.warning_label.setObjectName("documentWarnings")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("background: #fff4d6; color: #5a4300; padding: 4px;")
        self.warning_label.setVisible(False)

        self._set_thumbs_empty(True)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.thumbs)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 1)
        split.setCollapsible(1, False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.warning_label)
        layout.addWidget(split, 1)

        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self._shortcuts: list[QShortcut] = []
        for keys, slot in (
            (QKeySequence.StandardKey.MoveToNextPage, self.next_page),
            (QKeySequence.StandardKey.MoveToPreviousPage, self.previous_page),
            (Qt.Key.Key_Home, self.first_page),
            (Qt.Key.Key_End, self.last_page),
            (QKeySequence("Ctrl+="), self.zoom_in),
            (QKeySequence("Ctrl++"), self.zoom_in),
            (QKeySequence("Ctrl+-"), self.zoom_out),
            (QKeySequence("Ctrl+0"), self.fit_width),
            (QKeySequence("Ctrl+["), self.rotate_left),
            (QKeySequence("Ctrl+]"), self.rotate_right),
        ):
            sc = QShortcut(QKeySequence(keys) if not isinstance(keys, QKeySequence) else keys, self)
            sc.setContext(ctx)
            sc.activated.connect(slot)
            self._shortcuts.append(sc)

        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(120)
        self._resize_timer.timeout.connect(self._on_resize_timer_timeout)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.prev_button, self.next_button, self.page_edit, self.zoom_in_button,
                  self.zoom_out_button, self.fit_width_button, self.fit_page_button,
                  self.rotate_left_button, self.rotate_right_button):
            w.setEnabled(on)

    # ------------------------------------------------------------------ public API

    @property
    def page_index(self) -> int:
        return self._page

    @property
    def page_count(self) -> int:
        return self._doc.page_count if self._doc else 0

    @property
    def rotation(self) -> int:
        return self._rotation

    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def fit_mode(self) -> str | None:
        return self._fit

    @property
    def message(self) -> str:
        """The message shown in place of the page ("" while a page is shown)."""
        return self._message if self.stack.currentIndex() == 1 else ""

    @property
    def busy(self) -> bool:
        return self._in_flight is not None or self._pending is not None or self._probing > 0

    @property
    def highlight_rect(self) -> QRectF | None:
        """The highlighted place as drawn on the page picture (its label's coordinates), or None."""
        return self.page_label.highlight

    def highlight(self, page_index: int, box: Box) -> None:
        """Mark ``box`` (``x0, y0, x1, y1`` in points in page ``page_index``'s own coordinates, before
        its /Rotate and the view's rotation) on the page, going to that page if another is shown, and
        scroll it into view."""
        self._highlight = (page_index, box)
        if self._doc is not None and page_index != self._page and 0 <= page_index < max(self.page_count, 1):
            self.page_label.set_highlight(None)
            self.go_to_page(page_index)  # drawn once the page is on screen
            return
        self._draw_highlight()

    def clear_highlight(self) -> None:
        """Remove the highlight."""
        self._highlight = None
        if self.page_label.highlight is not None:
            self.page_label.set_highlight(None)

    def _draw_highlight(self) -> None:
        shown, wanted = self._shown, self._highlight
        if shown is None or wanted is None or wanted[0] != shown.page or self.stack.currentIndex() != 0:
            self.page_label.set_highlight(None)
            return
        ratio = self.devicePixelRatioF() or 1.0
        label = self.page_label
        rect = shown.place(wanted[1], ratio).translated((label.width() - shown.width / ratio) / 2,
                                                        (label.height() - shown.height / ratio) / 2)
        label.set_highlight(rect)
        centre = rect.center()
        self.page_area.ensureVisible(int(centre.x()), int(centre.y()), int(rect.width() / 2) + 40,
                                     int(rect.height() / 2) + 40)

    def show_document(self, data: bytes, *, sha256: str, name: str, rotation: int = 0) -> None:
        """Show a document (bytes as stored); ``rotation`` is the saved view rotation."""
        self._cancel_all()
        self._shown = None
        self.clear_highlight()
        self._doc_gen += 1
        self._doc = _Doc(bytes(data), sha256, name)
        self._page = 0
        self._fit = "width"  # a new document opens at the viewer's width
        self._rotation = rotation % 360
        self._sizes.clear()
        self.thumbs.clear()
        self.name_label.setText(name)
        self.name_label.setToolTip(name)
        self.warning_label.setVisible(False)
        self._update_controls()
        self._show_message(f"Opening {name}…", busy=True)
        self._probe()

    def clear(self, message: str = "") -> None:
        """Empty the viewer, showing ``message`` (e.g. "No document attached") where the page was."""
        self._cancel_all()
        self._shown = None
        self.clear_highlight()
        self._doc_gen += 1
        self._doc = None
        self._page = 0
        self.thumbs.clear()
        self._set_thumbs_empty(True)
        self.name_label.setText("")
        self.warning_label.setVisible(False)
        self._set_enabled(False)
        self.page_edit.setText("")
        self.page_total.setText("/ 0")
        self._show_message(message)

    def go_to_page(self, index: int) -> None:
        if self._doc is None or self._doc.page_count == 0:
            return
        index = max(0, min(index, self._doc.page_count - 1))
        if index == self._page and self.stack.currentIndex() == 0 and not self.busy:
            return
        self._page = index
        self._update_controls()
        self.page_changed.emit(index)
        self._request_render()

    def next_page(self) -> None:
        self.go_to_page(self._page + 1)

    def previous_page(self) -> None:
        self.go_to_page(self._page - 1)

    def first_page(self) -> None:
        self.go_to_page(0)

    def last_page(self) -> None:
        self.go_to_page(self.page_count - 1)

    def set_zoom(self, zoom: float) -> None:
        self._fit = None
        self._zoom = max(ZOOM_STEPS[0], min(zoom, ZOOM_STEPS[-1]))
        self._update_controls()
        self._request_render()

    def zoom_in(self) -> None:
        self.set_zoom(next((z for z in ZOOM_STEPS if z > self._zoom + 1e-3), ZOOM_STEPS[-1]))

    def zoom_out(self) -> None:
        self.set_zoom(next((z for z in reversed(ZOOM_STEPS) if z < self._zoom - 1e-3), ZOOM_STEPS[0]))

    def fit_width(self) -> None:
        self._fit = "width"
        self._request_render()

    def fit_page(self) -> None:
        self._fit = "page"
        self._request_render()

    def set_rotation(self, rotation: int) -> None:
        """Set the view rotation (does not emit ``rotation_changed``: that is for the user's action)."""
        self._rotation = rotation % 360
        self._request_render(thumbnails=True)

    def rotate_left(self) -> None:
        self._rotate(-90)

    def rotate_right(self) -> None:
        self._rotate(90)

    def set_shortcuts_enabled(self, on: bool) -> None:
        """Turn the viewer's own keyboard shortcuts off when a window offers the same keys as actions
        (two shortcuts for one key would cancel each other)."""
        for sc in self._shortcuts:
            sc.setEnabled(on)

    def shutdown(self) -> None:
        """Stop rendering and the worker processes this viewer started."""
        self._cancel_all()
        for sb in self._own_sandboxes:
            sb.close()

    # ------------------------------------------------------------------ internals: probe

    def _probe(self, password: str | None = None) -> None:
        doc, gen = self._doc, self._doc_gen
        assert doc is not None
        sandbox, timeout = self.sandbox, self.probe_timeout

        def work(progress: Any, cancel: Any) -> Any:
            return sandbox.probe(doc.data, filename=doc.name, password=password, timeout=timeout,
                                 sha256=doc.sha256)

        def done(result: Any) -> None:
            if gen != self._doc_gen:
                return
            doc.password = password
            doc.page_count = result.page_count
            doc.first_size = result.first_page_size
            doc.warnings = tuple(result.warnings)
            if result.warnings:
                self.warning_label.setText("  ".join(result.warnings))
                self.warning_label.setVisible(True)
            if doc.page_count == 0:
                self._show_message(f"{doc.name}: the file has no pages that can be shown.")
                return
            self._fill_thumbnails()
            self._update_controls()
            self._request_render()

        def failed(error: BaseException) -> None:
            if gen != self._doc_gen or isinstance(error, Cancelled):
                return
            if isinstance(error, PasswordRequired):
                self._show_message(str(error), password=True)
                QTimer.singleShot(0, lambda: self._ask_and_retry(gen, isinstance(error, WrongPassword)))
                return
            self._show_error(error)

        self._probing += 1

        def done_(result: Any) -> None:
            if self._alive():
                self._probing -= 1
                done(result)

        def failed_(error: BaseException) -> None:
            if self._alive():
                self._probing -= 1
                failed(error)

        self.runner.run(work, on_done=done_, on_error=failed_)

    def _ask_and_retry(self, gen: int, wrong: bool) -> None:
        if gen != self._doc_gen or self._doc is None:
            return
        password = self.password_provider(self._doc.name, wrong)
        if password is None:
            self._show_message(f"{self._doc.name}: the file is protected by a password. "
                               "It is shown once the password is entered.", password=True)
            return
        self._show_message(f"Opening {self._doc.name}…", busy=True)
        self._probe(password)

    def _on_password_button_clicked(self) -> None:
        self._ask_and_retry(self._doc_gen, False)

    def _ask_password(self, name: str, wrong: bool) -> str | None:
        prompt = (f"The password for {name} is not right. Try again:" if wrong
                  else f"{name} is protected by a password. Enter it to open the file:")
        text, ok = QInputDialog.getText(self, "Password", prompt, QLineEdit.EchoMode.Password)
        return text if ok else None

    # ------------------------------------------------------------------ internals: pages

    def _target_dpi(self) -> float:
        ratio = self.devicePixelRatioF() or 1.0
        if self._fit is not None and self._doc is not None:
            size = self._sizes.get(self._page) or self._sizes.get(0) or self._doc.first_size or (612.0, 792.0)
            w, h = size
            if self._rotation in (90, 270):
                w, h = h, w
            vp = self.page_area.viewport().size()
            avail_w = max(vp.width() - 24, 100)
            avail_h = max(vp.height() - 24, 100)
            zoom = avail_w / w
            if self._fit == "page":
                zoom = min(zoom, avail_h / h)
            self._zoom = max(0.1, min(zoom, ZOOM_STEPS[-1]))
            self._update_zoom_label()
        return 72.0 * self._zoom * ratio

    def _request_render(self, *, thumbnails: bool = False) -> None:
        if self._doc is None or self._doc.page_count == 0:
            return
        self._gen += 1
        req = _Request(self._gen, self._doc, self._page, self._target_dpi(), self._rotation)
        if thumbnails:
            self._fill_thumbnails()
        if self._in_flight is None:
            self._start_render(req)
            return
        self._pending = req
        if (self._in_flight.doc is not req.doc or self._in_flight.page != req.page
                or time.monotonic() - self._in_flight_since > 0.4):
            self.sandbox.cancel()  # a superseded render is not worth waiting for

    def _start_render(self, req: _Request) -> None:
        self._in_flight = req
        self._in_flight_since = time.monotonic()
        sandbox, timeout = self.sandbox, self.timeout

        def work(progress: Any, cancel: Any) -> Any:
            return sandbox.render_page(req.doc.data, req.page, dpi=req.dpi, rotation=req.rotation,
                                       password=req.doc.password, timeout=timeout,
                                       filename=req.doc.name, sha256=req.doc.sha256)

        self.runner.run(work, on_done=lambda r: self._on_render_finished(req, r, None),
                        on_error=lambda e: self._on_render_finished(req, None, e))

    def _on_render_finished(self, req: _Request, page: Any, error: BaseException | None) -> None:
        if not self._alive():
            return
        self._in_flight = None
        current = req.gen == self._gen and req.doc is self._doc
        if current and error is None and page is not None:
            w_pt, h_pt = page.width * 72.0 / req.dpi, page.height * 72.0 / req.dpi
            if page.dpi:
                w_pt, h_pt = page.width * 72.0 / page.dpi, page.height * 72.0 / page.dpi
            if req.rotation in (90, 270):
                w_pt, h_pt = h_pt, w_pt
            known = self._sizes.get(req.page)
            self._sizes[req.page] = (w_pt, h_pt)
            if self._doc is not None and page.page_count and page.page_count != self._doc.page_count:
                self._doc.page_count = page.page_count
                self._update_controls()
            self._show_page(page, req)
            # The fit zoom was estimated from another page's size: redo it once with this page's.
            if (self._fit is not None and known is None and self._pending is None
                    and abs(self._target_dpi() - req.dpi) / req.dpi > 0.03):
                self._request_render()
                return
        elif current and error is not None and not isinstance(error, Cancelled):
            if isinstance(error, PasswordRequired):
                self._show_message(str(error), password=True)
            else:
                self._show_error(error)
        pending, self._pending = self._pending, None
        if pending is not None and pending.gen == self._gen and pending.doc is self._doc:
            self._start_render(pending)
        self._maybe_next_thumbnail()

    def _show_page(self, page: Any, req: _Request) -> None:
        image = png_image(page.png)
        if image.isNull():
            self._show_message(f"{req.doc.name}: page {req.page + 1} could not be displayed.")
            return
        ratio = self.devicePixelRatioF() or 1.0
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(ratio)
        self.page_label.setPixmap(pixmap)
        self.page_label.resize(int(image.width() / ratio) + 2, int(image.height() / ratio) + 2)
        self.stack.setCurrentIndex(0)
        self._shown = ShownPage(req.page, page.dpi or req.dpi, req.rotation, page.page_rotation, image.width(),
                             image.height())
        self._draw_highlight()
        self.password_button.setVisible(False)
        self._message = ""
        tip = f"Page {req.page + 1} of {self.page_count}"
        if page.scaled_down:
            tip += " (very large page: shown at a lower resolution)"
        self.page_label.setToolTip(tip)
        self._set_enabled(True)
        self._update_controls()
        self.page_painted.emit()

    def _show_message(self, text: str, *, password: bool = False, busy: bool = False) -> None:
        self._message = text
        self.message_label.setText(text)
        self.message_label.setStyleSheet(
            "font-size: 11pt; padding: 16px; color: %s;" % ("palette(mid)" if busy else "palette(text)"))
        self.password_button.setVisible(password)
        self.stack.setCurrentIndex(1)
        if not busy:
            self.message_shown.emit(text)

    def _show_error(self, error: BaseException) -> None:
        if isinstance(error, DocumentError):
            text = str(error)
        else:
            text = f"This document cannot be shown: {type(error).__name__}: {error}"
        if self._doc is not None and self._doc.page_count > 1:
            text += "\n\nOther pages may still be readable: use the page buttons or the thumbnails."
        self._show_message(text)
        self._update_controls()
        if self._doc is not None and self._doc.page_count > 1:
            self._set_enabled(True)

    def _update_zoom_label(self) -> None:
        self.zoom_label.setText(f"{round(self._zoom * 100)}%")

    def _update_controls(self) -> None:
        count = self.page_count
        self.page_edit.setText(str(self._page + 1) if count else "")
        self.page_total.setText(f"/ {count}")
        self.prev_button.setEnabled(count > 0 and self._page > 0)
        self.next_button.setEnabled(count > 0 and self._page < count - 1)
        self._update_zoom_label()
        if 0 <= self._page < self.thumbs.count() and self.thumbs.currentRow() != self._page:
            self.thumbs.blockSignals(True)
            self.thumbs.setCurrentRow(self._page)
            self.thumbs.blockSignals(False)
            self.thumbs.scrollToItem(self.thumbs.item(self._page))

    def _rotate(self, delta: int) -> None:
        if self._doc is None:
            return
        self._rotation = (self._rotation + delta) % 360
        self.rotation_changed.emit(self._rotation)
        self._request_render(thumbnails=True)

    def _on_page_edit_return(self) -> None:
        try:
            self.go_to_page(int(self.page_edit.text()) - 1)
        except ValueError:
            self._update_controls()

    def _on_thumbs_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self.go_to_page(row)

    def _thumbnails_wanted(self) -> bool:
        """Thumbnails for a document of several pages, when they leave the page a readable width (in a
        narrow pane the page, at fit width, matters more; the page buttons still move through it)."""
        doc = self._doc
        return (self.thumbnails_enabled and doc is not None and doc.page_count > 1
                and self.width() >= THUMBNAILS_ROOM)

    def _show_thumbnails(self, on: bool) -> None:
        """Show or hide the thumbnails; a fit-width page is fitted again once the layout has given the
        page area its new width."""
        if self.thumbs.isVisibleTo(self) == on:
            return
        self.thumbs.setVisible(on)
        if self._fit is not None:
            self._resize_timer.start()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self._doc is not None:
            self._show_thumbnails(self._thumbnails_wanted())
        if self._fit is not None and self._doc is not None:
            self._resize_timer.start()

    def _on_resize_timer_timeout(self) -> None:
        if self._fit is not None and self._doc is not None and self.stack.currentIndex() == 0:
            old = self._zoom
            self._target_dpi()
            if abs(self._zoom - old) / old > 0.02:
                self._request_render()

    # ------------------------------------------------------------------ internals: thumbnails

    def _thumb_placeholder(self) -> QIcon:
        pm = QPixmap(int(THUMB_SIDE * 0.77), THUMB_SIDE)
        pm.fill(QColor("#f2f2f2"))
        p = QPainter(pm)
        p.setPen(QColor("#c8c8c8"))
        p.drawRect(0, 0, pm.width() - 1, pm.height() - 1)
        p.end()
        return QIcon(pm)

    def _fill_thumbnails(self) -> None:
        doc = self._doc
        if doc is None:
            return
        self.thumbs.blockSignals(True)
        self.thumbs.clear()
        placeholder = self._thumb_placeholder()
        for i in range(doc.page_count if self.thumbnails_enabled else 0):
            item = QListWidgetItem(placeholder, str(i + 1))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            item.setToolTip(f"Page {i + 1}")
            self.thumbs.addItem(item)
            if i >= 9999:
                break
        if 0 <= self._page < self.thumbs.count():
            self.thumbs.setCurrentRow(self._page)
        self.thumbs.blockSignals(False)
        self._set_thumbs_empty(self.thumbs.count() == 0)
        self._show_thumbnails(self._thumbnails_wanted())
        self._thumb_next = 0

    def _set_thumbs_empty(self, empty: bool) -> None:
        """An empty thumbnail list takes the window's colour and no frame: beside no document it stood as a
        blank white strip. (It keeps its place: hiding it would move the page when a document comes.)"""
        self.thumbs.setProperty("empty", empty)
        self.thumbs.setStyleSheet("QListWidget { background: palette(window); border: none; }" if empty else "")

    def _thumbnail_sandbox(self) -> DocumentSandbox:
        if self._thumb_sandbox is None:
            self._thumb_sandbox = DocumentSandbox(cache_size=2)
            self._own_sandboxes.append(self._thumb_sandbox)
        return self._thumb_sandbox

    def _alive(self) -> bool:
        """Whether this viewer and its widgets still exist: a shared task runner can outlive the viewer
        and deliver a result after it was closed (seen in CI as "QListWidget already deleted")."""
        return isValid(self) and isValid(self.thumbs) and isValid(self.page_label)

    def _maybe_next_thumbnail(self) -> None:
        """Thumbnails render one at a time in their own worker, after the page is on screen."""
        doc = self._doc
        if (self._thumb_busy or doc is None or not self.thumbnails_enabled or doc.page_count < 2
                or self._thumb_next >= min(doc.page_count, MAX_THUMBNAILS, self.thumbs.count())):
            return
        index, key = self._thumb_next, (self._doc_gen, self._rotation)
        self._thumb_next += 1
        self._thumb_busy = True
        sandbox, timeout, rotation = self._thumbnail_sandbox(), self.thumbnail_timeout, self._rotation

        def work(progress: Any, cancel: Any) -> Any:
            return sandbox.render_thumbnail(doc.data, index, max_side=THUMB_SIDE, rotation=rotation,
                                            password=doc.password, timeout=timeout, filename=doc.name,
                                            sha256=doc.sha256)

        def finished(result: Any, error: BaseException | None) -> None:
            if not self._alive():
                return
            self._thumb_busy = False
            if key != (self._doc_gen, self._rotation) or doc is not self._doc:
                self._maybe_next_thumbnail()
                return
            item = self.thumbs.item(index)
            if item is not None:
                if result is not None:
                    img = png_image(result.png)
                    if not img.isNull():
                        item.setIcon(QIcon(QPixmap.fromImage(img)))
                elif error is not None and not isinstance(error, Cancelled):
                    item.setText(f"{index + 1} ⚠")
                    item.setToolTip(str(error))
            self._maybe_next_thumbnail()

        self.runner.run(work, on_done=lambda r: finished(r, None), on_error=lambda e: finished(None, e))

    # ------------------------------------------------------------------ internals: cancelling

    def _cancel_all(self) -> None:
        self._gen += 1
        self._pending = None
        if self._in_flight is not None or self._probing:
            self.sandbox.cancel()
        if self._thumb_busy and self._thumb_sandbox is not None:
            self._thumb_sandbox.cancel()
        self._thumb_next = 1 << 30
