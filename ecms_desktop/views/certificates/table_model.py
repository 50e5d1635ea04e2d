"""The certificate grid's item model: ids from the query service, rows loaded in primary-key batches.

``set_query`` asks :class:`~ecms_desktop.services.certificates.query.CertificateQueryService` for the
matching ids off the GUI thread (one statement, the only one that may scan many rows); the view then
pulls rows through ``canFetchMore``/``fetchMore``, each batch being the service's ``load_rows`` over at
most ``batch_size`` primary keys (two statements per batch). Loading 200 rows takes ~9 ms on 100,000
certificates (bench/README.md "Review desk"), over a 5 ms GUI-thread budget, so the next batch is
prefetched on the task runner after each fetchMore and fetchMore usually only inserts cached rows; if
the view asks before the prefetch arrived, fetchMore loads the batch itself. Rows are cached by id.
Sorting builds a new query sorted in SQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from ecms_desktop.services.certificates.query import CertificateQuery, CertificateQueryService, CertificateRow
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.views.certificates.status_badge_delegate import STATUS_ROLE
from ecms_desktop.views.operations.task_runner import TaskRunner

#: Item data role holding the certificate id of a row.
CERT_ID_ROLE = Qt.ItemDataRole.UserRole + 1
#: Item data role holding the whole :class:`CertificateRow`.
ROW_ROLE = Qt.ItemDataRole.UserRole + 3

_Index = QModelIndex | QPersistentModelIndex


def _reason_label(code: str) -> str:
    return code.replace("_", " ").capitalize()


def _count(n: int | None) -> str:
    """A count of findings of the latest validation: empty when the certificate was never validated."""
    return "" if n is None else str(n)


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    sort_key: str
    value: Callable[[CertificateRow], Any]
    align_right: bool = False
    tooltip: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("customer", "Customer", "customer", lambda r: r.customer_name),
    Column("customer_number", "Customer no.", "customer_number", lambda r: r.customer_number),
    Column("states", "States", "states", lambda r: r.states),
    Column("form", "Form", "form", lambda r: r.form_code),
    Column("certificate_number", "Certificate no.", "certificate_number", lambda r: r.certificate_number),
    Column("exempt_reason", "Exempt reason", "exempt_reason", lambda r: _reason_label(r.exempt_reason)),
    Column("expiry", "Expiry", "expiry",
           lambda r: r.expiry_date.isoformat() if r.expiry_date else "No expiry",
           tooltip="Earliest expiry of the certificate's states"),
    Column("days_left", "Days left", "days_left", lambda r: "" if r.days_left is None else r.days_left,
           align_right=True, tooltip="Days until the earliest expiry (negative: expired)"),
    Column("status", "Status", "status", lambda r: r.status.label),
    Column("review_state", "Review", "review_state", lambda r: r.review_state.capitalize()),
    Column("errors", "Errors", "errors", lambda r: _count(r.errors), align_right=True,
           tooltip="Errors found by the certificate's latest validation (they block approval; empty: never "
                   "validated)"),
    Column("warnings", "Warnings", "warnings", lambda r: _count(r.warnings), align_right=True,
           tooltip="Warnings found by the certificate's latest validation (acknowledged when approving)"),
    Column("claimed_by", "Claimed by", "claimed_by", lambda r: r.claimed_by or "",
           tooltip="The reviewer working on the pending certificate (empty: nobody claimed it)"),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
STATUS_COLUMN = COLUMN_KEYS.index("status")


class CertificateTableModel(QAbstractTableModel):
    """Certificates matching a :class:`CertificateQuery`, loaded lazily in batches."""

    #: The ids of a new query arrived (total number of matching certificates).
    query_finished = Signal(int)
    #: Running the query failed (the error).
    query_failed = Signal(object)
    #: A batch of rows was loaded (total rows now loaded).
    rows_loaded = Signal(int)

    def __init__(self, db: Database | None, runner: TaskRunner | None = None, parent: QObject | None = None,
                 *, batch_size: int = 200) -> None:
        super().__init__(parent)
        self.db = db
        self.runner = runner
        self.batch_size = batch_size
        self.query = CertificateQuery()
        self._ids: list[int] = []
        self._loaded = 0
        self._cache: dict[int, CertificateRow] = {}
        self._generation = 0
        self._prefetching = False
        self.busy = False

    # -- the query

    def set_database(self, db: Database | None) -> None:
        self.db = db
        self.beginResetModel()
        self._ids, self._loaded, self._cache = [], 0, {}
        self.endResetModel()

    def set_query(self, query: CertificateQuery) -> None:
        """Show the certificates matching ``query``. The current rows stay until the new ids arrive."""
        self.query = query
        self._generation += 1
        generation = self._generation
        db = self.db
        if db is None:
            self._apply_ids(generation, [])
            return
        self.busy = True

        def work(_progress: Progress, _cancel: CancelCheck) -> list[int]:
            return CertificateQueryService(db).matching_ids(query)

        self._start(work, lambda ids: self._apply_ids(generation, ids), generation)

    def _start(self, work: Callable[[Progress, CancelCheck], Any], done: Callable[[Any], None],
               generation: int) -> None:
        if self.runner is None:
            try:
                result = work(lambda *_: None, lambda: False)
            except Exception as exc:
                self._on_failed(generation, exc)
                return
            done(result)
            return
        self.runner.run(work, on_done=done, on_error=lambda exc: self._on_failed(generation, exc))

    def refresh(self, *, in_place: bool = False) -> None:
        """Run the current query again (after a change elsewhere). ``in_place``: the rows loaded are read
        again with the ids (off the GUI thread); when the same certificates match in the same order they
        are repainted where they are (the selection and the scroll position stay), else the rows are
        replaced as for a new query (``query_finished`` follows either way)."""
        if not in_place or self.db is None:
            self._cache.clear()
            self.set_query(self.query)
            return
        self._generation += 1
        generation, db, query, loaded = self._generation, self.db, self.query, self._loaded
        self.busy = True

        def work(_progress: Progress, _cancel: CancelCheck) -> tuple[list[int], list[CertificateRow]]:
            service = CertificateQueryService(db)
            ids = service.matching_ids(query)
            return ids, service.load_rows(ids[:loaded], query.as_of, query.window_days) if loaded else []

        self._start(work, lambda result: self._apply_refreshed(generation, *result), generation)

    def _apply_refreshed(self, generation: int, ids: list[int], rows: list[CertificateRow]) -> None:
        if generation != self._generation:
            return
        self._cache = {row.id: row for row in rows}
        if ids != self._ids:
            self._apply_ids(generation, ids)
            return
        self.busy = False
        if self._loaded:
            self.dataChanged.emit(self.index(0, 0), self.index(self._loaded - 1, len(COLUMNS) - 1))
        self.query_finished.emit(len(ids))

    def _apply_ids(self, generation: int, ids: list[int]) -> None:
        if generation != self._generation:
            return  # an older query finished after a newer one started
        self.busy = False
        self.beginResetModel()
        self._ids = ids
        self._loaded = 0
        if len(self._cache) > 20 * self.batch_size:
            self._cache.clear()
        self.endResetModel()
        self.query_finished.emit(len(ids))
        self._prefetch()

    def _on_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.busy = False
        self.query_failed.emit(exc)

    # -- lazy loading

    @property
    def ids(self) -> list[int]:
        """The ids of every matching certificate, in display order (loaded or not)."""
        return list(self._ids)

    @property
    def total(self) -> int:
        """How many certificates match the query (loaded or not)."""
        return len(self._ids)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._loaded < len(self._ids)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or self._loaded >= len(self._ids):
            return
        start = self._loaded
        batch = self._ids[start:start + self.batch_size]
        self._load(batch)
        self.beginInsertRows(QModelIndex(), start, start + len(batch) - 1)
        self._loaded = start + len(batch)
        self.endInsertRows()
        self.rows_loaded.emit(self._loaded)
        self._prefetch()

    def _prefetch(self) -> None:
        """Load the next batch off the GUI thread so that the next fetchMore finds it in the cache."""
        if self.runner is None or self.db is None or self._prefetching:
            return
        wanted = [i for i in self._ids[self._loaded:self._loaded + self.batch_size] if i not in self._cache]
        if not wanted:
            return
        db, query, generation = self.db, self.query, self._generation
        self._prefetching = True

        def work(_p: Progress, _c: CancelCheck) -> list[CertificateRow]:
            return CertificateQueryService(db).load_rows(wanted, query.as_of, query.window_days)

        def done(rows: list[CertificateRow]) -> None:
            self._prefetching = False
            if generation == self._generation:
                for row in rows:
                    self._cache.setdefault(row.id, row)

        def failed(_exc: BaseException) -> None:
            self._prefetching = False  # the next fetchMore loads the batch itself and reports any error

        self.runner.run(work, on_done=done, on_error=failed)

    def fetch_until(self, row: int) -> None:
        """Load rows until ``row`` is available (e.g. to select a certificate far down)."""
        while self._loaded <= row and self.canFetchMore():
            self.fetchMore()

    def _load(self, ids: Sequence[int]) -> None:
        missing = [i for i in ids if i not in self._cache]
        if not missing or self.db is None:
            return
        for row in CertificateQueryService(self.db).load_rows(missing, self.query.as_of, self.query.window_days):
            self._cache[row.id] = row

    def reload_rows(self, cert_ids: Sequence[int]) -> None:
        """Read these certificates again (after a save) and repaint their rows."""
        wanted = [i for i in cert_ids if i in self._cache]
        for i in wanted:
            del self._cache[i]
        self._load(wanted)
        for i in wanted:
            row = self.row_of(i)
            if row is not None:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    # -- lookups

    def certificate_id(self, row: int) -> int | None:
        return self._ids[row] if 0 <= row < self._loaded else None

    def row_data(self, row: int) -> CertificateRow | None:
        cert_id = self.certificate_id(row)
        return None if cert_id is None else self._cache.get(cert_id)

    def row_of(self, cert_id: int) -> int | None:
        """The row showing ``cert_id`` among the loaded rows, or None."""
        try:
            row = self._ids.index(cert_id)
        except ValueError:
            return None
        return row if row < self._loaded else None

    def position_of(self, cert_id: int) -> int | None:
        """The position of ``cert_id`` in the whole result (loaded or not), or None."""
        try:
            return self._ids.index(cert_id)
        except ValueError:
            return None

    # -- Qt model interface

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._loaded

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= self._loaded or index.column() >= len(COLUMNS):
            return None
        cert_id = self._ids[index.row()]
        if role == CERT_ID_ROLE:
            return cert_id
        row = self._cache.get(cert_id)
        if row is None:
            return None
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            value = column.value(row)
            return value if isinstance(value, str) else str(value)
        if role == STATUS_ROLE:
            return row.status.value
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column.align_right:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column.key in ("states", "expiry", "status"):
                return "\n".join(f"{line.state}: {line.expiry_date or 'no expiry'} ({line.status.label})"
                                 for line in row.lines) or None
            return None
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{column.title}: {column.value(row)}"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section].tooltip or None
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort in SQL: a new query with the column's sort key."""
        if not 0 <= column < len(COLUMNS):
            return
        descending = order == Qt.SortOrder.DescendingOrder
        key = COLUMNS[column].sort_key
        if key == self.query.sort and descending == self.query.descending and self._ids:
            return
        self.set_query(dataclasses.replace(self.query, sort=key, descending=descending))
