"""Putting a database's installed rules pack in force in this process (see ``rules_packs``; no Qt).

Kept apart from the service so that opening a database (``database.py``) can call :func:`activate`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop import paths
from ecms_desktop.models import InstalledRulesPack
from ecms_desktop.rules import RulesPackError, default_rules_dir, use_rules_dir
from ecms_desktop.rules.archive import parse_version, unpack_archive, unpacked_matches

log = logging.getLogger(__name__)

ACTIVE, PREVIOUS, RETIRED = "active", "previous", "retired"
PACKAGED, INSTALLED = "packaged", "installed"

#: Why the installed pack could not be used when a database was last opened in this process (None: no problem).
_activation_problem: str | None = None


def packaged_version() -> str:
    """The version of the program's own rules pack (read from its ``pack.json`` alone)."""
    data = json.loads(default_rules_dir().joinpath("pack.json").read_text(encoding="utf-8"))
    return str(data["version"])


def newer(a: str, b: str) -> bool:
    return parse_version(a) > parse_version(b)


def _unpacked_folder(sha256: str) -> Path:
    return paths.cache_dir() / "rules" / sha256


def pack_rows(session: Session) -> dict[str, Any]:
    """The active and previous rows (without their archives), by status."""
    rows = session.execute(select(InstalledRulesPack.id, InstalledRulesPack.version, InstalledRulesPack.sha256,
                                  InstalledRulesPack.installed_at, InstalledRulesPack.installed_by,
                                  InstalledRulesPack.status)
                           .where(InstalledRulesPack.status.in_((ACTIVE, PREVIOUS)))
                           .order_by(InstalledRulesPack.id)).all()
    return {r.status: r for r in rows}


def activate(session: Session) -> None:
    """Make the database's active rules pack the one in force in this process (see the module's
    description); the program's own when there is none, when the program's is newer, or when the installed
    one cannot be used (logged, and :meth:`RulesPackService.show` says why)."""
    global _activation_problem
    _activation_problem = None
    active = pack_rows(session).get(ACTIVE)
    if active is None or newer(packaged_version(), active.version):
        use_rules_dir(None)
        return
    name = f"rules pack {active.version} (installed in the database)"
    try:
        data = session.execute(select(InstalledRulesPack.archive).where(InstalledRulesPack.id == active.id)
                               ).scalar_one()
        if hashlib.sha256(data).hexdigest() != active.sha256:
            raise RulesPackError(f"{name}: the stored archive does not match its SHA-256 {active.sha256}; "
                                 "`ecms check` tells what else changed")
        folder = _unpacked_folder(active.sha256)
        if not unpacked_matches(folder, data, name):
            unpack_archive(data, name, folder)
        use_rules_dir(folder)
    except (RulesPackError, OSError) as exc:
        _activation_problem = f"The installed {name} cannot be used ({exc}); the program's own rules pack is in force."
        log.warning("%s", _activation_problem)
        use_rules_dir(None)




def activation_problem() -> str | None:
    """Why the installed pack could not be used when a database was last opened here (None: no problem)."""
    return _activation_problem
