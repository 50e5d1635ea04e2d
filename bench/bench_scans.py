"""Reading the generated set of scans (tests/helpers/scan_set.py: the real forms filled and scanned, plus
letters and entities' own certificates) through the same path as ``ecms intake`` (``read_document`` in
the document sandbox, warm worker), against what each should read as, and against the bare
``tesseract IMG -`` on the same page images in the same run.

Printed: forms identified right (a known form's code, or "not a known form" for the others), state right,
per field right / wrong / missing (and, on known forms, values read for a field the document does not
carry: "spurious"), overall field accuracy, confidence calibration (of the values reported at >= 0.9,
0.6-0.9 and < 0.6 confidence, the share that is right; form, state and fields), every wrong value
reported at >= 0.9, and seconds per page: ours against the bare command on the page images (the scan
file itself; a PDF's embedded page images), each item read both ways one after the other so both see
the same load. The bare command runs with ``OMP_THREAD_LIMIT=1``, as the sandbox runs Tesseract. Also
printed: how often the bare command's text holds the purchaser's name at all.

    .venv/bin/python bench/bench_scans.py [--limit N] [--seed 13] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymupdf

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.intake.reading import DocumentReading, read_document
from tests.helpers.real_forms import REAL_FORMS
from tests.helpers.scan_set import FIELDS, SEED, SIZE, ScanItem, same_value, scan_set

BUCKETS = ((0.9, 1.01, ">= 0.9"), (0.6, 0.9, "0.6-0.9"), (0.0, 0.6, "< 0.6"))


def page_images(item: ScanItem, data: bytes, folder: Path) -> list[Path]:
    """The files the bare command reads: the scan itself, or a PDF's embedded page images."""
    if not item.name.endswith(".pdf"):
        path = folder / item.name
        path.write_bytes(data)
        return [path]
    doc = pymupdf.open(stream=data, filetype="pdf")
    paths = []
    for number, page in enumerate(doc):
        xref = page.get_images()[0][0]
        image = doc.extract_image(xref)
        path = folder / f"{item.name}-{number + 1}.{image['ext']}"
        path.write_bytes(image["image"])
        paths.append(path)
    return paths


def bare(program: str, paths: list[Path]) -> tuple[float, str]:
    """Seconds the bare ``tesseract IMG -`` takes on ``paths`` (one thread), and the text it gives."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    started = time.perf_counter()
    texts = [subprocess.run([program, str(p), "-"], capture_output=True, check=True, env=env, text=True).stdout
             for p in paths]
    return time.perf_counter() - started, "\n".join(texts)


def score(item: ScanItem, reading: DocumentReading) -> dict[str, Any]:
    """Each value read, with its confidence and verdict (right / wrong / missing / spurious)."""
    values: list[dict[str, Any]] = []
    want_form = item.form_code or ""
    values.append({"field": "form_code", "expected": want_form, "read": reading.form_code.value,
                   "confidence": reading.form_code.confidence,
                   "verdict": "right" if reading.form_code.value == want_form else "wrong"})
    if item.form_code is not None and item.state is not None:
        got = reading.state.value
        values.append({"field": "state", "expected": item.state, "read": got, "confidence": reading.state.confidence,
                       "verdict": "missing" if not got else "right" if got == item.state else "wrong"})
    expected = item.expected
    for name in sorted((set(expected) | set(reading.fields)) & set(FIELDS)):
        read = reading.fields.get(name)
        got = read.value.strip() if read is not None else ""
        conf = read.confidence if read is not None else 0.0
        if name in expected:
            verdict = "missing" if not got else "right" if same_value(name, expected[name], got) else "wrong"
        elif item.kind == "form" and got:
            verdict = "spurious"
        else:
            continue
        values.append({"field": name, "expected": expected.get(name, ""), "read": got, "confidence": conf,
                       "verdict": verdict})
    return {"name": item.name, "kind": item.kind, "form": item.form_code, "transform": item.transform,
            "pages": len(item.pages), "method": reading.method, "notes": list(reading.notes), "values": values}


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f} %)" if whole else "0/0"


def report(results: list[dict[str, Any]], load: tuple[float, float]) -> dict[str, Any]:
    form_right = sum(v["verdict"] == "right" for r in results for v in r["values"] if v["field"] == "form_code")
    known = [r for r in results if r["form"]]
    unknown = [r for r in results if not r["form"]]
    known_right = sum(v["verdict"] == "right" for r in known for v in r["values"] if v["field"] == "form_code")
    unknown_right = sum(v["verdict"] == "right" for r in unknown for v in r["values"] if v["field"] == "form_code")
    state_values = [v for r in results for v in r["values"] if v["field"] == "state"]
    per_field: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        for v in r["values"]:
            if v["field"] not in ("form_code", "state"):
                per_field[v["field"]][v["verdict"]] += 1
    purchaser = [v for r in results for v in r["values"] if v["field"] == "purchaser_name"]
    print(f"\nscans: {len(results)} ({len(known)} known forms, {len(unknown)} not a known form), "
          f"{sum(r['pages'] for r in results)} pages")
    print(f"form identified right: {percent(form_right, len(results))}; known forms {percent(known_right, len(known))}"
          f", 'not a known form' {percent(unknown_right, len(unknown))}")
    print(f"state right: {percent(sum(v['verdict'] == 'right' for v in state_values), len(state_values))}")
    print(f"purchaser name right: {percent(sum(v['verdict'] == 'right' for v in purchaser), len(purchaser))}")
    print(f"\n{'field':18s} {'right':>6s} {'wrong':>6s} {'missing':>8s} {'spurious':>9s}")
    totals: Counter[str] = Counter()
    for name in sorted(per_field):
        c = per_field[name]
        totals.update(c)
        print(f"{name:18s} {c['right']:6d} {c['wrong']:6d} {c['missing']:8d} {c['spurious']:9d}")
    expected_total = totals["right"] + totals["wrong"] + totals["missing"]
    print(f"{'all fields':18s} {totals['right']:6d} {totals['wrong']:6d} {totals['missing']:8d} "
          f"{totals['spurious']:9d}")
    print(f"field accuracy (right / expected values): {percent(totals['right'], expected_total)}")
    reported = [v for r in results for v in r["values"] if v["verdict"] != "missing" and (v["read"] or
                                                                                          v["field"] == "form_code")]
    print("\nconfidence calibration (values reported: form, state and fields; spurious values count as wrong)")
    calibration = {}
    for low, high, label in BUCKETS:
        bucket = [v for v in reported if low <= v["confidence"] < high]
        right = sum(v["verdict"] == "right" for v in bucket)
        calibration[label] = {"reported": len(bucket), "right": right}
        print(f"  {label:8s} {percent(right, len(bucket))} right")
    sure_wrong = [(r["name"], v) for r in results for v in r["values"]
                  if v["confidence"] >= 0.9 and v["verdict"] in ("wrong", "spurious")]
    print(f"\nwrong values reported at >= 0.9: {len(sure_wrong)}")
    for name, v in sure_wrong:
        print(f"  {name:24s} {v['field']:18s} read {v['read']!r} ({v['confidence']:.2f}), expected {v['expected']!r}")
    ours = [r["ours"] for r in results]
    bare_ = [r["bare"] for r in results]
    pages = sum(r["pages"] for r in results)
    ratios = [r["ours"] / r["bare"] for r in results if r["bare"]]
    print(f"\nseconds per page: ours {sum(ours) / pages:.2f} s, bare tesseract {sum(bare_) / pages:.2f} s, "
          f"ratio {sum(ours) / sum(bare_):.2f}x (median per scan {statistics.median(ratios):.2f}x, "
          f"max {max(ratios):.2f}x); goal <= 1.5x")
    by_turn: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_turn["upright" if "turned" not in r["transform"] else r["transform"].split("turned ")[1].split(",")[0]
                ].append(r["ours"] / r["bare"])
    print("  median ratio by turn: " + ", ".join(f"{k} {statistics.median(v):.2f}x ({len(v)} scans)"
                                                 for k, v in sorted(by_turn.items())))
    in_bare = sum(r["bare_has_purchaser"] for r in results)
    print(f"bare tesseract's text holds the purchaser's name: {percent(in_bare, len(results))}")
    print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    return {"scans": len(results), "pages": pages, "form_right": form_right, "known_right": known_right,
            "known": len(known), "unknown_right": unknown_right, "unknown": len(unknown),
            "per_field": {k: dict(v) for k, v in per_field.items()}, "calibration": calibration,
            "wrong_at_0_9": [{"scan": n, **v} for n, v in sure_wrong], "seconds_ours": sum(ours),
            "seconds_bare": sum(bare_), "ratio": sum(ours) / sum(bare_),
            "load_start": load[0], "load_end": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="read only the first N scans of the set")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, default=None, help="write the per-scan results and figures here")
    args = parser.parse_args()
    program = shutil.which("tesseract")
    if program is None:
        sys.exit("Tesseract is not installed (apt-get install tesseract-ocr).")
    if not REAL_FORMS.is_dir():
        sys.exit(f"The real blank forms are not at {REAL_FORMS} (../shared beside the repository).")
    load = os.getloadavg()
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"{os.cpu_count()} CPUs")
    items = scan_set(args.seed, SIZE)[: args.limit]
    rules = load_rules_pack()
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp, DocumentSandbox() as sandbox:
        sandbox.start()
        for item in items:
            data = item.scan()
            t0 = time.perf_counter()
            reading = read_document(data, item.name, rules, sandbox=sandbox)
            ours = time.perf_counter() - t0
            bare_seconds, bare_text = bare(program, page_images(item, data, Path(tmp)))
            result = score(item, reading)
            name = item.expected["purchaser_name"]
            result.update(ours=ours, bare=bare_seconds,
                          bare_has_purchaser=" ".join(name.lower().split()) in " ".join(bare_text.lower().split()))
            results.append(result)
            counts = Counter(v["verdict"] for v in result["values"] if v["field"] not in ("form_code", "state"))
            form = reading.form_code
            print(f"{item.name:24s} {form.value or '(none)':12s} {form.confidence:4.2f} "
                  f"{'ok ' if result['values'][0]['verdict'] == 'right' else 'BAD'} "
                  f"right {counts['right']:2d} wrong {counts['wrong']:2d} missing {counts['missing']:2d} "
                  f"spurious {counts['spurious']:2d}  ours {ours:5.2f}s bare {bare_seconds:5.2f}s "
                  f"({ours / bare_seconds:4.2f}x)  {item.transform}", flush=True)
    summary = report(results, load)
    print(f"whole run {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": summary, "scans": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
