"""Rules pack archives (ecms_desktop.rules.archive): built, read back, and every hostile or broken archive
refused with the archive and the member named."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from pathlib import Path

import pytest

from ecms_desktop.rules import archive
from ecms_desktop.rules.archive import (
    MANIFEST,
    RulesArchiveError,
    build_archive,
    parse_version,
    read_archive,
    read_archive_file,
    unpack_archive,
    unpacked_matches,
)
from tests.helpers.rules_pack import RULES_DIR, newer_copy


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("archive")
    out = tmp / "ecms-rules-2026.12.2.zip"
    build_archive(newer_copy(tmp, "2026.12.2"), out, requires_program="0.1.0")
    return out.read_bytes()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(files: dict[str, bytes], *, manifest_for: dict[str, bytes] | None = None,
          extra: list[zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    """A ZIP of ``files`` (with a MANIFEST.json made for ``manifest_for`` when given, else the one in
    ``files``) and the ``extra`` members as given."""
    files = dict(files)
    if manifest_for is not None:
        manifest = json.loads(files[MANIFEST])
        manifest["files"] = {k: {"sha256": hashlib.sha256(v).hexdigest(), "size": len(v)}
                             for k, v in manifest_for.items()}
        files[MANIFEST] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
        for item in extra:
            info, content = item if isinstance(item, tuple) else (item, b"")
            zf.writestr(info, content)
    return buffer.getvalue()


def test_built_archive_reads_back_with_its_manifest(good: bytes, tmp_path: Path) -> None:
    info = read_archive(good, "ecms-rules-2026.12.2.zip")
    assert (info.version, info.requires_program) == ("2026.12.2", "0.1.0")
    assert info.files == sum(1 for p in RULES_DIR.rglob("*") if p.is_file())
    assert info.sha256 == hashlib.sha256(good).hexdigest()
    manifest = json.loads(members(good)[MANIFEST])
    assert manifest["version"] == "2026.12.2" and "states/TX.json" in manifest["files"]
    # The same rules always give the same bytes.
    again = tmp_path / "again.zip"
    build_archive(newer_copy(tmp_path, "2026.12.2"), again, requires_program="0.1.0")
    assert again.read_bytes() == good
    target = tmp_path / "unpacked"
    unpack_archive(good, "a.zip", target)
    assert unpacked_matches(target, good, "a.zip")
    (target / "states" / "TX.json").write_text("{}", encoding="utf-8")
    assert not unpacked_matches(target, good, "a.zip")


def test_versions_compare_part_by_part_as_numbers() -> None:
    assert parse_version("2026.12.10") > parse_version("2026.12.9") > parse_version("2026.2.30")
    with pytest.raises(Exception, match="not a version"):
        parse_version("2026.12.x")


def _refused(data: bytes, *needles: str) -> str:
    with pytest.raises(RulesArchiveError) as caught:
        read_archive(data, "evil.zip")
    message = str(caught.value)
    assert message.startswith("evil.zip: "), message
    for needle in needles:
        assert needle in message, message
    return message


def test_checksum_mismatch_is_refused(good: bytes) -> None:
    files = members(good)
    files["states/TX.json"] = files["states/TX.json"].replace(b"Texas", b"Texaz", 1)
    _refused(rezip(files), "states/TX.json", "checksum mismatch")


def test_file_not_in_the_manifest_is_refused(good: bytes) -> None:
    files = members(good)
    files["states/ZZ.json"] = b"{}"
    _refused(rezip(files), "states/ZZ.json", "not listed in MANIFEST.json")


def test_listed_file_missing_is_refused(good: bytes) -> None:
    files = members(good)
    del files["forms/SST-F0003.json"]
    _refused(rezip(files), "forms/SST-F0003.json", "missing")


def test_parent_path_and_absolute_path_are_refused(good: bytes) -> None:
    files = members(good)
    _refused(rezip(files, extra=[(zipfile.ZipInfo("states/../../escape.json"), b"{}")]),
             "states/../../escape.json", "outside the rules pack")
    _refused(rezip(files, extra=[(zipfile.ZipInfo("/etc/evil.json"), b"{}")]), "/etc/evil.json", "absolute path")


def test_symbolic_link_is_refused(good: bytes) -> None:
    link = zipfile.ZipInfo("states/link.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _refused(rezip(members(good), extra=[(link, b"/etc/passwd")]), "states/link.json", "symbolic link")


def test_too_large_is_refused_while_unpacking(good: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    files = members(good)
    files["README.md"] = b"x" * 3_000_000  # compresses to a few KB
    data = rezip(files, manifest_for={k: v for k, v in files.items() if k != MANIFEST})
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 2_000_000)
    _refused(data, "README.md", "too large")


def test_too_many_files_is_refused(good: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_FILES", 10)
    _refused(good, "too many files")


def test_bad_json_and_schema_errors_name_the_file_and_path(good: bytes) -> None:
    files = members(good)
    files["states/TX.json"] = b"{not json"
    _refused(rezip(files, manifest_for={k: v for k, v in files.items() if k != MANIFEST}), "states/TX.json")
    files = members(good)
    tx = json.loads(files["states/TX.json"])
    tx["has_sales_tax"] = "yes"
    files["states/TX.json"] = json.dumps(tx).encode()
    _refused(rezip(files, manifest_for={k: v for k, v in files.items() if k != MANIFEST}),
             "states/TX.json", "$.has_sales_tax")


def test_manifest_version_must_be_the_packs(good: bytes) -> None:
    files = members(good)
    manifest = json.loads(files[MANIFEST])
    manifest["version"] = "2030.1.1"
    files[MANIFEST] = json.dumps(manifest).encode()
    _refused(rezip(files), "pack.json", "2030.1.1")


def test_not_a_zip_and_missing_manifest(good: bytes, tmp_path: Path) -> None:
    _refused(b"PK not really", "not a rules pack archive")
    files = members(good)
    del files[MANIFEST]
    _refused(rezip(files), "MANIFEST.json", "missing")
    (tmp_path / "folder.zip").mkdir()
    with pytest.raises(RulesArchiveError, match="not a file"):
        read_archive_file(tmp_path / "folder.zip")


def test_build_refuses_a_broken_folder_and_a_symlink(tmp_path: Path) -> None:
    root = newer_copy(tmp_path, "2026.12.2")
    (root / "states" / "link.txt").symlink_to(root / "pack.json")
    with pytest.raises(RulesArchiveError, match=re.escape("link.txt: a symbolic link")):
        build_archive(root, tmp_path / "out.zip")
    (root / "states" / "link.txt").unlink()
    (root / "states" / "TX.json").write_text("[]", encoding="utf-8")
    with pytest.raises(RulesArchiveError, match=re.escape("states/TX.json")):
        build_archive(root, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()
