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
from importlib import resources
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
