"""What a backup file is: an SQLite copy made by ``ecms backup`` or a PostgreSQL ``pg_dump`` archive of
an ECMS schema, with its schema revisions and the head of its audit chain (an anchor).

Only reads: a backup file is opened read-only by SQLite (``immutable``) or listed by ``pg_restore``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.services.core import user_files

#: The table ``ecms backup`` adds to an SQLite copy: what it is, from where, when, by which program.
INFO_TABLE = "ecms_backup"
FORMAT = "ecms-backup/1"
_PG_MAGIC = b"PGDMP"
_ECMS_TABLES = {"alembic_version", "certificate", "audit_event", "audit_head"}


class BackupFormatError(Exception):
    """The file is not a backup made by ``ecms backup`` (the message says why)."""


@dataclass(frozen=True)
class BackupInfo:
    #: ``sqlite`` or ``postgresql``.
    kind: str
    revisions: tuple[str, ...]
    head_seq: int
    head_hash: str
    #: When it was made (UTC, ISO), and from which database (password hidden).
    taken_at: str = ""
    source: str = ""
    program_version: str = ""
    #: PostgreSQL: the schema the archive holds.
    schema: str = ""


def pg_tool(name: str) -> str | None:
    """The path of ``pg_dump`` / ``pg_restore``: ``ECMS_PG_BIN`` if set, else on the PATH, else the newest
    under ``/usr/lib/postgresql/*/bin`` (Debian, Ubuntu)."""
    folder = os.environ.get("ECMS_PG_BIN")
    if folder:
        candidate = Path(folder) / name
        return str(candidate) if candidate.exists() else None
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return str(versions[-1]) if versions else None


def describe_backup(path: Path) -> BackupInfo:
    """Read what a backup file is; :class:`BackupFormatError` when it is not an ECMS backup."""
    found = user_files.database_file_kind(path)  # never opened: that would drop SQLite's locks on it
    if found is not None:
        raise BackupFormatError(f"this is the {found[0]} of the ECMS database in use ({found[1]}), not a backup.")
    with contextlib.suppress(OSError):
        if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
            raise BackupFormatError("this is not a regular file (a device, pipe or socket).")
    try:
        with path.open("rb") as fh:
            magic = fh.read(16)
    except IsADirectoryError:
        raise BackupFormatError("this is a folder, not a backup file.") from None
    except FileNotFoundError:
        raise BackupFormatError("there is no such file.") from None
    except OSError as exc:
        raise BackupFormatError(f"cannot read it ({exc.strerror or exc}).") from exc
    if magic.startswith(_PG_MAGIC):
        return _describe_pg(path)
    if magic == b"SQLite format 3\x00":
        return _describe_sqlite(path)
    raise BackupFormatError("this is not a backup made by `ecms backup` (neither an SQLite copy nor a "
                            "PostgreSQL archive).")


def _describe_sqlite(path: Path) -> BackupInfo:
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise BackupFormatError(f"cannot open it ({exc}).") from exc
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if INFO_TABLE not in tables:
            what = "an ECMS database, not a backup made by `ecms backup`" if tables >= _ECMS_TABLES else \
                "not an ECMS backup"
            raise BackupFormatError(f"this SQLite file is {what}.")
        if not tables >= _ECMS_TABLES:
            raise BackupFormatError("this backup lacks the ECMS tables (it is damaged or not an ECMS backup).")
        info = dict(con.execute(f"SELECT key, value FROM {INFO_TABLE}").fetchall())
        if info.get("format") != FORMAT:
            raise BackupFormatError(f"this backup's format is {info.get('format')!r}, not one this program reads.")
        revisions = tuple(sorted(r[0] for r in con.execute("SELECT version_num FROM alembic_version")))
        head = con.execute("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetchone() or (0, "0" * 64)
    except sqlite3.DatabaseError as exc:
        raise BackupFormatError(f"the file is damaged or not a backup ({exc}).") from exc
    finally:
        con.close()
    return BackupInfo("sqlite", revisions, int(head[0]), str(head[1]), info.get("taken_at", ""),
                      info.get("source", ""), info.get("program_version", ""))


def _run_pg_restore(args: list[str]) -> str:
    tool = pg_tool("pg_restore")
    if tool is None:
        raise BackupFormatError("this is a PostgreSQL archive, and pg_restore (PostgreSQL's client tools) "
                                "is not installed here.")
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise BackupFormatError(f"pg_restore cannot read it: {done.stderr.strip().splitlines()[-1:] or ['?']}")
    return done.stdout


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ")
_TOC_DATE = re.compile(r"^;\s+Archive created at (.+)$", re.MULTILINE)


def _copy_rows(sql: str, table: str) -> list[dict[str, str]]:
    """The rows of ``COPY <schema>.<table> (cols) FROM stdin;`` in pg_restore's SQL output."""
    match = re.search(rf"^COPY \S*?{re.escape(table)} \(([^)]*)\) FROM stdin;\n(.*?)^\\\.$", sql, re.M | re.S)
    if not match:
        return []
    columns = [c.strip().strip('"') for c in match.group(1).split(",")]
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in match.group(2).splitlines() if line]


def _describe_pg(path: Path) -> BackupInfo:
    toc = _run_pg_restore(["--list", str(path)])
    tables: dict[str, str] = {}
    for line in toc.splitlines():
        m = _TOC_TABLE.match(line)
        if m:
            tables[m.group(2)] = m.group(1)
    if not set(tables) >= _ECMS_TABLES:
        raise BackupFormatError("this PostgreSQL archive does not hold an ECMS database.")
    schema = tables["audit_event"]
    data = _run_pg_restore(["--data-only", "--table=alembic_version", "--table=audit_head", "--file=-", str(path)])
    revisions = tuple(sorted(r["version_num"] for r in _copy_rows(data, "alembic_version")))
    heads = [r for r in _copy_rows(data, "audit_head") if r.get("id") == "1"]
    head_seq, head_hash = (int(heads[0]["last_seq"]), heads[0]["last_hash"]) if heads else (0, "0" * 64)
    created = _TOC_DATE.search(toc)
    return BackupInfo("postgresql", revisions, head_seq, head_hash, created.group(1).strip() if created else "",
                      schema=schema)
