"""The filter bar fits a 1280-pixel screen whatever forms the rules pack lists and whatever fonts the system
draws with: on a desktop whose fonts are wider than the test platform's, the bar asked for 1,375 pixels
(its form list as wide as its longest code), and the desk's right-hand side was cut off at 1280 x 800."""

from __future__ import annotations

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.views.certificates.filter_bar import FilterBar

LONG_CODE = "XX-" + "VERY-LONG-FORM-CODE-" * 4


def test_a_long_form_code_does_not_widen_the_bar(qtbot) -> None:  # type: ignore[no-untyped-def]
    forms = sorted(load_rules_pack().forms)
    short = FilterBar(["TX"], ["TX-01-339"])
    every = FilterBar(["TX"], [*forms, LONG_CODE])
    qtbot.addWidget(short)
    qtbot.addWidget(every)
    assert every.minimumSizeHint().width() == short.minimumSizeHint().width()
    # The list still opens wide enough to read every code, and the chosen one is in the tooltip.
    assert every.form_combo.view().minimumWidth() >= every.form_combo.view().sizeHintForColumn(0)
    every.form_combo.setCurrentIndex(every.form_combo.findData(LONG_CODE))
    assert LONG_CODE in every.form_combo.toolTip()


def test_the_whole_bar_fits_a_1280_pixel_screen(qtbot) -> None:  # type: ignore[no-untyped-def]
    """With the claims filter added, the bar asked for 1,367 pixels (seen in a real window at 1280 x 800):
    the desk's window then cannot be made 1280 wide. Room is left for the window's frame."""
    bar = FilterBar(["TX", "WA"], [*sorted(load_rules_pack().forms), LONG_CODE])
    qtbot.addWidget(bar)
    assert bar.minimumSizeHint().width() <= 1240, bar.minimumSizeHint().width()
