"""Where the licence notices are found: beside a bundle's executable, inside a macOS app, or in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

import ecms_desktop
from ecms_desktop import paths


def test_a_bundle_keeps_its_notices_beside_the_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.frozen", True, raising=False)
    monkeypatch.setattr("sys.executable", str(tmp_path / "ecms-desktop" / "ecms-desktop"))
    files = paths.notice_files()
    assert files == paths.NoticeFiles(tmp_path / "ecms-desktop" / "THIRD-PARTY-NOTICES.md",
                                      tmp_path / "ecms-desktop" / "licenses",
                                      tmp_path / "ecms-desktop" / "SOURCE-OFFER.md", True)


def test_a_macos_app_keeps_them_in_its_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = tmp_path / "ECMS Desktop.app" / "Contents"
    monkeypatch.setattr("sys.frozen", True, raising=False)
    monkeypatch.setattr("sys.executable", str(contents / "MacOS" / "ecms-desktop"))
    files = paths.notice_files()
    assert files.notices == contents / "Resources" / "THIRD-PARTY-NOTICES.md"
    assert files.source == contents / "Resources" / "SOURCE-OFFER.md"


def test_a_source_checkout_links_to_the_repository_files() -> None:
    repo = Path(ecms_desktop.__file__).resolve().parent.parent
    files = paths.notice_files()
    assert not files.bundled and files.notices == repo / "THIRD-PARTY-NOTICES.md" and files.notices.is_file()
    assert files.licences.is_dir() and files.source == repo
