"""The installed program must not rely on the source tree: the wheel carries the rules pack, the
templates and the migrations, and `ecms` works from it in a folder of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.relative_to(REPO).parts[:-1])
        for p in (REPO / "ecms_desktop").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    on_disk = {name for name in on_disk if (REPO / name.replace(".", "/") / "__init__.py").exists()}
    assert on_disk - listed == set()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a clean copy: setuptools' build/ folder in the working tree keeps files that were
    # since removed or renamed (an old migration would ship beside its new name), and two test
    # workers building there at once would race.
    source = tmp_path_factory.mktemp("source") / "ecms-desktop"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(source)], check=True, capture_output=True, text=True, timeout=300)
    (out / "build-output.txt").write_text(built.stdout + built.stderr)
    (path,) = out.glob("ecms_desktop-*.whl")
    return path


def test_building_prints_no_setuptools_warning(wheel: Path) -> None:
    """First setup used to print about two hundred lines of warnings, one block for each data folder that was
    not a listed package."""
    output = (wheel.parent / "build-output.txt").read_text()
    assert "BuildBackendWarning" not in output and "absent from the `packages` configuration" not in output, output


def test_wheel_carries_data_files_and_licences(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ecms_desktop/resources/rules/states/TX.json" in names
    assert "ecms_desktop/resources/rules/pack.json" in names
    assert "ecms_desktop/resources/fonts/DejaVuSans.ttf" in names  # the audit-pack book's fonts
    assert "ecms_desktop/resources/fonts/DroidSansFallbackFull.ttf" in names
    assert "ecms_desktop/migrations/script.py.mako" in names
    assert "ecms_desktop/migrations/versions/0001_initial.py" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith("THIRD-PARTY-NOTICES.md") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_carries_the_user_guide_and_its_pictures(wheel: Path) -> None:
    """Help > User guide opens the guide from the installed package, with every picture it shows."""
    import re

    archive = zipfile.ZipFile(wheel)
    guide = archive.read("ecms_desktop/docs/user-guide.md").decode("utf-8")
    pictures = re.findall(r"\]\((screenshots/[^)]+\.png)\)", guide)
    assert pictures
    names = set(archive.namelist())
    assert {f"ecms_desktop/docs/{p}" for p in pictures} <= names


def test_installed_ecms_works_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "certs.csv").write_text(
        "customer_number,customer_name,customer_email,state,form,certificate_number,exempt_reason,"
        "purchaser_tax_id,certificate_type,po_number,signed_date,effective_date,expiry_date,review_status,document\n"
        "C-1,Buyer LLC,,NY,NY-ST-120,N-1,resale,,blanket,,2026-03-15,,,approved,\n", encoding="utf-8")
    # The installed copy first, then the third-party packages; the repository is not on the path
    # (-P / PYTHONSAFEPATH keeps the working directory off sys.path, and the code asserts where it came from).
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": "", "PYTHONSAFEPATH": "1", "ECMS_DATA_DIR": str(tmp_path / "data")}
    env.pop("ECMS_DATABASE_URL", None)
    ecms_cmd = [sys.executable, "-c",
                "import site, sys; "
                f"sys.path[:0] = [{str(target)!r}]; [site.addsitedir(p) for p in {site_packages!r}]; "
                "import ecms_desktop; from ecms_desktop.cli import main; "
                f"assert ecms_desktop.__file__.startswith({str(target)!r}), ecms_desktop.__file__; "
                "sys.exit(main(sys.argv[1:]))"]

    def run(*args: str) -> str:
        done = subprocess.run([*ecms_cmd, *args], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert run("--version").startswith("ecms ")
    assert "Created" in run("init")
    run("company", "add", "Acme")
    assert "Imported 1 certificates" in run("import", "certificates", "certs.csv")
    shown = run("show", "1", "--as-of", "2026-11-22")
    assert "2031-03-14" in shown  # New York: 5 years, computed from the packaged rules pack
