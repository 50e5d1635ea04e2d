"""Reading files the user names (dropped, chosen in a dialog, in a watched folder, named in an
import) without ever opening the open database's own files.

SQLite keeps its locks as POSIX advisory locks, and those belong to a process and a file: when this
process opens *any* descriptor on the database file (or its ``-wal``/``-shm``) and closes it, the
kernel drops every lock the process holds on that file, SQLite's own included (a documented SQLite
hazard, "How To Corrupt An SQLite Database File", section 2.2). Another program then believes nobody
uses the database, checkpoints it and deletes the write-ahead log this program still writes to: its
commits vanish for everyone else and indexes break. So nothing but SQLite opens those files: every
read of a path that comes from the user goes through :func:`read_user_file`, or through
:func:`refuse_database_file` just before a library opens the path itself. Both compare device and
inode with ``stat`` (never opening anything), so hard links, symbolic links and other spellings of
the same file are caught. Reading a file in *another* process (the document sandbox) is harmless.
"""

from __future__ import annotations

import os
import stat
import threading
import weakref
from pathlib import Path

from ecms_desktop.errors import DocumentError

#: SQLite's own files beside a database file, and what to call them in a message.
_COMPANIONS: tuple[tuple[str, str], ...] = (
    ("", "database file"),
    ("-wal", "write-ahead log"),
    ("-shm", "shared-memory index"),
    ("-journal", "rollback journal"),
)

_lock = threading.Lock()
#: Database files opened by this process, by the object that holds them open (kept while it lives).
_protected: dict[int, Path] = {}


def protect_database_file(owner: object, path: Path) -> None:
    """Keep ``path`` (an SQLite database file) and its companions out of every user-file read for
    as long as ``owner`` (the :class:`~ecms_desktop.services.database.Database`) exists: its pool
    may open new connections at any time."""
    key = id(owner)
    with _lock:
        _protected[key] = Path(path).expanduser().absolute()
    weakref.finalize(owner, _release, key)


def _release(key: int) -> None:
    with _lock:
        _protected.pop(key, None)


def database_files() -> list[tuple[Path, str, Path]]:
    """The open databases' files and companions (existing or not): (file, what it is, database)."""
    with _lock:
        bases = sorted(set(_protected.values()))
    return [(Path(f"{base}{suffix}"), what, base) for base in bases for suffix, what in _COMPANIONS]


def database_file_kind(path: Path) -> tuple[str, Path] | None:
    """What ``path`` is when it is one of the open databases' own files (``("write-ahead log",
    database path)``), else None. Uses ``stat`` only; a path that does not exist is not one."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    for candidate, what, base in database_files():
        try:
            other = os.stat(candidate)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return what, base
    return None


def refuse_database_file(path: Path, name: str | None = None) -> None:
    """Raise :class:`DocumentError` when ``path`` is a file of a database this program has open,
    without opening it. Call it before handing a user's path to anything that opens it."""
    found = database_file_kind(Path(path))
    if found is not None:
        what, base = found
        shown = name or Path(path).name
        raise DocumentError(
            f"{shown}: this is the {what} of the ECMS database in use ({base}); it is not a document and "
            "is never read by the program (reading it would disturb the database's locks). Choose another file.")


def read_user_file(path: Path, *, max_bytes: int, name: str | None = None) -> bytes:
    """The bytes of a file the user named: refused (DocumentError, saying what is wrong) when it is one
    of the open database's files, missing, a folder, a device or pipe, or larger than ``max_bytes``.
    Opened non-blocking and checked with ``fstat`` before anything is read, so a named pipe or a
    device never hangs or floods the program."""
    path = Path(path)
    shown = name or path.name
    refuse_database_file(path, shown)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise DocumentError(f"{shown}: file not found ({path})") from exc
    except IsADirectoryError as exc:
        raise DocumentError(f"{shown}: is a folder, not a file") from exc
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DocumentError(f"{shown}: cannot be read ({reason})") from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise DocumentError(f"{shown}: is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise DocumentError(f"{shown}: is not a regular file (a device, pipe or socket) and is not read")
        if st.st_size > max_bytes:
            raise DocumentError(f"{shown}: {st.st_size / 1e6:.0f} MB is larger than the "
                                f"{max_bytes // 2**20} MB limit")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:  # the file grew while it was read
                raise DocumentError(f"{shown}: larger than the {max_bytes // 2**20} MB limit")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise DocumentError(f"{shown}: cannot be read ({exc.strerror})") from exc
    finally:
        os.close(fd)


__all__ = ["database_file_kind", "database_files", "protect_database_file", "read_user_file",
           "refuse_database_file"]
