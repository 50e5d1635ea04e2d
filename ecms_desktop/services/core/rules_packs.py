"""Rules packs installed in the database: a newer state rules pack without reinstalling the program (no Qt).

State rules change more often than the program. An admin installs a rules pack archive
(:mod:`ecms_desktop.rules.archive`, made by ``ecms rules build``) with ``ecms rules install FILE`` or in
Settings > Rules pack. The archive goes into the database (``rules_pack``), so every desk on a shared
database uses the same rules and the database's audit trail records the change (``rules.installed``,
``rules.rolled_back``). An archive older than (or as old as) the pack in force is refused, and so is a
malformed one; the pack it replaces is kept to go back to (:meth:`RulesPackService.rollback`).

When a database is opened (:meth:`~ecms_desktop.services.core.database.Database.ensure_ready`), its active
pack is unpacked once into the user cache folder (a folder named by the archive's SHA-256, checked against
the archive's manifest every time) and made the pack in force
(:func:`~ecms_desktop.rules.loader.use_rules_dir`), for this process and the worker processes it starts.
No installed pack: the program's own. The program's own pack also wins when it is newer than the installed
one (a newer program brings newer rules).

After a change, the certificates whose validation result would change are listed by
:meth:`~ecms_desktop.services.validation.service.ValidationService.stale_certificates`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, text
from sqlalchemy.orm import Session

import ecms_desktop
from ecms_desktop.models import InstalledRulesPack
from ecms_desktop.rules import RulesPackError, default_rules_dir, load_rules_pack
from ecms_desktop.rules.archive import ArchiveInfo, build_archive, parse_version, program_release, read_archive_file
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.rules_in_force import (
    ACTIVE,
    INSTALLED,
    PACKAGED,
    PREVIOUS,
    RETIRED,
    activate,
    activation_problem,
    newer,
    pack_rows,
    packaged_version,
)

if TYPE_CHECKING:
    from ecms_desktop.services.core.database import Database

__all__ = ["RulesChange", "RulesInForce", "RulesPackService", "activate", "packaged_version"]


@dataclass(frozen=True)
class RulesInForce:
    """Which rules pack is in force for a database, and what else there is."""

    version: str
    title: str
    #: ``packaged`` (the program's own) or ``installed`` (from an archive, kept in the database).
    source: str
    #: SHA-256 of the installed archive in force (None: the packaged pack).
    sha256: str | None
    installed_at: dt.datetime | None
    installed_by: str | None
    #: The version of the program's own pack.
    packaged_version: str
    #: The installed pack marked active (it may not be in force: see ``note``), None when none is.
    installed_version: str | None
    #: What going back returns to: an installed pack's version, ``packaged`` or None (nothing to go back from).
    previous: str | None
    #: The version this process validates with now (another desk may have changed the database since).
    this_process_version: str
    #: Anything the user should know (the program's own pack is newer; the installed one cannot be used).
    note: str = ""


@dataclass(frozen=True)
class RulesChange:
    """What an install or a rollback did."""

    before_version: str
    after_version: str
    in_force: RulesInForce


class RulesPackService:
    """Install, inspect, build and go back from rules packs (see the module's description)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ----------------------------------------------------------------------------------

    def show(self) -> RulesInForce:
        """The rules pack in force for this database: version, title, where it comes from, who installed it
        and when, and what going back would return to."""
        packaged = packaged_version()
        with self.db.reader() as s:
            rows = pack_rows(s)
        active, previous = rows.get(ACTIVE), rows.get(PREVIOUS)
        now = load_rules_pack()
        note = activation_problem() or ""
        installed_wins = active is not None and not newer(packaged, active.version) and not activation_problem()
        if active is not None and newer(packaged, active.version):
            note = (f"The program's own rules pack {packaged} is newer than the installed {active.version}, "
                    "so the program's own is in force.")
        version = active.version if installed_wins and active is not None else packaged
        if now.version != version:
            note = " ".join(filter(None, [note, f"This program still uses rules pack {now.version}: open the "
                                                f"database again to use {version}."]))
        return RulesInForce(
            version=version, title=now.title, source=INSTALLED if installed_wins else PACKAGED,
            sha256=active.sha256 if installed_wins and active is not None else None,
            installed_at=active.installed_at if installed_wins and active is not None else None,
            installed_by=active.installed_by if installed_wins and active is not None else None,
            packaged_version=packaged, installed_version=active.version if active is not None else None,
            previous=(previous.version if previous is not None else PACKAGED) if active is not None else None,
            this_process_version=now.version, note=note)

    @staticmethod
    def inspect(file: Path) -> ArchiveInfo:
        """Check a rules pack archive completely without installing it: what it holds, or
        :class:`ValidationError` naming the archive, the member and the problem."""
        try:
            info, _data = read_archive_file(Path(file))
        except RulesPackError as exc:
            raise ValidationError(str(exc)) from exc
        return info

    @staticmethod
    def build(out: Path, *, source: Path | None = None, requires_program: str | None = None) -> ArchiveInfo:
        """Make a rules pack archive of the rules directory ``source`` (default: the program's own) at ``out``."""
        folder = Path(source) if source is not None else Path(str(default_rules_dir()))
        try:
            return build_archive(folder, Path(out), requires_program=requires_program)
        except RulesPackError as exc:
            raise ValidationError(str(exc)) from exc

    # -- changing ---------------------------------------------------------------------------------

    def install(self, file: Path, *, note: str = "") -> RulesChange:
        """Install a rules pack archive: checked completely, refused when it is not newer than the pack in
        force or needs a newer program; the pack it replaces becomes the one to go back to. Recorded as
        ``rules.installed`` (old and new version and checksum); admins only."""
        file = Path(file)
        try:
            info, data = read_archive_file(file)
        except RulesPackError as exc:
            raise ValidationError(str(exc)) from exc
        program = ecms_desktop.__version__
        if info.requires_program is not None and program_release(program) < parse_version(info.requires_program):
            raise ValidationError(f"{info.name}: rules pack {info.version} needs ECMS Desktop {info.requires_program} "
                                  f"or newer; this is {program}. Install the newer program first.")
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "install a rules pack")
            self._lock(s)
            before = self._in_force(s)
            if parse_version(info.version) == parse_version(before[0]):
                raise ValidationError(f"{info.name}: rules pack {info.version} is already the one in force "
                                      f"({before[2]}); nothing was installed.")
            if not newer(info.version, before[0]):
                raise ValidationError(f"{info.name}: rules pack {info.version} is older than the one in force, "
                                      f"{before[0]} ({before[2]}); only a newer pack can be installed "
                                      "(`ecms rules rollback` goes back to the previous one).")
            for row in s.execute(select(InstalledRulesPack).where(
                    InstalledRulesPack.status.in_((ACTIVE, PREVIOUS)))).scalars():
                row.status = PREVIOUS if row.status == ACTIVE else RETIRED
            row = InstalledRulesPack(version=info.version, sha256=info.sha256, archive=data,
                                     installed_by=people.actor_name(s), status=ACTIVE,
                                     note=" ".join(filter(None, [file.name, note])))
            s.add(row)
            s.flush()
            audit.record(s, "rules.installed", "rules_pack", row.id,
                         before={"version": before[0], "sha256": before[1], "source": before[2]},
                         after={"version": info.version, "sha256": info.sha256, "source": INSTALLED},
                         details={"file": file.name, "files": info.files, "note": note})
        return self._changed(before[0])

    def rollback(self) -> RulesChange:
        """Go back to the rules pack in force before the last install (the previous installed one, else the
        program's own); the one left is retired. Recorded as ``rules.rolled_back``; admins only."""
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "go back to the previous rules pack")
            self._lock(s)
            before = self._in_force(s)
            rows = {r.status: r for r in s.execute(select(InstalledRulesPack).where(
                InstalledRulesPack.status.in_((ACTIVE, PREVIOUS)))).scalars()}
            active, previous = rows.get(ACTIVE), rows.get(PREVIOUS)
            if active is None:
                raise ValidationError(f"No rules pack is installed in {self.db.display_url}: the program's own "
                                      f"pack {packaged_version()} is in force, and there is nothing to go back to.")
            active.status = RETIRED
            if previous is not None:
                previous.status = ACTIVE
            s.flush()
            after = self._in_force(s)
            audit.record(s, "rules.rolled_back", "rules_pack", active.id,
                         before={"version": before[0], "sha256": before[1], "source": before[2]},
                         after={"version": after[0], "sha256": after[1], "source": after[2]},
                         details={"retired": active.version,
                                  "restored": previous.version if previous is not None else PACKAGED})
        return self._changed(before[0])

    # -- helpers ----------------------------------------------------------------------------------

    def _changed(self, before_version: str) -> RulesChange:
        with self.db.reader() as s:
            activate(s)
        shown = self.show()
        return RulesChange(before_version, shown.version, shown)

    @staticmethod
    def _lock(session: Session) -> None:
        """Two admins installing at once take turns (SQLite's writers queue anyway)."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("LOCK TABLE rules_pack IN SHARE ROW EXCLUSIVE MODE"))

    @staticmethod
    def _in_force(session: Session) -> tuple[str, str | None, str]:
        """The version, archive checksum and source of the pack the database puts in force."""
        active = pack_rows(session).get(ACTIVE)
        packaged = packaged_version()
        if active is None or newer(packaged, active.version):
            return packaged, None, PACKAGED
        return active.version, active.sha256, INSTALLED
