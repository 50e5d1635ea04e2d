"""What kind of file a customer document is, from its first bytes (magic numbers only, never its name),
and the file name extensions and words that go with each kind.

Cheap and in-process: nothing here parses the file; that is done only in the document worker (see
:mod:`ecms_desktop.services.documents.sandbox`).
"""

from __future__ import annotations

__all__ = ["EXTENSIONS", "TYPE_NAMES", "sniff_media_type"]


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the first bytes of ``data`` (magic numbers only), or None if unknown.

    Cheap and in-process; it does not parse the file. A PDF may have a little junk before its
    ``%PDF-`` marker (MuPDF tolerates up to about 1 KB), so that is searched for too.
    """
    head = bytes(data[:1024])
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "image/jp2"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"BM") and len(head) >= 26:
        return "image/bmp"
    if b"%PDF-" in head:
        return "application/pdf"
    return None


#: The file name extensions each media type is known by.
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/tiff": (".tif", ".tiff"),
    "image/jp2": (".jp2", ".j2k", ".jpf", ".jpx"),
    "image/gif": (".gif",),
    "image/bmp": (".bmp", ".dib"),
}
#: Each media type in words, for messages.
TYPE_NAMES = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/tiff": "TIFF image",
    "image/jp2": "JPEG 2000 image",
    "image/gif": "GIF image",
    "image/bmp": "BMP image",
    "message/rfc822": "e-mail",
}
