"""Help > About's facts: versions, the database without its password, the licence and the source."""

from __future__ import annotations

import ecms_desktop
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core.about import program_facts


def test_the_facts_name_versions_database_licence_and_source() -> None:
    rules = load_rules_pack()
    facts = program_facts(rules, "postgresql+psycopg://ann:s3cret@db.example:5432/ecms")
    assert facts.version == ecms_desktop.__version__
    assert facts.rules_version == rules.version and facts.rules_title == rules.title
    assert "s3cret" not in facts.database and "ann:***@db.example:5432/ecms" in facts.database
    assert "Affero" in facts.licence and "AGPL-3.0-or-later" in facts.licence
    assert str(facts.installed_in) in facts.source and "corresponding source" in facts.source
    assert (facts.installed_in / "__init__.py").is_file()


def test_no_database_open() -> None:
    assert program_facts(load_rules_pack(), None).database == ""
