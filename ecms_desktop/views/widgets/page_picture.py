"""The document viewer's page picture, and where a place given in a page's own coordinates (a value read
from it) lands on that picture once the page's /Rotate, the view's rotation and the zoom are applied."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel

from ecms_desktop.services.documents.results import turn_box

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ShownPage:
    """A page picture as rendered: which page (0-based), at what dpi, turned how (the view's
    ``rotation`` and the page's own ``page_rotation``, both clockwise), its size in device pixels."""

    page: int
    dpi: float
    rotation: int
    page_rotation: int
    width: int
    height: int

    def place(self, box: Box, ratio: float) -> QRectF:
        """``box`` (points, the page's own unrotated coordinates) on the picture, in logical pixels from
        the picture's top left (``ratio``: the screen's device pixel ratio)."""
        per_point = self.dpi / 72.0  # device pixels per point
        turn = (self.page_rotation + self.rotation) % 360
        width, height = self.width / per_point, self.height / per_point
        if turn in (90, 270):
            width, height = height, width  # the page's own size
        x0, y0, x1, y1 = turn_box(box, width, height, turn)
        scale = per_point / ratio
        return QRectF(x0 * scale, y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale)


class PagePicture(QLabel):
    """The page picture, centred in the viewer's scroll area, with a place on it highlighted."""

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setObjectName("pageImage")
        self.setStyleSheet("background: white; border: 1px solid #b8b8b8;")
        #: The place highlighted (in this label's coordinates), None when there is none.
        self.highlight: QRectF | None = None

    def set_highlight(self, rect: QRectF | None) -> None:
        self.highlight = rect
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.highlight is not None:
            painter = QPainter(self)
            pen = QPen(QColor("#e65100"))
            pen.setWidthF(2.0)
            painter.setPen(pen)
            painter.setBrush(QColor(255, 193, 7, 70))
            painter.drawRect(self.highlight.adjusted(-2, -2, 2, 2))
            painter.end()
