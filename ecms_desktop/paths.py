"""Where ECMS Desktop keeps its files: platform folders (platformdirs), overridable by environment.

- ``ECMS_DATA_DIR``: the folder for the local database and other data (default: the platform's user
  data folder, e.g. ``~/.local/share/ecms-desktop`` on Linux).
- ``ECMS_DATABASE_URL``: a full SQLAlchemy URL; wins over the data folder.
- ``ECMS_CACHE_DIR``: the folder for files the program can make again (the installed rules pack, unpacked;
  default: ``cache`` in ``ECMS_DATA_DIR`` when that is set, else the platform's user cache folder, e.g.
  ``~/.cache/ecms-desktop`` on Linux).
- ``ECMS_LOG_DIR``: the folder for the log file (default: ``logs`` in ``ECMS_DATA_DIR`` when that is
  set, else the platform's user log folder, e.g. ``~/.local/state/ecms-desktop/log`` on Linux).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path

import platformdirs

APP_NAME = "ecms-desktop"
APP_AUTHOR = "ECMS"


def data_dir() -> Path:
    """The folder holding the local database (created on first use)."""
    override = os.environ.get("ECMS_DATA_DIR")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """The folder for the application's log files."""
    own, data = os.environ.get("ECMS_LOG_DIR"), os.environ.get("ECMS_DATA_DIR")
    path = Path(own) if own else Path(data) / "logs" if data else Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """The folder for files the program can make again from the database (created on first use)."""
    own, data = os.environ.get("ECMS_CACHE_DIR"), os.environ.get("ECMS_DATA_DIR")
    path = (Path(own) if own else Path(data) / "cache" if data
            else Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_database_url() -> str:
    """``ECMS_DATABASE_URL`` if set, else a SQLite file in :func:`data_dir`."""
    url = os.environ.get("ECMS_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'ecms.sqlite'}"


def resource_root() -> Traversable:
    """The packaged ``resources/`` folder (rules pack, templates, fonts): the package
    ``ecms_desktop.resources`` (pyproject.toml maps the repository's ``resources/`` to it, in an
    editable install too; the PyInstaller build ships it under the same name)."""
    return resources.files("ecms_desktop.resources")


def resource_path(*parts: str) -> Path:
    """A file or folder under :func:`resource_root` as a real path."""
    root = resource_root()
    target = root.joinpath(*parts)
    return Path(str(target))


def user_guide() -> Path:
    """The user guide (Markdown; its pictures are in ``screenshots/`` beside it), shipped as the package
    ``ecms_desktop.docs`` (the repository's ``docs/`` folder)."""
    return Path(str(resources.files("ecms_desktop.docs").joinpath("user-guide.md")))


@dataclass(frozen=True)
class NoticeFiles:
    """Where the program's licence notices are (Help > About ECMS Desktop links to them)."""

    #: THIRD-PARTY-NOTICES.md: every component the program is built on and its licence.
    notices: Path
    #: The folder of licence texts.
    licences: Path
    #: A bundle: SOURCE-OFFER.md (its source archive ships beside it). Otherwise the folder of the source.
    source: Path
    #: True in a PyInstaller bundle (the notices were made from the bundle by installer/notices.py).
    bundled: bool


def notice_files() -> NoticeFiles:
    """The licence notices of this copy: beside the executable in a bundle (in Contents/Resources of a macOS
    app), the repository's files in a source checkout, the distribution's licence files in an installed wheel."""
    if getattr(sys, "frozen", False):  # set by PyInstaller's bootloader
        folder = Path(sys.executable).resolve().parent
        if folder.name == "MacOS" and folder.parent.name == "Contents":
            folder = folder.parent / "Resources"
        return NoticeFiles(folder / "THIRD-PARTY-NOTICES.md", folder / "licenses", folder / "SOURCE-OFFER.md", True)
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "THIRD-PARTY-NOTICES.md").is_file():
        return NoticeFiles(checkout / "THIRD-PARTY-NOTICES.md", checkout / "installer" / "licenses", checkout, False)
    dist = metadata.distribution(APP_NAME)
    found = [Path(str(f.locate())) for f in dist.files or [] if f.name == "THIRD-PARTY-NOTICES.md"]
    if not found:
        raise FileNotFoundError(f"THIRD-PARTY-NOTICES.md is missing from the installed {APP_NAME} in {package.parent}")
    return NoticeFiles(found[0], found[0].parent, package, False)
