"""Reading scans: ``DocumentSandbox.read_pages`` (warm worker: render, skew correction, Tesseract through
a pipe) against the bare ``tesseract`` command on the same image file, in the same run.

The pages are the tests' certificate page (tests/helpers/scans.py) scanned at 300 dpi as noisy JPEGs:
upright, skewed 3 degrees, sideways (-2 degrees) and upside down (+1.5 degrees). Each round runs every
page each way, interleaved, so both see the same load; the medians and their ratio are printed with
the load average. The bare command is timed with Tesseract's default threads and with
``OMP_THREAD_LIMIT=1``, which is what the sandbox runs it with.

    .venv/bin/python bench/bench_ocr.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecms_desktop.services.documents.sandbox import DocumentSandbox
from tests.helpers.scans import PERMIT, PURCHASER, certificate_page, scan

PAGES = {"upright": (0.0, 0), "skew 3": (3.0, 0), "sideways -2": (-2.0, 90), "upside down 1.5": (1.5, 180)}


def bare(program: str, path: Path, *, one_thread: bool) -> float:
    env = dict(os.environ)
    env.pop("OMP_THREAD_LIMIT", None)
    if one_thread:
        env["OMP_THREAD_LIMIT"] = "1"
    started = time.perf_counter()
    subprocess.run([program, str(path), "-", "tsv"], capture_output=True, check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    program = shutil.which("tesseract")
    if program is None:
        sys.exit("Tesseract is not installed (apt-get install tesseract-ocr).")
    pdf, _ = certificate_page()
    times: dict[str, dict[str, list[float]]] = {name: {"ours": [], "bare1": [], "bare": []} for name in PAGES}
    with tempfile.TemporaryDirectory() as tmp, DocumentSandbox() as sandbox:
        sandbox.start()
        files = {}
        for name, (skew, turn) in PAGES.items():
            made = scan(pdf, dpi=300, skew=skew, turn=turn)
            files[name] = (Path(tmp) / f"{name.replace(' ', '-')}.jpg", made.data)
            files[name][0].write_bytes(made.data)
            sandbox.read_pages(made.data)  # the worker holds the file, as after intake's probe
        for round_ in range(args.rounds):
            for name, (path, data) in files.items():
                started = time.perf_counter()
                result = sandbox.read_pages(data, filename=path.name)
                times[name]["ours"].append(time.perf_counter() - started)
                page = result.pages[0]
                assert PURCHASER in page.text and PERMIT in page.text, page.text
                times[name]["bare1"].append(bare(program, path, one_thread=True))
                if round_ == 0:
                    times[name]["bare"].append(bare(program, path, one_thread=False))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{'page':18s} {'read_pages':>10s} {'bare 1 thread':>14s} {'bare default':>13s} {'ratio':>6s}")
    for name, t in times.items():
        ours, bare1 = statistics.median(t["ours"]), statistics.median(t["bare1"])
        print(f"{name:18s} {ours:9.2f}s {bare1:13.2f}s {statistics.median(t['bare']):12.2f}s {ours / bare1:5.2f}x")


if __name__ == "__main__":
    main()
