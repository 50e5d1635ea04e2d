"""Status badges: a rounded pill with the status text, coloured per status, legible in light and dark."""

from __future__ import annotations

from collections import Counter

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QStyleOptionViewItem, QTableView

from ecms_desktop.models import Status
from ecms_desktop.views.certificates.status_badge_delegate import STATUS_ROLE, StatusBadgeDelegate
from ecms_desktop.views.widgets.theme import DARK, LIGHT, contrast_ratio


def paint_badge(qtbot, status: Status | None, *, dark: bool, text: str | None = None) -> QImage:  # type: ignore[no-untyped-def]
    model = QStandardItemModel(1, 1)
    item = QStandardItem(text if text is not None else (status.label if status else "plain"))
    if status is not None:
        item.setData(status.value, STATUS_ROLE)
    model.setItem(0, 0, item)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    delegate = StatusBadgeDelegate(view, dark=dark)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 160, 28)
    option.font = view.font()
    option.palette = view.palette()
    option.widget = view
    image = QImage(160, 28, QImage.Format.Format_ARGB32)
    image.fill(QColor("#FFFFFF") if not dark else QColor("#18191B"))
    painter = QPainter(image)
    delegate.paint(painter, option, model.index(0, 0))
    painter.end()
    return image


def near(image: QImage, colour: str, tolerance: int = 40) -> int:
    """How many pixels are within ``tolerance`` (per channel) of ``colour``."""
    want = QColor(colour)
    n = 0
    for x in range(image.width()):
        for y in range(image.height()):
            c = image.pixelColor(x, y)
            if max(abs(c.red() - want.red()), abs(c.green() - want.green()), abs(c.blue() - want.blue())) <= tolerance:
                n += 1
    return n


def colours(image: QImage) -> Counter[str]:
    return Counter(image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height()))


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_each_status_paints_its_own_fill_and_text(qtbot, dark: bool) -> None:  # type: ignore[no-untyped-def]
    table = DARK if dark else LIGHT
    seen_fills = set()
    for status in Status:
        image = paint_badge(qtbot, status, dark=dark)
        found = colours(image)
        fill = table[status].background.lower()
        text = table[status].foreground.lower()
        assert found[fill] > 500, f"{status}: the pill fill {fill} is not painted"
        # glyphs are antialiased: pixels close to the text colour form the letters
        assert near(image, text) > 20, f"{status}: no text painted in {text}"
        # the pill is rounded: the corner pixel keeps the background
        assert image.pixelColor(4, 3).name() != fill
        seen_fills.add(fill)
    assert len(seen_fills) == len(Status)


def test_text_is_what_distinguishes_statuses(qtbot) -> None:  # type: ignore[no-untyped-def]
    a = paint_badge(qtbot, Status.EXPIRED, dark=False)
    b = paint_badge(qtbot, Status.EXPIRED, dark=False, text="Expired (2 states)")
    assert a != b  # the label is drawn, not only a colour
    plain = paint_badge(qtbot, None, dark=False)
    assert colours(plain)[LIGHT[Status.EXPIRED].background.lower()] == 0


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=["light", "dark"])
def test_badge_colours_are_legible(palette) -> None:  # type: ignore[no-untyped-def]
    for status, c in palette.items():
        assert contrast_ratio(c.background, c.foreground) >= 4.5, status


def test_size_hint_fits_the_label(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = QTableView()
    qtbot.addWidget(view)
    model = QStandardItemModel(1, 1)
    item = QStandardItem(Status.PENDING_REVIEW.label)
    item.setData(Status.PENDING_REVIEW.value, STATUS_ROLE)
    model.setItem(0, 0, item)
    option = QStyleOptionViewItem()
    option.font = view.font()
    hint = StatusBadgeDelegate(view).sizeHint(option, model.index(0, 0))
    assert hint.width() > view.fontMetrics().horizontalAdvance("Pending review")
