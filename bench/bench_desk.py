"""Review desk benchmark: the main window on a database of 100,000 certificates.

Measures, each against a plain SQL query of the same rows run in the same process (ratio):

- start: from creating the window to the first rows painted (companies, settings, matching ids,
  the first batch, the paint) vs plain SQL selecting the first batch of rows in the same order;
- filter: from a filter change (text, debounce excluded) to the new rows painted vs plain SQL with
  the same condition and a LIMIT of one batch;
- scroll to the last row: every fetchMore batch, letting the next batch's prefetch land in between as
  it does while a user scrolls (GUI-thread time per batch: median, p95, max) vs a plain SQL fetch of
  all the rows;
- memory: RSS growth while the grid holds every row vs the plain fetch of all rows.

    .venv/bin/python bench/bench_desk.py [--db URL] [--certificates 100000]

Without --db a demo database is built once with `ecms demo --certificates N` in /tmp.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ensure_demo(path: Path, n: int) -> str:
    url = f"sqlite:///{path}"
    if not path.exists():
        print(f"building {path} with {n:,} certificates (ecms demo)…", flush=True)
        cli = [sys.executable, "-m", "ecms_desktop.cli", "--db", url]
        subprocess.run([*cli, "init"], check=True, cwd=REPO)
        subprocess.run([*cli, "demo", "--certificates", str(n)], check=True, cwd=REPO)
    return url


def wait(app, predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    end = time.perf_counter() + timeout
    while not predicate():
        app.processEvents()
        if time.perf_counter() > end:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(0.0005)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="database URL (default: a demo database in /tmp)")
    ap.add_argument("--certificates", type=int, default=100_000)
    ap.add_argument("--filter-text", default="grain")
    args = ap.parse_args()
    url = args.db or ensure_demo(Path(f"/tmp/ecms-bench-desk-{args.certificates}.sqlite"), args.certificates)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from sqlalchemy import func, select

    from ecms_desktop.models import Certificate, Customer
    from ecms_desktop.services.certificates.query import _conditions, _order, load_rows
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.views.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(f"/tmp/ecms-bench-desk-ui-{os.getpid()}.ini", QSettings.Format.IniFormat)
    db = Database(url)
    db.ensure_ready()
    with db.reader() as s:
        total_all = s.execute(select(func.count()).select_from(Certificate)).scalar_one()
    print(f"database: {db.display_url}  certificates: {total_all:,}")
    rss0 = rss_mb()

    # -- start to first painted rows
    t0 = time.perf_counter()
    window = MainWindow(None, settings=settings)
    window.resize(1600, 900)
    window.show()
    ready: list[float] = []
    window.grid_ready.connect(lambda: ready.append(time.perf_counter()))
    window.set_database(db)
    wait(app, lambda: ready)
    window.table.viewport().repaint()
    t_start = time.perf_counter() - t0
    batch = window.model.batch_size
    query = window.model.query
    total = window.model.total

    def plain(q, limit: int | None):  # type: ignore[no-untyped-def]
        stmt = (select(Certificate.id, Certificate.version, Certificate.form_code, Certificate.certificate_number,
                       Certificate.exempt_reason, Certificate.review_state, Certificate.expiry_date, Customer.number,
                       Customer.legal_name)
                .join(Customer, Customer.id == Certificate.customer_id).where(*_conditions(q)).order_by(*_order(q)))
        if limit:
            stmt = stmt.limit(limit)
        t = time.perf_counter()
        with db.reader() as s:
            rows = s.execute(stmt).all()
        return time.perf_counter() - t, rows

    base_start, _ = plain(query, batch)

    # -- filter
    fin: list[float] = []
    window.model.query_finished.connect(lambda _n: fin.append(time.perf_counter()))
    window.filter_bar.text_edit.blockSignals(True)
    window.filter_bar.text_edit.setText(args.filter_text)
    window.filter_bar.text_edit.blockSignals(False)
    t0 = time.perf_counter()
    window.filter_bar._emit_now()  # the 250 ms typing debounce is left out on purpose
    wait(app, lambda: fin and window.model.rowCount() > 0)
    window.table.viewport().repaint()
    t_filter = time.perf_counter() - t0
    filtered = window.model.total
    base_filter, _ = plain(window.model.query, batch)

    # -- clear the filter again, then scroll to the last row
    fin.clear()
    window.filter_bar.clear()
    wait(app, lambda: fin and window.model.rowCount() > 0)
    per_batch: list[float] = []
    t0 = time.perf_counter()
    m = window.model
    while m.canFetchMore():
        wait(app, lambda: not m._prefetching)  # as when a user scrolls: the event loop runs between batches
        tb = time.perf_counter()
        m.fetchMore()
        per_batch.append(time.perf_counter() - tb)
    window.table.scrollToBottom()
    window.table.viewport().repaint()
    t_scroll = time.perf_counter() - t0
    rss_grid = rss_mb()
    base_all, rows = plain(window.model.query, None)
    rss_plain = rss_mb()
    # same rows, plain load_rows in one go (what the cache holds), for reference
    t = time.perf_counter()
    with db.reader() as s:
        ids = [r.id for r in rows]
        for i in range(0, len(ids), 1000):
            load_rows(s, ids[i:i + 1000], query.as_of, query.window_days)
    base_load_rows = time.perf_counter() - t

    per_batch_ms = sorted(x * 1000 for x in per_batch)
    p95 = per_batch_ms[int(len(per_batch_ms) * 0.95) - 1] if per_batch_ms else 0.0
    print(f"company shown: {window.company_id}  rows in the grid: {total:,}  filter {args.filter_text!r}: "
          f"{filtered:,} rows")
    print(f"| start → first rows painted | {t_start * 1000:.0f} ms | plain SQL first {batch} rows "
          f"{base_start * 1000:.1f} ms | ×{t_start / base_start:.0f} |")
    print(f"| filter → rows painted | {t_filter * 1000:.0f} ms | plain SQL same filter, {batch} rows "
          f"{base_filter * 1000:.1f} ms | ×{t_filter / base_filter:.1f} |")
    print(f"| scroll to last row ({len(per_batch)} fetchMore batches) | {t_scroll * 1000:.0f} ms | plain SQL all "
          f"{len(rows):,} rows {base_all * 1000:.0f} ms | ×{t_scroll / base_all:.1f} |")
    print(f"| one fetchMore batch of {batch} (GUI thread) | median {statistics.median(per_batch_ms):.2f} ms, "
          f"p95 {p95:.2f} ms, max {per_batch_ms[-1]:.2f} ms | | |")
    print(f"| load_rows for all rows in batches of 1000 | {base_load_rows * 1000:.0f} ms | | |")
    print(f"| RSS growth with every row cached | {rss_grid - rss0:.0f} MB | plain fetch of all rows "
          f"+{rss_plain - rss_grid:.0f} MB | |")
    window.shutdown()
    window.deleteLater()
    app.processEvents()
    os.unlink(settings.fileName()) if os.path.exists(settings.fileName()) else None
    return 0


if __name__ == "__main__":
    sys.exit(main())
