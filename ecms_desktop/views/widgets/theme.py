"""Status colours for light and dark palettes, and the application's look.

A status is always shown as text in a pill, never as colour alone; the colours only help the eye.
Each pair (background, text) keeps a contrast ratio of at least 4.5:1 (WCAG AA) in both palettes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ecms_desktop.models import Status


@dataclass(frozen=True)
class BadgeColors:
    """Fill, text and outline of a status badge."""

    background: str
    foreground: str
    border: str


#: Status -> colours on a light window background.
LIGHT: dict[Status, BadgeColors] = {
    Status.ACTIVE: BadgeColors("#DCF5E3", "#14532D", "#86CFA0"),
    Status.EXPIRING_SOON: BadgeColors("#FFF1CC", "#6B4500", "#E8B94A"),
    Status.EXPIRED: BadgeColors("#FDE0E0", "#8A1C1C", "#E59A9A"),
    Status.ARCHIVED: BadgeColors("#E8EAED", "#3C4043", "#BDC1C6"),
    Status.PENDING_REVIEW: BadgeColors("#DDEBFF", "#12408A", "#8EB4EE"),
    Status.REJECTED: BadgeColors("#F1E2F7", "#5E1F78", "#C79BDB"),
}

#: Status -> colours on a dark window background.
DARK: dict[Status, BadgeColors] = {
    Status.ACTIVE: BadgeColors("#173D26", "#B7F0C8", "#2F7A4B"),
    Status.EXPIRING_SOON: BadgeColors("#4A3508", "#FFDF8A", "#9C7418"),
    Status.EXPIRED: BadgeColors("#4F1A1A", "#FFC2C2", "#A04545"),
    Status.ARCHIVED: BadgeColors("#34373B", "#D7DADF", "#5F6368"),
    Status.PENDING_REVIEW: BadgeColors("#17325C", "#C4DBFF", "#3F6FB5"),
    Status.REJECTED: BadgeColors("#3D1F4D", "#E8C7F5", "#7E4A99"),
}

#: Order in which statuses are listed (status strip, filter bar).
STATUS_ORDER: tuple[Status, ...] = (Status.ACTIVE, Status.EXPIRING_SOON, Status.EXPIRED,
                                    Status.PENDING_REVIEW, Status.REJECTED, Status.ARCHIVED)


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether the palette has a dark window background."""
    if palette is None:
        app = QApplication.instance()
        palette = app.palette() if isinstance(app, QApplication) else QPalette()
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def badge_colors(status: Status, palette: QPalette | None = None, *, dark: bool | None = None) -> BadgeColors:
    """The badge colours of ``status`` for the palette (or for ``dark`` when given)."""
    use_dark = is_dark(palette) if dark is None else dark
    return (DARK if use_dark else LIGHT)[Status(status)]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio between two colours (1 to 21)."""

    def luminance(hex_colour: str) -> float:
        c = QColor(hex_colour)
        parts = []
        for v in (c.redF(), c.greenF(), c.blueF()):
            parts.append(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4)
        return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]

    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def dark_palette() -> QPalette:
    """A calm dark palette for the Fusion style."""
    p = QPalette()
    role = QPalette.ColorRole
    for r, colour in ((role.Window, "#202124"), (role.WindowText, "#E8EAED"), (role.Base, "#18191B"),
                      (role.AlternateBase, "#232427"), (role.Text, "#E8EAED"), (role.Button, "#2A2B2E"),
                      (role.ButtonText, "#E8EAED"), (role.Highlight, "#3B6FB6"),
                      (role.HighlightedText, "#FFFFFF"), (role.ToolTipBase, "#2A2B2E"),
                      (role.ToolTipText, "#E8EAED"), (role.PlaceholderText, "#9AA0A6"),
                      (role.Link, "#8AB4F8"),
                      (role.Mid, "#3C4043"), (role.Midlight, "#303134"), (role.Dark, "#111214")):
        p.setColor(r, QColor(colour))
    p.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor("#7F8388"))
    p.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor("#7F8388"))
    return p


def apply_theme(app: QApplication, theme: str = "system") -> None:
    """Use the Fusion style (same look on every platform) with a light, dark or system palette."""
    app.setStyle("Fusion")
    if theme == "dark":
        app.setPalette(dark_palette())
    elif theme == "light":
        app.setPalette(app.style().standardPalette())
