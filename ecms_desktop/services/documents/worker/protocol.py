"""The worker's side of the protocol with the parent: frames of a JSON header and a blob, and
the failures it answers with (see :mod:`ecms_desktop.services.documents.worker`)."""

from __future__ import annotations

import json
import re
import struct
from typing import IO, Any

FRAME_HEADER = struct.Struct("!II")
MAX_HEADER_BYTES = 1 << 20

#: Error texts of MuPDF and Python that mean the worker ran out of memory (it then restarts).
MEMORY_RE = re.compile(r"malloc|out of memory|cannot allocate|memory", re.IGNORECASE)
#: Bounds on what a ``fields`` answer carries back (a crafted form with a million fields or a
#: megabyte-long value must not make the answer itself a problem).
MAX_FIELDS = 5000
MAX_FIELD_TEXT = 4000


class Failure(Exception):
    """A reason the document cannot be used; ``kind`` is mapped to a message by the parent."""

    def __init__(self, kind: str, detail: str = "", *, restart: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.restart = restart



# --------------------------------------------------------------------------------------------- I/O


def read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame; ``None`` at end of file (the parent went away)."""
    head = read_exact(stream, FRAME_HEADER.size)
    if head is None:
        return None
    hlen, blen = FRAME_HEADER.unpack(head)
    if hlen > MAX_HEADER_BYTES:
        raise ValueError("frame header too large")
    header = read_exact(stream, hlen)
    blob = read_exact(stream, blen) if blen else b""
    if header is None or blob is None:
        return None
    return json.loads(header.decode("utf-8")), blob


def write_frame(stream: IO[bytes], header: dict[str, Any], blob: bytes = b"") -> None:
    """Write one frame and flush it."""
    encoded = json.dumps(header).encode("utf-8")
    stream.write(FRAME_HEADER.pack(len(encoded), len(blob)) + encoded)
    if blob:
        stream.write(blob)
    stream.flush()


def read_exact(stream: IO[bytes], n: int) -> bytes | None:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


