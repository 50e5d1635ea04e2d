"""The mouse wheel over a combo box, spin box or date edit that does not have the focus scrolls the
form around it and changes nothing; with the focus, the wheel changes the value as usual."""

from __future__ import annotations

from PySide6.QtCore import QDate, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QDateEdit, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from ecms_desktop.views.widgets.wheel_guard import install_wheel_guard
from tests.factories import DESK_CASES, make_desk_certificate


def wheel(widget: QWidget, steps: int = -1) -> None:
    """A real wheel turn over ``widget``: delivered to its window as the platform does (so Qt gives
    focus and propagates as it would for a user)."""
    window = widget.window().windowHandle()
    local = QPointF(widget.mapTo(widget.window(), widget.rect().center()))
    glob = QPointF(widget.mapToGlobal(widget.rect().center()))
    event = QWheelEvent(local, glob, QPoint(), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(window, event)


def test_the_wheel_scrolls_the_form_instead_of_changing_unfocused_values(qtbot):
    install_wheel_guard()
    page = QWidget()
    layout = QVBoxLayout(page)
    combo, spin, date = QComboBox(), QSpinBox(), QDateEdit(QDate(2026, 6, 1))
    combo.addItems(["Blanket", "Single use", "Other"])
    spin.setRange(0, 100)
    spin.setValue(50)
    layout.addWidget(QWidget(minimumHeight=400))
    for w in (combo, spin, date):
        layout.addWidget(w)
    layout.addWidget(QWidget(minimumHeight=900))
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(page)
    area.resize(400, 500)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    area.activateWindow()
    area.ensureWidgetVisible(combo)
    bar = area.verticalScrollBar()
    for w, value in ((combo, lambda: combo.currentIndex()), (spin, spin.value), (date, date.date)):
        area.ensureWidgetVisible(w)
        area.setFocus()
        before, scrolled = value(), bar.value()
        wheel(w)
        assert value() == before, f"{type(w).__name__} changed under the wheel without the focus"
        assert not w.hasFocus() and w.focusPolicy() == Qt.FocusPolicy.StrongFocus, "the wheel would focus it"
        assert bar.value() != scrolled, "the form did not scroll"
    # With the focus the wheel works as usual.
    area.ensureWidgetVisible(spin)
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=3000)
    center = QPointF(spin.rect().center())
    QApplication.sendEvent(spin, QWheelEvent(center, QPointF(spin.mapToGlobal(center.toPoint())), QPoint(),
                                             QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                             Qt.ScrollPhase.NoScrollPhase, False))
    assert spin.value() == 51


def test_the_certificate_type_is_not_flipped_by_scrolling_the_form(qtbot, db, company_id):
    import datetime as dt

    from ecms_desktop.rules import load_rules_pack
    from ecms_desktop.views.certificates.form import CertificateForm

    rules = load_rules_pack()
    form = CertificateForm(db, rules)
    as_of = dt.date(2026, 6, 1)
    form.set_as_of(as_of)
    qtbot.addWidget(form)
    form.resize(700, 520)
    form.show()
    qtbot.waitExposed(form)
    form.load(make_desk_certificate(db, company_id, as_of=as_of, rules=rules, **DESK_CASES["TX"]))
    combo = form.builder.editor("certificate_type")
    qtbot.waitUntil(lambda: form.form_scroll.verticalScrollBar().maximum() > 0 and combo.height() > 0, timeout=5000)
    form.form_scroll.ensureWidgetVisible(combo)
    form.save_button.setFocus()
    before = combo.currentData()
    bar = form.form_scroll.verticalScrollBar()
    scrolled = bar.value()
    wheel(combo, steps=-1)
    assert combo.currentData() == before == "blanket"
    assert not form.is_dirty() and bar.value() != scrolled
