"""Page rendering: the document sandbox (warm worker) versus bare in-process PyMuPDF.

Builds a scanned-looking certificate (drawn with reportlab, rasterised at 200 dpi with a slight
skew, stored as a JPEG in an image-only PDF), then renders page 1 at 150 dpi N times each way and
prints the median milliseconds and the ratio.

    .venv/bin/python bench/bench_render.py [--runs 30]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import statistics
import sys
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecms_desktop.services.documents.sandbox import DocumentSandbox


def make_scanned_pdf() -> bytes:
    """A letter page drawn with reportlab, rasterised at 200 dpi with a 1.2 degree skew."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter)
    width, height = letter
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, height - 72, "RESALE / EXEMPTION CERTIFICATE")
    c.setFont("Helvetica", 10)
    rng = random.Random(7)
    y = height - 110
    for i in range(40):
        c.drawString(72, y, f"{i + 1:02d}. Purchaser field ........ " + "x" * rng.randint(10, 50))
        y -= 15
    c.rect(60, 60, width - 120, height - 120)
    c.line(72, 100, 300, 100)
    c.drawString(72, 88, "Signature of purchaser")
    c.save()

    src = pymupdf.open(stream=buf.getvalue(), filetype="pdf")
    zoom = 200 / 72
    pix = src[0].get_pixmap(matrix=pymupdf.Matrix(zoom, zoom).prerotate(1.2), colorspace=pymupdf.csGRAY)
    # Scanner noise: a sprinkling of grey specks.
    for _ in range(4000):
        pix.set_pixel(rng.randrange(pix.width), rng.randrange(pix.height), (rng.randrange(120, 220),))
    jpeg = pix.tobytes("jpeg", jpg_quality=80)
    out = pymupdf.open()
    page = out.new_page(width=pix.width * 72 / 200, height=pix.height * 72 / 200)
    page.insert_image(page.rect, stream=jpeg)
    return bytes(out.tobytes(garbage=3, deflate=True))


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--dpi", type=float, default=150)
    args = parser.parse_args()

    data = make_scanned_pdf()
    sha = hashlib.sha256(data).hexdigest()
    print(f"document: {len(data) / 1024:.0f} KB image-only PDF, {args.runs} runs at {args.dpi:g} dpi")

    # Bare PyMuPDF, in process, document already open (the best case).
    doc = pymupdf.open(stream=data, filetype="pdf")
    doc[0].get_pixmap(dpi=args.dpi)
    bare: list[float] = []
    bare_png: list[float] = []
    for _ in range(args.runs):
        t = time.perf_counter()
        pix = doc[0].get_pixmap(dpi=args.dpi)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        pix = doc[0].get_pixmap(dpi=args.dpi)
        pix.tobytes("png")
        bare_png.append(time.perf_counter() - t)

    with DocumentSandbox() as sandbox:
        t = time.perf_counter()
        sandbox.start()
        startup = time.perf_counter() - t
        t = time.perf_counter()
        first = sandbox.render_page(data, 0, dpi=args.dpi, sha256=sha)
        cold = time.perf_counter() - t
        warm: list[float] = []
        warm_hash: list[float] = []
        for _ in range(args.runs):
            t = time.perf_counter()
            sandbox.render_page(data, 0, dpi=args.dpi, sha256=sha)
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            sandbox.render_page(data, 0, dpi=args.dpi)
            warm_hash.append(time.perf_counter() - t)

    print(f"page: {first.width} x {first.height} px, PNG {len(first.png) / 1024:.0f} KB")
    print(f"worker start-up (spawn + import pymupdf): {startup * 1000:7.1f} ms")
    print(f"sandbox first render (sends the file):    {cold * 1000:7.1f} ms")
    print(f"bare get_pixmap:                          {median_ms(bare):7.1f} ms")
    print(f"bare get_pixmap + tobytes('png'):         {median_ms(bare_png):7.1f} ms")
    print(f"sandbox render_page, warm, sha given:     {median_ms(warm):7.1f} ms")
    print(f"sandbox render_page, warm, sha computed:  {median_ms(warm_hash):7.1f} ms")
    print(f"ratio sandbox / bare get_pixmap:          {median_ms(warm) / median_ms(bare):7.2f}x")


if __name__ == "__main__":
    main()
