"""Reading files the user names (dropped, chosen in a dialog, in a watched folder, named in an
import): regular files only, within a size limit, and never the open database's own files.

A path in an import file or typed by the user can name anything the user can read: ``/dev/zero``
(which reads until memory runs out), a named pipe (which blocks until someone writes to it), a
socket or a folder. A file is opened without blocking, checked with ``fstat`` on the open descriptor
(so that it cannot be swapped between check and read) to be a regular file, and read to at most
``max_bytes`` (a file that grows while it is read is still caught).

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

from ecms_desktop.services.core.errors import DocumentError

#: SQLite's own files beside a database file, and what to call them in a message.
_COMPANIONS: tuple[tuple[str, str], ...] = (
    ("", "database file"),
    ("-wal", "write-ahead log"),
    ("-shm", "shared-memory index"),
    ("-journal", "rollback journal"),
)

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)

_lock = threading.Lock()
#: Database files opened by this process, by the object that holds them open (kept while it lives).
_protected: dict[int, Path] = {}


def protect_database_file(owner: object, path: Path) -> None:
    """Keep ``path`` (an SQLite database file) and its companions out of every user-file read for
    as long as ``owner`` (the :class:`~ecms_desktop.services.core.database.Database`) exists: its pool
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


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MB" if size >= 2**20 else f"{size:,} bytes"


def read_user_file(path: Path, *, max_bytes: int, name: str | None = None) -> bytes:
    """The bytes of a file the user named, or :class:`DocumentError` saying plainly why it cannot be
    read: one of the open database's files, missing, a folder, a device or pipe, no permission, or
    larger than ``max_bytes``. ``name``: how the file is called in messages (default: its name)."""
    path = Path(path)
    shown = name or path.name
    refuse_database_file(path, shown)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise DocumentError(f"{shown}: file not found ({path})") from exc
    except IsADirectoryError as exc:
        raise DocumentError(f"{shown}: is a folder, not a file") from exc
    except PermissionError as exc:
        raise DocumentError(f"{shown}: you have no permission to read it") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DocumentError(f"{shown}: cannot be opened ({reason})") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DocumentError(f"{shown}: is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            kind = ("a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                    else "a socket" if stat.S_ISSOCK(info.st_mode) else "something else")
            raise DocumentError(f"{shown}: is {kind}, not a regular file; only regular files are read")
        if info.st_size > max_bytes:
            raise DocumentError(f"{shown}: {_megabytes(info.st_size)} is larger than the "
                                f"{_megabytes(max_bytes)} limit")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb", buffering=0) as fh:
        try:
            chunks: list[bytes] = []
            total = 0
            while total <= max_bytes:
                chunk = fh.read(min(max_bytes + 1 - total, 16 * 2**20))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise DocumentError(f"{shown}: cannot be read ({exc.strerror or exc})") from exc
    if total > max_bytes:
        raise DocumentError(f"{shown}: is larger than the {_megabytes(max_bytes)} limit")
    return b"".join(chunks)


__all__ = ["database_file_kind", "database_files", "protect_database_file", "read_user_file",
           "refuse_database_file"]
