"""Reading a file the user (or a file the user received) names: a regular file, within a size limit.

A path in an import file or typed by the user can name anything the user can read: ``/dev/zero``
(which reads until memory runs out), a named pipe (which blocks until someone writes to it), a
socket or a folder. The file is opened without blocking, checked with ``fstat`` on the open
descriptor (so that it cannot be swapped between check and read) to be a regular file, and read to
at most ``max_bytes`` (a file that grows while it is read is still caught).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ecms_desktop.errors import DocumentError

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MB" if size >= 2**20 else f"{size:,} bytes"


def read_user_file(path: Path, *, max_bytes: int, name: str | None = None) -> bytes:
    """The bytes of a regular file, or :class:`DocumentError` saying plainly why it cannot be read
    (missing, a folder, a device or pipe, no permission, larger than ``max_bytes``). ``name``: how
    the file is called in messages (default: its file name)."""
    shown = name or path.name
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
    with os.fdopen(fd, "rb", buffering=0) as fh:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DocumentError(f"{shown}: is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            kind = ("a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                    else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
            raise DocumentError(f"{shown}: is {kind}, not a file; only regular files are read")
        if info.st_size > max_bytes:
            raise DocumentError(f"{shown}: {_megabytes(info.st_size)} is larger than the "
                                f"{_megabytes(max_bytes)} limit")
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
