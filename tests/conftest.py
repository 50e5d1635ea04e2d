"""Test fixtures: Qt offscreen, the shared reference folder, and databases on SQLite and PostgreSQL.

Every test that takes the ``db`` fixture runs twice: on a fresh SQLite file and, when
``ECMS_TEST_DATABASE_URL`` is set (``.ci/run`` sets it), on a fresh PostgreSQL schema. Without that
variable the PostgreSQL runs skip and say why.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt
os.environ.setdefault("ECMS_USER", "tester")

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.factories import make_company

REPO = Path(__file__).resolve().parent.parent
SHARED = (REPO.parent / "shared").resolve()
PG_URL = os.environ.get("ECMS_TEST_DATABASE_URL", "")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's real data folder or database."""
    monkeypatch.setenv("ECMS_DATA_DIR", str(tmp_path_factory.mktemp("ecms-data")))
    monkeypatch.delenv("ECMS_DATABASE_URL", raising=False)


@pytest.fixture(autouse=True)
def _packaged_rules_pack() -> Iterator[None]:
    """A rules pack a test installed (and made the one in force) is not left in force for the next test."""
    yield
    from ecms_desktop.rules import use_rules_dir

    use_rules_dir(None)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (reference data, real forms, bad PDFs)."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared folder at {SHARED} (present in CI and on developer machines)")
    return SHARED


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database migrated once by Alembic; each test gets a copy."""
    from ecms_desktop.services.core.database import Database

    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated, empty ECMS database URL on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "ecms.sqlite"
        shutil.copy(_sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL run: set ECMS_TEST_DATABASE_URL (e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test) to run this test on PostgreSQL")
    from sqlalchemy import create_engine, text

    from ecms_desktop.services.core.database import Database

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _pg_schema_url(schema)
    db = Database(url)
    db.upgrade()
    db.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    """An open :class:`~ecms_desktop.services.core.database.Database` on a fresh schema (both backends)."""
    from ecms_desktop.services.core.database import Database

    database = Database(db_url)
    database.ensure_ready()
    yield database
    database.dispose()


@pytest.fixture
def company_id(db) -> int:  # type: ignore[no-untyped-def]
    """A company in the fresh database (tests.factories.make_company: Acme of Austin, Texas)."""
    return make_company(db)


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    """A real SMTP server on 127.0.0.1 (aiosmtpd) for the test; see tests/helpers/smtp_server.py."""
    from tests.helpers.smtp_server import SmtpTestServer

    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def memory_keyring():  # type: ignore[no-untyped-def]
    """The keyring is an in-memory one the test can look inside (tests/helpers/memory_keyring.py)."""
    import keyring

    from tests.helpers.memory_keyring import MemoryKeyring

    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring():  # type: ignore[no-untyped-def]
    """No keyring on this computer (keyring's own "fail" backend), whatever the machine has."""
    import keyring
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)
