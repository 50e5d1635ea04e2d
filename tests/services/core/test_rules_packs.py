"""Installing rules packs in the database (services/core/rules_packs.py), on SQLite and PostgreSQL: newer
ones in, older, equal and broken ones refused, going back, the audit trail, the pack in force when a
database is opened (worker processes included), and the certificates whose result a stricter pack changes."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from ecms_desktop.models import InstalledRulesPack
from ecms_desktop.rules import load_rules_pack, loader, rules_dir_in_force
from ecms_desktop.rules.archive import build_archive
from ecms_desktop.services.core import audit, rules_in_force
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.people import PermissionDeniedError
from ecms_desktop.services.core.rules_packs import RulesPackService
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import AS_OF, make_certificate
from tests.helpers.rules_pack import newer_copy
from tests.helpers.team import team_on

PACKAGED = load_rules_pack().version


def archive_of(tmp_path: Path, version: str, *, stricter_texas: bool = False) -> Path:
    out = tmp_path / f"ecms-rules-{version}.zip"
    build_archive(newer_copy(tmp_path, version, stricter_texas=stricter_texas), out)
    return out


def rules_events(db: Database) -> list[audit.AuditEntry]:
    with db.reader() as s:
        return audit.list_events(s, entity_type="rules_pack")


def statuses(db: Database) -> list[tuple[str, str]]:
    with db.reader() as s:
        return [(r.version, r.status) for r in s.execute(select(InstalledRulesPack).order_by(InstalledRulesPack.id))
                .scalars()]


def test_install_show_and_go_back_with_the_audit_trail(db: Database, tmp_path: Path) -> None:
    service = RulesPackService(db)
    shown = service.show()
    assert (shown.version, shown.source, shown.previous) == (PACKAGED, "packaged", None)

    first = archive_of(tmp_path, "2026.12.2")
    change = service.install(first, note="December update")
    assert (change.before_version, change.after_version) == (PACKAGED, "2026.12.2")
    assert load_rules_pack().version == "2026.12.2" and rules_dir_in_force() is not None
    shown = service.show()
    assert (shown.version, shown.source, shown.installed_by, shown.previous) == ("2026.12.2", "installed", "tester",
                                                                                  "packaged")
    (event,) = rules_events(db)
    assert event.action == "rules.installed" and event.actor == "tester"
    assert event.before == {"version": PACKAGED, "sha256": None, "source": "packaged"}
    assert event.after is not None and event.after["version"] == "2026.12.2"
    assert event.after["sha256"] == shown.sha256

    service.install(archive_of(tmp_path, "2026.12.10"))  # numerically newer than 2026.12.2
    assert statuses(db) == [("2026.12.2", "previous"), ("2026.12.10", "active")]
    assert service.show().previous == "2026.12.2"

    back = service.rollback()
    assert (back.before_version, back.after_version) == ("2026.12.10", "2026.12.2")
    assert load_rules_pack().version == "2026.12.2"
    assert statuses(db) == [("2026.12.2", "active"), ("2026.12.10", "retired")]
    back = service.rollback()
    assert back.after_version == PACKAGED and load_rules_pack().version == PACKAGED
    assert rules_dir_in_force() is None
    with pytest.raises(ValidationError, match="nothing to go back to"):
        service.rollback()
    assert [e.action for e in rules_events(db)] == ["rules.installed", "rules.installed", "rules.rolled_back",
                                                      "rules.rolled_back"]
    last = rules_events(db)[-1]
    assert last.before is not None and last.before["version"] == "2026.12.2"
    assert last.after == {"version": PACKAGED, "sha256": None, "source": "packaged"}
    # The installed packs are tracked records: the trail's digests match them.
    report = check_database(db, local_anchors=False)
    assert report.ok, report.problems


def test_older_equal_and_broken_packs_are_refused_with_both_versions(db: Database, tmp_path: Path) -> None:
    service = RulesPackService(db)
    with pytest.raises(ValidationError, match=rf"rules pack {PACKAGED} is already the one in force"):
        service.install(archive_of(tmp_path, PACKAGED))
    service.install(archive_of(tmp_path, "2026.12.5"))
    with pytest.raises(ValidationError) as older:
        service.install(archive_of(tmp_path, "2026.12.3"))
    assert "ecms-rules-2026.12.3.zip: rules pack 2026.12.3 is older than the one in force, 2026.12.5" \
        in str(older.value)
    broken = tmp_path / "ecms-rules-2026.12.9.zip"
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(ValidationError, match=re.escape("ecms-rules-2026.12.9.zip: not a rules pack archive")):
        service.install(broken)
    needs = tmp_path / "needs.zip"
    build_archive(newer_copy(tmp_path, "2026.12.9"), needs, requires_program="99.0")
    with pytest.raises(ValidationError, match=re.escape("needs ECMS Desktop 99.0 or newer")):
        service.install(needs)
    assert statuses(db) == [("2026.12.5", "active")]
    assert [e.action for e in rules_events(db)] == ["rules.installed"]


def test_only_an_admin_installs_or_goes_back(db: Database, db_url: str, tmp_path: Path) -> None:
    pack = archive_of(tmp_path, "2026.12.2")
    with team_on(db, db_url) as team:
        for name in ("Riley Reviewer", "Alex Approver"):
            with pytest.raises(PermissionDeniedError, match="install a rules pack"):
                RulesPackService(team.dbs[name]).install(pack)
        RulesPackService(team.dbs["Dana Admin"]).install(pack)
        with pytest.raises(PermissionDeniedError, match="go back"):
            RulesPackService(team.dbs["Riley Reviewer"]).rollback()
    assert rules_events(db)[0].actor == "Dana Admin"


def test_opening_the_database_puts_its_pack_in_force_and_mends_the_unpacked_copy(db: Database, db_url: str,
                                                                                 tmp_path: Path) -> None:
    RulesPackService(db).install(archive_of(tmp_path, "2026.12.2"))
    folder = rules_dir_in_force()
    assert folder is not None
    loader.use_rules_dir(None)
    (folder / "states" / "TX.json").write_text("{}", encoding="utf-8")  # the cache changed behind our back
    other = Database(db_url)
    try:
        other.ensure_ready()
        assert load_rules_pack().version == "2026.12.2"
        assert load_rules_pack().state("TX").name == "Texas"
    finally:
        other.dispose()
    # A worker process started now uses the same pack.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_version_in_force) == "2026.12.2"


def _version_in_force() -> str:
    return load_rules_pack().version


def test_the_programs_own_newer_pack_wins(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RulesPackService(db).install(archive_of(tmp_path, "2026.12.2"))
    newer_program = newer_copy(tmp_path, "2027.1.1", name="program-rules")
    monkeypatch.setattr(loader, "default_rules_dir", lambda: newer_program)
    monkeypatch.setattr(rules_in_force, "default_rules_dir", lambda: newer_program)
    loader._default_pack.cache_clear()
    try:
        db.ensure_ready()
        assert load_rules_pack().version == "2027.1.1"
        shown = RulesPackService(db).show()
        assert (shown.version, shown.source, shown.installed_version) == ("2027.1.1", "packaged", "2026.12.2")
        assert "newer than the installed 2026.12.2" in shown.note
        with pytest.raises(ValidationError, match=re.escape("older than the one in force, 2027.1.1")):
            RulesPackService(db).install(archive_of(tmp_path, "2026.12.3"))
    finally:
        loader._default_pack.cache_clear()


def test_a_stricter_pack_lists_the_certificates_whose_result_changes(db: Database, company_id: int,
                                                                      tmp_path: Path) -> None:
    cert = make_certificate(db, company_id)
    ValidationService(db).validate_many([cert.id], as_of=AS_OF)
    assert ValidationService(db).stale_certificates(AS_OF) == []
    RulesPackService(db).install(archive_of(tmp_path, "2026.12.2", stricter_texas=True))
    (stale,) = ValidationService(db).stale_certificates(AS_OF)
    assert (stale.certificate_id, stale.rules_changed, stale.result_changes) == (cert.id, True, True)
    ValidationService(db).revalidate_stale(AS_OF)
    latest = ValidationService(db).latest(cert.id)
    assert latest is not None and latest.rules_version == "2026.12.2"
    assert any(f.field == "purchaser_ein" for f in latest.findings)
