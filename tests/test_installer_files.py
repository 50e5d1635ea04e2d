"""The Windows installer script, the macOS app step and the CI workflow cannot run on this machine; these checks
keep them pointing at files that exist in the repository or that the build puts into the bundle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.test_notices import notices

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "build.yml"
ISS = REPO / "installer" / "windows" / "ecms-desktop.iss"
SPEC = REPO / "installer" / "ecms-desktop.spec"


def _bundle_files() -> set[str]:
    """What a Windows bundle holds at its top: the executables the spec names and the notices' outputs."""
    executables = set(re.findall(r'EXE\(.*?name="([^"]+)"', SPEC.read_text(encoding="utf-8"), re.DOTALL))
    assert executables == {"ecms-desktop", "ecms"}
    return {f"{name}.exe" for name in executables} | {notices.NOTICES, notices.SOURCE_OFFER, notices.LICENSES}


def test_the_workflow_builds_on_three_systems_with_the_repository_scripts() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    jobs = re.findall(r"^  (\w+):\n    runs-on: (\S+)", text, re.MULTILINE)
    assert dict(jobs) == {"linux": "ubuntu-22.04", "windows": "windows-latest", "macos": "macos-latest"}
    referenced = set(re.findall(r"\b(installer[/\\][\w/\\.-]+\.(?:sh|py|spec|iss))", text))
    referenced = {p.replace("\\", "/") for p in referenced}
    assert {"installer/build.sh", "installer/smoke_test.py", "installer/notices.py", "installer/ecms-desktop.spec",
            "installer/windows/ecms-desktop.iss"} <= referenced
    missing = sorted(p for p in referenced if not (REPO / p).is_file())
    assert not missing, f"{WORKFLOW} runs scripts that are not in the repository: {missing}"
    # The macOS icon is made from the PNG sizes the repository has.
    for png in re.findall(r'"\$png-(\d+)\.png"', text):
        assert (REPO / "resources" / "icons" / f"ecms-desktop-{png}.png").is_file(), png
    assert "\t" not in text  # YAML forbids tabs for indentation


def test_the_inno_setup_script_names_files_that_exist() -> None:
    text = ISS.read_text(encoding="utf-8")
    here = ISS.parent
    licence = re.search(r"^LicenseFile=(.+)$", text, re.MULTILINE)
    assert licence is not None
    assert (here / licence.group(1).replace("\\", "/")).resolve() == REPO / "LICENSE"
    (source,) = re.findall(r'^Source: "([^"]+)"', text, re.MULTILINE)
    # The PyInstaller output folder: dist/ (the workflow's --distpath) and the spec's COLLECT name.
    assert (here / source.replace("\\", "/")).resolve().parent == REPO / "dist" / "ecms-desktop"
    assert 'name="ecms-desktop")' in SPEC.read_text(encoding="utf-8")
    exe = re.search(r'#define AppExe "([^"]+)"', text)
    assert exe is not None
    in_bundle = _bundle_files()
    shortcuts = [f.replace("{#AppExe}", exe.group(1)) for f in re.findall(r'Filename: "\{app\}\\([^"]+)"', text)]
    assert shortcuts and set(shortcuts) <= in_bundle, set(shortcuts) - in_bundle
    assert {"THIRD-PARTY-NOTICES.md", "SOURCE-OFFER.md", "licenses"} <= set(shortcuts)
    # Offered for PDFs and images without taking the default program.
    extensions = set(re.findall(r'Subkey: "Software\\Classes\\(\.\w+)\\OpenWithProgids"', text))
    assert extensions == {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
    assert r"Software\Classes\.pdf\shell" not in text and "Flags: unchecked" in text  # desktop icon optional


def test_the_macos_app_declares_the_document_types() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    ast.parse(spec)
    block = spec[spec.index('if sys.platform == "darwin":'):]
    assert "BUNDLE(" in block and "from ecms_desktop import __version__" in block
    assert set(re.findall(r'\["(com\.adobe\.pdf|public\.\w+)"\]', block)) == {
        "com.adobe.pdf", "public.png", "public.jpeg", "public.tiff"}
    assert block.count('"LSHandlerRank": "Alternate"') == 1 and "ecms-desktop.icns" in block
