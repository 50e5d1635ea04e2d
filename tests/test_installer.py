"""The Linux packaging helpers: the ELF reader (what a library needs, the oldest glibc), the bundle slimming
rules (what is left out, and that what is still needed stays), the .desktop file and the Windows icon.
The package itself is built and smoke-tested by ./scripts/test (installer/build.sh, installer/smoke_test.py)."""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import struct
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALLER = REPO / "installer"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF files and .deb packages: Linux only")


def load(name: str) -> ModuleType:
    if str(INSTALLER) not in sys.path:
        sys.path.insert(0, str(INSTALLER))  # slim.py imports elfinfo as the spec does
    spec = importlib.util.spec_from_file_location(name, INSTALLER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def qt_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).parent


def test_elf_needed_and_glibc_of_real_libraries(tmp_path: Path) -> None:
    elfinfo = load("elfinfo")
    widgets = qt_dir() / "Qt" / "lib" / "libQt6Widgets.so.6"
    names = elfinfo.needed(widgets)
    assert "libQt6Gui.so.6" in names and "libQt6Core.so.6" in names and "libc.so.6" in names
    versions = elfinfo.symbol_versions(widgets)
    assert any(v.startswith("GLIBC_2.") for v in versions) and any(v.startswith("Qt_6") for v in versions)
    assert not elfinfo.is_elf(REPO / "pyproject.toml")
    with pytest.raises(ValueError, match="not a 64-bit little-endian ELF"):
        elfinfo.needed(REPO / "pyproject.toml")
    # the newest GLIBC_ version of a folder is that of the file that needs the newest
    shutil.copy(widgets, tmp_path / "libQt6Widgets.so.6")
    shutil.copy(qt_dir() / "Qt" / "lib" / "libQt6Core.so.6", tmp_path / "libQt6Core.so.6")
    (tmp_path / "notes.txt").write_text("not an ELF file")
    newest, where = elfinfo.newest_glibc(tmp_path)
    per_file = {p.name: max((v for v in elfinfo.symbol_versions(p) if v.startswith("GLIBC_2")),
                            key=elfinfo._version_key) for p in tmp_path.glob("lib*")}
    assert newest == max(per_file.values(), key=elfinfo._version_key) and where is not None
    assert per_file[where.name] == newest
    # the libraries the folder does not carry: the system's, each with a file that needs it
    system = elfinfo.from_the_system(tmp_path)
    assert "libQt6Core.so.6" not in system and "libQt6Gui.so.6" in system and "libc.so.6" in system


def test_slimming_leaves_out_unused_qt_parts_and_keeps_what_is_loaded() -> None:
    slim = load("slim")
    pyside = qt_dir()
    lib, plugins = pyside / "Qt" / "lib", pyside / "Qt" / "plugins"
    binaries = [
        ("PySide6/QtWidgets.abi3.so", str(pyside / "QtWidgets.abi3.so"), "EXTENSION"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", str(plugins / "platforms" / "libqxcb.so"), "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", str(plugins / "platforms" / "libqoffscreen.so"), "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqlinuxfb.so", str(plugins / "platforms" / "libqlinuxfb.so"), "BINARY"),
        ("PySide6/Qt/plugins/imageformats/libqjpeg.so", str(plugins / "imageformats" / "libqjpeg.so"), "BINARY"),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", str(plugins / "imageformats" / "libqsvg.so"), "BINARY"),
        *((f"PySide6/Qt/lib/{p.name}", str(p), "BINARY") for p in sorted(lib.glob("libQt6*.so.6"))),
        *((f"PySide6/Qt/lib/{p.name}", str(p), "BINARY") for p in sorted(lib.glob("libicu*.so.*"))),
        ("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
        ("libQt6Pdf.so.6", "PySide6/Qt/lib/libQt6Pdf.so.6", "SYMLINK"),
        ("libX11.so.6", "/usr/lib/x86_64-linux-gnu/libX11.so.6", "BINARY"),
    ]
    datas = [("PySide6/Qt/translations/qtbase_de.qm", "/dev/null", "DATA"),
             ("ecms_desktop/resources/rules/pack.json", str(REPO / "resources" / "rules" / "pack.json"), "DATA")]
    analysis = SimpleNamespace(binaries=list(binaries), datas=list(datas))
    slim.slim_linux_bundle(analysis)
    kept = {dest for dest, _src, _kind in analysis.binaries + analysis.datas}
    assert {"PySide6/QtWidgets.abi3.so", "PySide6/Qt/plugins/platforms/libqxcb.so",
            "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/imageformats/libqjpeg.so",
            "PySide6/Qt/lib/libQt6Widgets.so.6", "PySide6/Qt/lib/libQt6Gui.so.6", "PySide6/Qt/lib/libQt6Core.so.6",
            "PySide6/Qt/lib/libQt6XcbQpa.so.6", "PySide6/Qt/lib/libicudata.so.73", "libQt6Core.so.6",
            "ecms_desktop/resources/rules/pack.json"} <= kept
    left_out = {dest for dest, _src, _kind in binaries + datas} - kept
    # plugins and translations the app does not use, the system's X11, and the libraries only they needed
    assert {"PySide6/Qt/plugins/platforms/libqlinuxfb.so", "PySide6/Qt/plugins/imageformats/libqsvg.so",
            "PySide6/Qt/translations/qtbase_de.qm", "libX11.so.6"} <= left_out
    # what nothing left names goes, with its other names (QML, Quick, Designer: in the wheel, never loaded)
    assert {"PySide6/Qt/lib/libQt6Qml.so.6", "PySide6/Qt/lib/libQt6Quick.so.6", "PySide6/Qt/lib/libQt6Designer.so.6",
            "PySide6/Qt/lib/libQt6Network.so.6", "libQt6Pdf.so.6"} <= left_out


def test_the_desktop_file_opens_documents_with_the_app() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(INSTALLER / "linux" / "ecms-desktop.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Exec"] == "ecms-desktop %F" and desktop["Icon"] == "ecms-desktop"
    assert set(desktop["MimeType"].strip(";").split(";")) == {"application/pdf", "image/png", "image/jpeg",
                                                              "image/tiff"}
    assert (REPO / "resources" / "icons" / "ecms-desktop.svg").is_file()


def test_the_windows_icon_holds_the_png_sizes() -> None:
    make_icons = load("make_icons")
    ico = (REPO / "resources" / "icons" / "ecms-desktop.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", ico, 0)
    assert (reserved, kind, count) == (0, 1, len(make_icons.ICO_SIZES))
    for n, size in enumerate(make_icons.ICO_SIZES):
        width, height, _c, _r, _planes, bits, length, offset = struct.unpack_from("<BBBBHHII", ico, 6 + 16 * n)
        assert (width or 256, height or 256, bits) == (size, size, 32)
        png = ico[offset:offset + length]
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (size, size)
        assert png == (REPO / "resources" / "icons" / f"ecms-desktop-{size}.png").read_bytes()
    assert make_icons.ico_bytes({s: (REPO / "resources" / "icons" / f"ecms-desktop-{s}.png").read_bytes()
                                 for s in make_icons.SIZES}) == ico


def test_the_smoke_test_tells_a_blank_picture_from_a_window(tmp_path: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QImage, QPainter

    smoke = load("smoke_test")
    blank = QImage(320, 240, QImage.Format.Format_ARGB32)
    blank.fill(QColor("#f0f0f0"))
    blank.save(str(tmp_path / "blank.png"), "PNG")
    with pytest.raises(smoke.SmokeFailure, match="looks blank"):
        smoke.check_picture(tmp_path / "blank.png", (320, 240))
    with pytest.raises(smoke.SmokeFailure, match="not 640x480"):
        smoke.check_picture(tmp_path / "blank.png", (640, 480))
    drawn = QImage(320, 240, QImage.Format.Format_RGB32)
    drawn.fill(Qt.GlobalColor.white)
    painter = QPainter(drawn)
    for i in range(60):  # bands of many colours, as a window's widgets and text give
        painter.fillRect(i * 5, 0, 5, 240, QColor.fromHsv(i * 6, 200, 120 + i))
    painter.end()
    drawn.save(str(tmp_path / "drawn.png"), "PNG")
    assert smoke.check_picture(tmp_path / "drawn.png", (320, 240)).startswith("320x240")


def test_the_smoke_tests_pdf_is_one_a_reader_opens() -> None:
    import pymupdf

    smoke = load("smoke_test")
    with pymupdf.open(stream=smoke.minimal_pdf("Resale certificate"), filetype="pdf") as doc:
        assert doc.page_count == 1 and "Resale certificate" in doc[0].get_text()
