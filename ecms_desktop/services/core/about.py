"""What the program is: version, rules pack, database, licence and where its source is (Help > About ECMS Desktop)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import ecms_desktop
from ecms_desktop.paths import NoticeFiles, notice_files
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.database import display_url

DISTRIBUTION = "ecms-desktop"
LICENCE_NAME = "GNU Affero General Public License, version 3 or later (AGPL-3.0-or-later)"


@dataclass(frozen=True)
class ProgramFacts:
    """The facts a user sends with a problem report, and the program's licence and source."""

    version: str
    rules_title: str
    rules_version: str
    #: The database in use, its password hidden; "" when none is open.
    database: str
    licence: str
    #: The folder the installed program (its Python source included) runs from.
    installed_in: Path
    source: str
    #: The licence notices, the licence texts and the source (offer) to link to.
    notices: NoticeFiles


def program_facts(rules: RulesPack, database_url: str | None) -> ProgramFacts:
    """The program's version, the rules pack's version, the database in use (no password) and how to
    get the program's complete source, as the AGPL asks."""
    try:
        licence = (metadata.metadata(DISTRIBUTION).get_all("License-Expression") or [LICENCE_NAME])[0]
    except metadata.PackageNotFoundError:  # run from a PyInstaller bundle without its metadata
        licence = LICENCE_NAME
    if licence == "AGPL-3.0-or-later":
        licence = LICENCE_NAME
    installed_in = Path(ecms_desktop.__file__).resolve().parent
    notices = notice_files()
    if notices.bundled:
        where = ("Its complete source ships with it, in the source folder beside the program; SOURCE-OFFER.md says "
                 "so and where the source of the free-software components it carries is.")
    else:
        where = f"Its Python source is installed with it, in {installed_in}."
    source = ("ECMS Desktop is free software: you may run, study, share and change it under this licence. "
              f"{where} Whoever gave you this program must also give you its complete corresponding source, with "
              "any changes they made, on request (AGPL section 6). It uses PyMuPDF (AGPL), Qt and PySide6 (LGPL) "
              "and the other components listed in THIRD-PARTY-NOTICES.md.")
    return ProgramFacts(version=ecms_desktop.__version__, rules_title=rules.title, rules_version=rules.version,
                        database=display_url(database_url) if database_url else "", licence=licence,
                        installed_in=installed_in, source=source, notices=notices)
