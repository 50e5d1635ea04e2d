"""Draw the application icon's PNG sizes and the Windows .ico from resources/icons/ecms-desktop.svg.

    python installer/make_icons.py [--out DIR]

Writes ecms-desktop-<size>.png for 16, 32, 48, 64, 128, 256 and 512 pixels and ecms-desktop.ico (16 to
256, PNG-compressed entries as Windows Vista and later read them) into DIR (default: resources/icons,
where the committed copies live). Rendered with PySide6's QtSvg, so it needs no other tool.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "icons" / "ecms-desktop.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 32, 48, 64, 128, 256)  # an .ico entry is at most 256 pixels


def render_pngs(svg: Path, out: Path) -> dict[int, bytes]:
    """Each size drawn from the SVG (not scaled from another PNG), as PNG bytes, also written to ``out``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 - QPainter needs one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG picture")
    pngs: dict[int, bytes] = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        pngs[size] = bytes(data.data())
        (out / f"ecms-desktop-{size}.png").write_bytes(pngs[size])
    return pngs


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An .ico file holding the PNGs: the ICONDIR header, one ICONDIRENTRY per image, then the images."""
    entries = [(size, pngs[size]) for size in ICO_SIZES]
    header = struct.pack("<HHH", 0, 1, len(entries))
    offset = len(header) + 16 * len(entries)
    directory, images = b"", b""
    for size, png in entries:
        side = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        directory += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + directory + images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SVG.parent, help="folder for the PNGs and the .ico")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    pngs = render_pngs(SVG, args.out)
    (args.out / "ecms-desktop.ico").write_bytes(ico_bytes(pngs))
    print(f"make_icons: {len(pngs)} PNG sizes and ecms-desktop.ico in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
