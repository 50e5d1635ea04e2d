"""Help > About ECMS Desktop (version, rules pack, database, licence, where the source is) and Help > User guide (the
guide shipped with the program, with its screenshots)."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QImageReader, QResizeEvent, QTextCursor, QTextImageFormat
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop import logfile
from ecms_desktop.services.core.about import ProgramFacts
from ecms_desktop.views.widgets.screen_fit import first_size


class AboutDialog(QDialog):
    """What the program is, for a problem report: version, rules pack, database, log file; its licence and
    how to get its source."""

    def __init__(self, facts: ProgramFacts, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About ECMS Desktop")
        self.facts = facts
        layout = QVBoxLayout(self)
        title = QLabel(f"<h2>ECMS Desktop {html.escape(facts.version)}</h2>"
                       "Sales-tax exemption certificates that stand up in a state audit.")
        title.setObjectName("aboutTitle")
        title.setWordWrap(True)
        layout.addWidget(title)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel] = {}
        for key, label, value in (
            ("version", "Version", facts.version),
            ("rules", "Rules pack", f"{facts.rules_title}, version {facts.rules_version}"),
            ("database", "Database", facts.database or "none open"),
            ("log", "Log file", str(logfile.log_file())),
            ("licence", "Licence", facts.licence),
        ):
            shown = QLabel(value)
            shown.setObjectName(f"about_{key}")
            shown.setWordWrap(True)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # to copy into a report
            self.values[key] = shown
            form.addRow(f"{label}:", shown)
        layout.addLayout(form)
        source = QLabel(facts.source)
        source.setObjectName("aboutSource")
        source.setWordWrap(True)
        source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(source)
        files = facts.notices
        source_name = "Source code offer" if files.bundled else "Source code"
        #: The links to the notices, the licence texts and the source (offer), by what they open.
        self.links: dict[str, Path] = {"Third-party notices": files.notices, "Licence texts": files.licences,
                                       source_name: files.source}
        links = QLabel(" · ".join(f'<a href="{QUrl.fromLocalFile(str(path)).toString()}">{html.escape(name)}</a>'
                                  for name, path in self.links.items()))
        links.setObjectName("aboutLinks")
        links.setTextFormat(Qt.TextFormat.RichText)
        links.setToolTip("Opens the file or folder in your system's viewer")
        links.linkActivated.connect(self._on_links_link_activated)
        layout.addWidget(links)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def _on_links_link_activated(self, link: str) -> None:
        QDesktopServices.openUrl(QUrl(link))


class UserGuideWindow(QDialog):
    """The user guide (Markdown) with its pictures; links to other sites open in the web browser."""

    def __init__(self, guide: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("userGuide")
        self.setWindowTitle("ECMS Desktop user guide")
        self.setWindowFlag(Qt.WindowType.Window, True)  # a window of its own, beside the desk
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("userGuideText")
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._on_browser_anchor_clicked)
        # Pictures are named relative to the guide (screenshots/x.png).
        self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(guide.parent) + "/"))
        self.browser.setSearchPaths([str(guide.parent)])
        self.browser.setMarkdown(guide.read_text(encoding="utf-8"))
        self.guide = guide
        #: Each picture's own size, by its name in the guide.
        self._picture_sizes: dict[str, QSize] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(first_size(self, 980, 860))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        QTimer.singleShot(0, self.fit_pictures)  # once the layout has given the text its new width

    def fit_pictures(self) -> None:
        """Pictures no wider than the text (the screenshots are 1440 pixels wide: at their own size they
        needed a horizontal scroll bar), never enlarged."""
        room = max(200, self.browser.viewport().width() - 2 * int(self.browser.document().documentMargin()) - 8)
        doc = self.browser.document()
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                fmt = fragment.charFormat()
                if fragment.isValid() and fmt.isImageFormat():
                    image = fmt.toImageFormat()
                    size = self._picture_sizes.get(image.name())
                    if size is None:  # read once: a resize calls this again and again
                        size = QImageReader(doc.baseUrl().resolved(QUrl(image.name())).toLocalFile()).size()
                        self._picture_sizes[image.name()] = size
                    if size.isValid() and size.width() > 0:
                        width = min(size.width(), room)
                        if abs(image.width() - width) > 1:
                            fitted = QTextImageFormat(image)
                            fitted.setWidth(width)
                            fitted.setHeight(size.height() * width / size.width())
                            cursor = QTextCursor(doc)
                            cursor.setPosition(fragment.position())
                            cursor.setPosition(fragment.position() + fragment.length(),
                                               QTextCursor.MoveMode.KeepAnchor)
                            cursor.setCharFormat(fitted)
                it += 1
            block = block.next()

    def _on_browser_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
        else:
            self.browser.setSource(url)
