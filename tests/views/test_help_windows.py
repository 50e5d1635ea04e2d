"""Help > About and Help > User guide, opened from the desk's Help menu."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QTextDocument

import ecms_desktop
from ecms_desktop import logfile, paths
from ecms_desktop.views.main_window import MainWindow

AS_OF = dt.date(2026, 6, 1)


def _window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    return window


def test_about_names_version_rules_database_log_licence_and_source(qtbot, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, tmp_path)
    with qtbot.waitSignal(window.database_opened, timeout=15000):
        window.set_database(db)
    help_menu = next(m for m in window.menus if m.title() == "&Help")
    assert [a.text() for a in help_menu.actions()][-2:] == ["&User guide", "&About ECMS Desktop"]
    window.act_about.trigger()
    about = window.about_dialog
    assert about is not None and about.isVisible()
    shown = {key: label.text() for key, label in about.values.items()}
    assert shown["version"] == ecms_desktop.__version__
    assert shown["rules"] == f"{window.rules.title}, version {window.rules.version}"
    assert shown["database"] == db.display_url
    assert shown["log"] == str(logfile.log_file())
    assert "AGPL-3.0-or-later" in shown["licence"]
    assert str(Path(ecms_desktop.__file__).resolve().parent) in about.findChild(type(about.values["version"]),
                                                                              "aboutSource").text()
    # The links to the notices, the licence texts and the source: in a source checkout, the repository's files.
    links = about.findChild(type(about.values["version"]), "aboutLinks")
    targets = [QUrl(href).toLocalFile() for href in re.findall(r'href="([^"]+)"', links.text())]
    repo = Path(ecms_desktop.__file__).resolve().parent.parent
    assert targets == [str(repo / "THIRD-PARTY-NOTICES.md"), str(repo / "installer" / "licenses"), str(repo)]
    assert list(about.links) == ["Third-party notices", "Licence texts", "Source code"]
    assert all(Path(t).exists() for t in targets)
    assert (repo / "installer" / "licenses" / "LGPL-3.0.txt").is_file()
    window.shutdown()


def test_in_a_bundle_about_links_to_the_files_beside_the_program(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A PyInstaller bundle: the notices installer/notices.py wrote beside the executable, and the source offer."""
    from ecms_desktop.rules import load_rules_pack
    from ecms_desktop.services.core.about import program_facts
    from ecms_desktop.views.help_windows import AboutDialog

    bundle = tmp_path / "ecms-desktop"
    (bundle / "licenses").mkdir(parents=True)
    for name in ("THIRD-PARTY-NOTICES.md", "SOURCE-OFFER.md", "ecms-desktop"):
        (bundle / name).write_text("x", encoding="utf-8")
    monkeypatch.setattr("sys.frozen", True, raising=False)
    monkeypatch.setattr("sys.executable", str(bundle / "ecms-desktop"))
    facts = program_facts(load_rules_pack(), None)
    about = AboutDialog(facts)
    qtbot.addWidget(about)
    assert about.links == {"Third-party notices": bundle / "THIRD-PARTY-NOTICES.md",
                           "Licence texts": bundle / "licenses", "Source code offer": bundle / "SOURCE-OFFER.md"}
    assert "source folder beside the program" in facts.source and str(facts.installed_in) not in facts.source


def test_the_user_guide_opens_with_its_pictures(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, tmp_path)
    window.act_user_guide.trigger()
    guide = window.user_guide_window
    assert guide is not None and guide.isVisible()
    text = guide.browser.toPlainText()
    assert "ECMS Desktop: a short user guide" in text and "Ctrl+Shift+R rejects" in text
    pictures = re.findall(r"\]\((screenshots/[^)]+\.png)\)", paths.user_guide().read_text(encoding="utf-8"))
    assert len(pictures) >= 5
    for picture in pictures:
        assert (paths.user_guide().parent / picture).is_file(), picture
        image = guide.browser.document().resource(QTextDocument.ResourceType.ImageResource, QUrl(picture))
        assert image is not None and not image.isNull(), picture
    # Seen under Xvfb: the 1440-pixel screenshots at their own size needed a horizontal scroll bar.
    guide.resize(900, 700)
    qtbot.waitUntil(lambda: guide.browser.horizontalScrollBar().maximum() == 0, timeout=5000)
    # ... and as wide as the text allows (they were shrunk to 200 pixels while the window was laid out)
    widths = [f.toImageFormat().width() for f in _fragments(guide.browser.document()) if f.isImageFormat()]
    assert widths and max(widths) > 600, widths
    window.act_user_guide.trigger()  # once open, it is brought forward, not opened twice
    assert window.user_guide_window is guide
    window.shutdown()


def _fragments(document):  # type: ignore[no-untyped-def]
    """The character formats of every fragment of ``document``."""
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            yield it.fragment().charFormat()
            it += 1
        block = block.next()
