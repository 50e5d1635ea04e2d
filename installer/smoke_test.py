"""Smoke-test the built .deb on a clean path: unpacked with `dpkg-deb -x` into a temporary root (no root
rights needed, nothing on the machine changes), run from a temporary folder with a bare environment (no
source tree, no virtual environment, no PYTHONPATH), the way an installed copy runs.

    python3 installer/smoke_test.py [dist/ecms-desktop_<version>_<arch>.deb]

Checks: the package's files (links in /usr/bin, .desktop file, icons, copyright); `ecms --version`;
`ecms init`, `ecms demo` and `ecms list` on a fresh SQLite database; the desk in screenshot mode (a real,
non-blank picture); the .desktop file's Exec path (`ecms-desktop FILE`: a PDF arrives in the Inbox and is
drawn, a missing file is named); OCR of a picture through the system's Tesseract (said and left out when
Tesseract is not installed: the package only recommends it); psycopg's binary driver (it loads and tries
to connect; with ECMS_TEST_DATABASE_URL set, as in CI, it connects to that server and reads, changing
nothing); and the oldest glibc the bundle runs on. Standard library only: it runs on any Python 3.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from elfinfo import newest_glibc  # noqa: E402

AS_OF = "2026-12-01"
COMPANY = "Northwind Industrial Supply"  # the demo's first company


class SmokeFailure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a line of text, written by hand (no PDF library on the clean path)."""
    stream = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB or RGBA PNG (as Qt writes them), unfiltered."""
    data = path.read_bytes()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file")
    pos, idat, width = 8, b"", 0
    height = depth = color = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    check(depth == 8 and color in (2, 6), f"{path}: unexpected PNG format (depth {depth}, colour type {color})")
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def check_picture(path: Path, size: tuple[int, int]) -> str:
    """A real window picture: the size asked for, many colours, and no one colour covering nearly all of it."""
    check(path.is_file(), f"no picture was written to {path}")
    width, height, rows = png_pixels(path)
    check((width, height) == size, f"{path.name} is {width}x{height}, not {size[0]}x{size[1]}")
    bpp = len(rows[0]) // width
    counts: dict[bytes, int] = {}
    for row in rows[::4]:
        for x in range(0, width * bpp, 4 * bpp):
            px = row[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    total = sum(counts.values())
    top = max(counts.values()) / total
    check(len(counts) >= 32 and top < 0.9,
          f"{path.name} looks blank: {len(counts)} colours, the commonest covers {top:.0%} of it")
    return f"{width}x{height}, {len(counts)} colours, commonest {top:.0%}"


def main(argv: list[str]) -> int:
    if argv:
        deb = Path(argv[0])
    else:
        debs = sorted((HERE.parent / "dist").glob("ecms-desktop_*.deb"), key=lambda p: p.stat().st_mtime)
        if not debs:
            print("smoke_test: no dist/ecms-desktop_*.deb: build it with installer/build.sh", file=sys.stderr)
            return 2
        deb = debs[-1]
    with tempfile.TemporaryDirectory(prefix="ecms-smoke-") as tmp:
        try:
            run_checks(deb.resolve(), Path(tmp))
        except SmokeFailure as exc:
            print(f"smoke_test: FAILED: {exc}", file=sys.stderr)
            return 1
    print(f"smoke_test: {deb.name}: all checks passed")
    return 0


def run_checks(deb: Path, tmp: Path) -> None:
    root, work = tmp / "root", tmp / "work"
    work.mkdir()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    app = root / "opt" / "ecms-desktop"
    ecms, desk = app / "ecms", app / "ecms-desktop"

    # the package's files
    for name in ("ecms", "ecms-desktop"):
        link = root / "usr" / "bin" / name
        check(link.is_symlink() and os.readlink(link) == f"/opt/ecms-desktop/{name}",
              f"/usr/bin/{name} is not a link to /opt/ecms-desktop/{name}")
    desktop = (root / "usr/share/applications/ecms-desktop.desktop").read_text()
    check("\nExec=ecms-desktop %F\n" in desktop and "\nIcon=ecms-desktop\n" in desktop,
          "the .desktop file lacks Exec=ecms-desktop %F or Icon=ecms-desktop")
    for mime in ("application/pdf", "image/png", "image/jpeg", "image/tiff"):
        check(mime in desktop, f"the .desktop file does not register {mime}")
    for size in (16, 32, 48, 64, 128, 256, 512):
        check((root / f"usr/share/icons/hicolor/{size}x{size}/apps/ecms-desktop.png").is_file(), f"no {size} px icon")
    check((root / "usr/share/icons/hicolor/scalable/apps/ecms-desktop.svg").is_file(), "no scalable icon")
    check("AGPL-3.0-or-later" in (root / "usr/share/doc/ecms-desktop/copyright").read_text(), "no copyright file")
    opt = root / "opt" / "ecms-desktop"
    offer = (opt / "SOURCE-OFFER.md").read_text() if (opt / "SOURCE-OFFER.md").is_file() else ""
    named = re.search(r"`(source/[^`]+\.tar\.gz)`", offer)
    check(named is not None, "no SOURCE-OFFER.md naming the source archive in /opt/ecms-desktop")
    assert named is not None
    archive = opt / named.group(1)
    check(archive.is_file() and archive.stat().st_size > 100_000, f"{named.group(1)}, named by the source offer, "
          "is not in the package")
    check((opt / "THIRD-PARTY-NOTICES.md").is_file() and (opt / "licenses" / "LICENSE").is_file(),
          "no THIRD-PARTY-NOTICES.md or licenses/LICENSE in /opt/ecms-desktop")
    print(f"ok   package files: /usr/bin links, .desktop file, icons, copyright, notices, {named.group(1)}")

    # a bare environment: no virtual environment, no PYTHONPATH, the source tree nowhere on a path
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_DATA_HOME": str(tmp / "share"),
           "XDG_RUNTIME_DIR": str(tmp / "runtime"), "ECMS_DATA_DIR": str(tmp / "data")}
    (tmp / "runtime").mkdir(mode=0o700)
    db = f"sqlite:///{tmp / 'smoke.sqlite'}"

    def run(args: list[str], what: str, *, expect: int = 0, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        shown = " ".join(Path(a).name if a.startswith(str(app)) else a for a in args)
        check(proc.returncode == expect, f"{what}: `{shown}` exited {proc.returncode} (expected {expect})\n"
              f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        check("Traceback" not in proc.stderr, f"{what}: a Python traceback\n{proc.stderr[-3000:]}")
        return proc

    version = run([str(ecms), "--version"], "version").stdout.strip()
    check(bool(re.search(r"\d+\.\d+", version)), f"ecms --version printed {version!r}")
    print(f"ok   ecms --version: {version}")
    run([str(ecms), "--db", db, "init"], "init")
    run([str(ecms), "--db", db, "demo", "--certificates", "30", "--as-of", AS_OF], "demo")
    listed = run([str(ecms), "--db", db, "list", "--company", COMPANY, "--as-of", AS_OF], "list").stdout
    rows = [line for line in listed.splitlines() if re.match(r"\s*\d+\s", line)]
    check(len(rows) >= 5, f"ecms list showed {len(rows)} certificates of {COMPANY}:\n{listed}")
    print(f"ok   ecms init, demo --certificates 30, list: {len(rows)} certificates of {COMPANY}")

    main_png = work / "main.png"
    run([str(desk), "--db", db, "--as-of", AS_OF, "--screenshot", str(main_png), "--size", "1280x800"], "the desk")
    print(f"ok   the desk in screenshot mode: {check_picture(main_png, (1280, 800))}")

    (work / "scan.pdf").write_bytes(minimal_pdf("Resale certificate from the file manager"))
    inbox_png = work / "inbox.png"
    proc = run([str(desk), "--db", db, "--as-of", AS_OF, "--screenshot", str(inbox_png), "--size", "1280x800",
                "--view", "inbox", "scan.pdf", "missing.png"], "the .desktop Exec path (ecms-desktop FILE...)")
    check("scan.pdf: stored as document" in proc.stderr, f"scan.pdf did not reach the inbox:\n{proc.stderr}")
    check("missing.png: file not found" in proc.stderr, f"the missing file was not named:\n{proc.stderr}")
    print(f"ok   ecms-desktop FILE...: scan.pdf in the Inbox and drawn, missing.png named: "
          f"{check_picture(inbox_png, (1280, 800))}")
    (tmp / "pictures").mkdir()
    for picture in (main_png, inbox_png):
        os.replace(picture, tmp / "pictures" / picture.name)
    keep = os.environ.get("ECMS_SMOKE_PICTURES")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for picture in (tmp / "pictures").iterdir():
            Path(keep, picture.name).write_bytes(picture.read_bytes())

    if any(Path(d, "tesseract").is_file() for d in env["PATH"].split(":")):
        out = run([str(ecms), "--db", db, "intake", "--company", COMPANY, "--as-of", AS_OF, "--format", "json",
                   str(tmp / "pictures" / "main.png")], "OCR of a picture").stdout
        [item] = json.loads(out)
        extraction = item.get("extraction") or {}
        check(extraction.get("method") == "ocr" and extraction.get("engine") == "tesseract",
              f"the picture was not read by Tesseract: {json.dumps(extraction)[:500]}")
        print("ok   OCR of a picture through the system's Tesseract")
    else:
        print("skip OCR: Tesseract is not installed on this machine (the package recommends tesseract-ocr)")

    proc = run([str(ecms), "--db", "postgresql+psycopg://smoke@127.0.0.1:9/none", "list"], "PostgreSQL driver",
               expect=1, timeout=60)
    said = proc.stdout + proc.stderr
    check("No module named" not in said and "libpq" not in said and "127.0.0.1" in said,
          f"psycopg's binary driver did not load and try to connect:\n{said[-2000:]}")
    print("ok   PostgreSQL: psycopg's binary driver loads and tries the server (none runs on port 9)")
    server = os.environ.get("ECMS_TEST_DATABASE_URL", "")
    if server.startswith("postgresql"):  # a real server (CI's): connect and read, change nothing
        proc = subprocess.run([str(ecms), "--db", server, "list"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=60)
        said = proc.stdout + proc.stderr
        check("Cannot reach" not in said and "Traceback" not in said,
              f"the package could not use the PostgreSQL server of ECMS_TEST_DATABASE_URL:\n{said[-2000:]}")
        print("ok   PostgreSQL: the package connected to the server of ECMS_TEST_DATABASE_URL and read it")
    else:
        print("skip PostgreSQL server: ECMS_TEST_DATABASE_URL names none (CI sets it)")

    glibc, where = newest_glibc(app)
    print(f"ok   oldest glibc it runs on: {glibc[6:]} (the newest version any file needs: "
          f"{where.relative_to(app) if where else '-'})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
