"""installer/notices.py: the licence notices of a bundle come from the files it holds, and an unknown file stops
the build instead of shipping without a licence."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_notices() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notices", REPO / "installer" / "notices.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["notices"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


notices = _load_notices()


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ECMS Desktop's real source archive, made once."""
    return notices.build_sdist(tmp_path_factory.mktemp("sdist"))


def _touch(path: Path, content: str = "\x7fELF") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def _bundle(root: Path) -> Path:
    """A bundle in PyInstaller's onedir layout with the kinds of file a real one holds (names only)."""
    bundle = root / "ecms-desktop"
    internal = bundle / "_internal"
    for rel in ("PySide6/Qt/lib/libQt6Core.so.6", "PySide6/Qt/lib/libicuuc.so.73", "PySide6/libpyside6.abi3.so.6.11",
                "PySide6/Qt/plugins/platforms/libqoffscreen.so", "shiboken6/libshiboken6.abi3.so.6.11",
                "psycopg_binary.libs/libpq-e9b5c9ac.so.5.18", "psycopg_binary.libs/libssl-6a9b88ec.so.3",
                "pymupdf/libmupdf.so.28.5", "pymupdf/_mupdf.so", "libpython3.11.so.1.0", "base_library.zip",
                "python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", "libffi.so.8"):
        _touch(internal / rel)
    _touch(internal / "ecms_desktop/resources/fonts/DejaVuSans.ttf")
    _touch(internal / "ecms_desktop/resources/rules/pack.json", "{}")
    # A package kept with its metadata (copy_metadata), the way PyInstaller ships it.
    info = internal / "ledgerkit-1.4.dist-info"
    _touch(info / "METADATA", "Metadata-Version: 2.4\nName: ledgerkit\nVersion: 1.4\nLicense-Expression: MIT\n")
    _touch(info / "licenses" / "LICENSE", "MIT License\n\nCopyright (c) 2026 Ledgerkit authors\n")
    _touch(info / "RECORD",
           "ledgerkit/_speedups.cpython-311-x86_64-linux-gnu.so,,\nledgerkit-1.4.dist-info/METADATA,,\n")
    _touch(internal / "ledgerkit" / "_speedups.cpython-311-x86_64-linux-gnu.so")
    return bundle


def test_notices_name_every_component_and_copy_its_licence(tmp_path: Path, sdist: Path) -> None:
    bundle = _bundle(tmp_path)
    inventory = notices.write_bundle_notices(bundle, sdist=sdist)
    text = (bundle / "THIRD-PARTY-NOTICES.md").read_text(encoding="utf-8")
    for name in ("Qt 6", "PySide6 and shiboken6", "ICU", "MuPDF, Artifex Software", "OpenSSL", "libpq",
                 "Python", "libffi", "DejaVu Sans"):
        assert any(found.startswith(name) for found in inventory.components), name
        assert name in text
    assert {"pyside6-essentials", "shiboken6", "pymupdf-lite", "psycopg-binary", "ledgerkit"} <= set(inventory.packages)
    assert "## Replacing Qt and PySide6 (GNU LGPL-3.0)" in text and "download.qt.io" in text
    assert "## PyMuPDF and MuPDF: GNU AGPL-3.0" in text
    assert "| ledgerkit | 1.4 | MIT | `licenses/python/ledgerkit-1.4/LICENSE` |" in text
    # Every licence text the notices name is in the bundle.
    named = set(re.findall(r"`(licenses/[^`]+)`", text))
    assert named and all((bundle / p).is_file() for p in named)
    licences = bundle / "licenses"
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (licences / "LGPL-3.0.txt").read_text(encoding="utf-8")
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in (licences / "LICENSE").read_text(encoding="utf-8")
    assert "PostgreSQL" in (licences / "PostgreSQL-libpq.copyright.txt").read_text(encoding="utf-8")
    assert (licences / "python" / "ledgerkit-1.4" / "LICENSE").is_file()
    assert "_internal/psycopg_binary.libs/libssl-6a9b88ec.so.3" in inventory.components["OpenSSL"]


def test_the_source_offer_ships_the_source_and_names_the_copyleft_parts(tmp_path: Path, sdist: Path) -> None:
    bundle = _bundle(tmp_path)
    notices.write_bundle_notices(bundle, sdist=sdist)
    offer = (bundle / "SOURCE-OFFER.md").read_text(encoding="utf-8")
    shipped = bundle / "source" / sdist.name
    assert f"`source/{sdist.name}`" in offer and shipped.is_file()
    assert "three years" in offer and "pymupdf-lite" in offer and "Qt 6" in offer and "libxcrypt" not in offer
    with tarfile.open(shipped) as archive:
        names = archive.getnames()
    top = names[0].split("/")[0]
    # Complete corresponding source: the program and the scripts that built the bundle.
    for rel in ("ecms_desktop/__init__.py", "installer/notices.py", "installer/ecms-desktop.spec", "LICENSE",
                "installer/third-party.toml", "pyproject.toml"):
        assert f"{top}/{rel}" in names, rel


def test_unknown_files_stop_the_build_and_are_listed(tmp_path: Path, sdist: Path) -> None:
    bundle = _bundle(tmp_path)
    _touch(bundle / "_internal" / "libmystery.so.1")
    _touch(bundle / "_internal" / "blobs" / "table.bin", "?")
    with pytest.raises(notices.NoticeError) as caught:
        notices.write_bundle_notices(bundle, sdist=sdist)
    message = str(caught.value)
    assert "2 file(s)" in message
    assert "_internal/libmystery.so.1 (a native library" in message and "_internal/blobs/table.bin" in message
    assert not (bundle / "THIRD-PARTY-NOTICES.md").exists()


def test_a_package_without_a_licence_text_stops_the_build(tmp_path: Path, sdist: Path) -> None:
    bundle = _bundle(tmp_path)
    _touch(bundle / "_internal" / "quietpkg-2.0.dist-info" / "METADATA",
           "Metadata-Version: 2.1\nName: quietpkg\nVersion: 2.0\nLicense: BSD-3-Clause\n")
    with pytest.raises(notices.NoticeError, match=r"quietpkg 2\.0 ships no licence text"):
        notices.write_bundle_notices(bundle, sdist=sdist)


def test_an_executable_pyinstaller_did_not_make_stops_the_build(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    tool = bundle / "helper"
    _touch(tool, "#!/bin/sh\n")
    tool.chmod(0o755)
    with pytest.raises(notices.NoticeError, match="helper: not an executable PyInstaller made"):
        notices.scan_bundle(bundle, notices.load_rules(), notices.BuildEnvironment())


def test_modules_compiled_into_the_executables_are_traced_to_their_packages() -> None:
    rules, env = notices.load_rules(), notices.BuildEnvironment()
    inventory = notices.Inventory()
    for module in ("sqlalchemy.orm.session", "jinja2", "json.decoder", "pyimod01_archive", "ecms_desktop.app",
                   "PYZ.pyz", "_sysconfigdata__linux_x86_64-linux-gnu", "no_such_module_anywhere"):
        notices.classify_module(module, env, inventory, rules)
    assert set(inventory.packages) == {"sqlalchemy", "jinja2"}
    assert inventory.packages["jinja2"].licence == "BSD-3-Clause"  # the override of a loose classifier
    assert inventory.packages["sqlalchemy"].licence_files
    assert inventory.unknown == ["module no_such_module_anywhere (compiled into an executable)"]
    assert inventory.components["Python"]


def test_the_repository_notices_are_current() -> None:
    current = (REPO / "THIRD-PARTY-NOTICES.md").read_text(encoding="utf-8")
    assert notices.GENERATED_MARK in current
    assert notices.repository_notices(current) == current, "run: python installer/notices.py --from-venv"


def test_every_licence_text_the_rules_name_exists() -> None:
    env = notices.BuildEnvironment()
    for component in notices.load_rules().components:
        for text in component.texts:
            assert notices._resolve_text(text, env), (component.name, text)


def _system_library() -> Path:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian or Ubuntu system (no dpkg-query): libraries from system packages cannot be named")
    for name in ("libstdc++.so.6", "libgcc_s.so.1", "libglib-2.0.so.0"):
        for folder in notices.SYSTEM_LIBRARY_DIRS:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    pytest.skip("none of libstdc++, libgcc_s, libglib is installed in the usual library folders")


def test_a_library_copied_from_a_system_package_is_named_with_its_copyright(tmp_path: Path, sdist: Path) -> None:
    system = _system_library()
    bundle = _bundle(tmp_path)
    shutil.copyfile(system, bundle / "_internal" / system.name)
    inventory = notices.write_bundle_notices(bundle, sdist=sdist)
    (package,) = inventory.system.values()
    assert package.files == [f"_internal/{system.name}"] and package.version and package.licences
    text = (bundle / "THIRD-PARTY-NOTICES.md").read_text(encoding="utf-8")
    assert f"| {package.name} | {package.version} |" in text
    assert (bundle / "licenses" / "system" / f"{package.name}.copyright.txt").is_file()
    if "GPL" in package.licences:
        assert package.source in (bundle / "SOURCE-OFFER.md").read_text(encoding="utf-8")


def test_a_changed_copy_of_a_system_library_is_not_taken_for_it(tmp_path: Path, sdist: Path) -> None:
    system = _system_library()
    bundle = _bundle(tmp_path)
    (bundle / "_internal" / system.name).write_bytes(system.read_bytes() + b"patched")
    with pytest.raises(notices.NoticeError, match=re.escape(f"_internal/{system.name} (a native library")):
        notices.write_bundle_notices(bundle, sdist=sdist)


def test_notices_can_go_elsewhere_as_into_a_macos_app(tmp_path: Path, sdist: Path) -> None:
    bundle = _bundle(tmp_path)
    resources = tmp_path / "ECMS Desktop.app" / "Contents" / "Resources"
    notices.write_bundle_notices(bundle, resources, sdist=sdist)
    assert (resources / "THIRD-PARTY-NOTICES.md").is_file() and (resources / "SOURCE-OFFER.md").is_file()
    assert (resources / "licenses" / "LGPL-3.0.txt").is_file() and (resources / "source" / sdist.name).is_file()
    assert not (bundle / "THIRD-PARTY-NOTICES.md").exists() and not (bundle / "licenses").exists()
    assert "(the program's files are in ecms-desktop)" in (resources / "THIRD-PARTY-NOTICES.md").read_text()


def test_the_source_archive_lands_in_a_bundle_given_by_a_relative_path(tmp_path: Path, monkeypatch) -> None:
    """installer/build.sh names the bundle relative to the repository (dist/ecms-desktop): the source archive used
    to be written inside the build's temporary copy, and the package shipped an empty source/ folder."""
    monkeypatch.chdir(tmp_path)
    archive = notices.build_sdist(Path("dist") / "ecms-desktop" / "source")
    assert archive.is_absolute() and archive.is_file()
    assert archive.parent == (tmp_path / "dist" / "ecms-desktop" / "source").resolve()
