"""Anchors: the head of the audit chain (event number and hash) kept outside the database.

A hash chain proves that no event was altered only against someone who cannot write the database:
whoever can may rewrite an event and recompute every later hash, cut the tail and fix the head, or
delete everything. So the head is also written where the database cannot reach: into every audit pack
(its manifest), every backup, and a small file in the user's data folder (``anchors.json``), which
every program that opens the database updates on start and exit and around every commit that writes
events. ``ecms check`` verifies that the chain still holds each anchor it can find.

A unit of work writes its anchor just before its commit as *pending* and confirms it just after, so a
program killed in between leaves an anchor that the chain either holds (the commit happened) or never
reached (it did not): pending anchors vouch for the head but never count against the chain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ecms_desktop import paths

log = logging.getLogger(__name__)

FILE_NAME = "anchors.json"
FORMAT = "ecms-anchors/1"
#: Anchors kept per database: the newest commits' and the newest of every other source.
KEEP_WRITES = 30
KEEP_OTHERS = 40
KEEP_PENDING = 5
KEEP_SUPERSEDED = 10


@dataclass(frozen=True)
class Anchor:
    """The chain's head at some moment: event ``seq`` had hash ``hash``."""

    seq: int
    hash: str
    #: What wrote it: ``write`` (a commit), ``start``, ``exit``, ``backup``, ``audit pack``, ``restore``,
    #: ``init``, ``check``.
    source: str
    #: When it was written (UTC, ISO).
    at: str = ""
    #: Written just before a commit; binding only once the chain holds it.
    pending: bool = False
    #: The file it was read from (filled in when reported).
    where: str = ""

    def describe(self) -> str:
        when = f" at {self.at[:19].replace('T', ' ')} UTC" if self.at else ""
        return f"event {self.seq} ({self.source}{when})"


def database_key(url: str) -> str:
    """The name of a database in the anchors file: the SQLite file's resolved path, or the server URL
    without its password (with its options, so two schemas of one server are two databases)."""
    try:
        u = make_url(url)
    except ArgumentError:
        return url
    if u.get_backend_name() == "sqlite":
        database = u.database or ""
        if database and database != ":memory:":
            return f"sqlite:{Path(database).expanduser().resolve()}"
        return "sqlite::memory:"
    return u.set(password=None).render_as_string(hide_password=False)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class AnchorBook:
    """The anchors file of a data folder (default: the user's, :func:`ecms_desktop.paths.data_dir`)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder if folder is not None else paths.data_dir()) / FILE_NAME

    # -- reading

    def anchors(self, key: str) -> list[Anchor]:
        """Every anchor of a database, oldest first (missing or unreadable file: none)."""
        entry = self._load().get("databases", {}).get(key, {})
        return [Anchor(**{**a, "where": str(self.path)}) for a in entry.get("anchors", [])]

    # -- writing (never fails the caller: a problem is logged)

    def add(self, key: str, seq: int, hash_: str, source: str, *, pending: bool = False) -> None:
        anchor = Anchor(seq, hash_, source, _now(), pending)
        with self._editing() as data:
            entry = data.setdefault("databases", {}).setdefault(key, {"anchors": []})
            items = [a for a in entry["anchors"] if not (a["seq"] == seq and a["hash"] == hash_
                                                         and a["source"] == source)]
            items.append({k: v for k, v in asdict(anchor).items() if k != "where"})
            entry["anchors"] = _pruned(items)

    def confirm(self, key: str, seq: int, hash_: str) -> None:
        """The commit of a pending anchor happened."""
        with self._editing() as data:
            entry = data.get("databases", {}).get(key)
            if entry is None:
                return
            for a in entry["anchors"]:
                if a["seq"] == seq and a["hash"] == hash_ and a.get("pending"):
                    a["pending"] = False
            entry["anchors"] = _pruned(entry["anchors"])

    def discard(self, key: str, seq: int, hash_: str) -> None:
        """The commit of a pending anchor did not happen."""
        with self._editing() as data:
            entry = data.get("databases", {}).get(key)
            if entry is None:
                return
            entry["anchors"] = [a for a in entry["anchors"]
                                if not (a.get("pending") and a["seq"] == seq and a["hash"] == hash_)]

    def supersede(self, key: str, reason: str) -> None:
        """Set a database's anchors aside: a new database was created or a backup restored in its place,
        so the chain there starts again (the old anchors stay in the file, marked why)."""
        with self._editing() as data:
            entry = data.setdefault("databases", {}).setdefault(key, {"anchors": []})
            if entry["anchors"]:
                old = entry.setdefault("superseded", [])
                old.append({"at": _now(), "reason": reason, "anchors": entry["anchors"][-5:]})
                entry["superseded"] = old[-KEEP_SUPERSEDED:]
            entry["anchors"] = []

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("the anchors file %s cannot be read: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) and data.get("format") == FORMAT else {}

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=10):
                data = self._load() or {"format": FORMAT, "databases": {}}
                yield data
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.path)
        except (OSError, Timeout) as exc:
            log.warning("the anchors file %s was not updated: %s", self.path, exc)


def _pruned(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pending = [a for a in items if a.get("pending")][-KEEP_PENDING:]
    writes = [a for a in items if not a.get("pending") and a["source"] == "write"][-KEEP_WRITES:]
    others = [a for a in items if not a.get("pending") and a["source"] != "write"][-KEEP_OTHERS:]
    keep = {id(a) for a in (*pending, *writes, *others)}
    return sorted((a for a in items if id(a) in keep), key=lambda a: (a["seq"], a.get("at", "")))
