"""Pictures the document worker rendered (page images, thumbnails, logo previews) made into Qt images."""

from __future__ import annotations

from PySide6.QtGui import QImage


def png_image(data: bytes) -> QImage:
    """The PNG ``data`` as an image (a null image when it cannot be decoded). Decoded as PNG only:
    the bytes come from the document worker, and no other decoder is offered them."""
    image = QImage()
    image.loadFromData(data, "PNG")
    return image
