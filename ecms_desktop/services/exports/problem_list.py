"""The problems found in an input file (each row error: file, row, column, what is wrong) as a CSV file
the user keeps or sends to whoever prepares the file (:func:`write_problems_csv`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ecms_desktop.services.core.errors import Problem
from ecms_desktop.services.exports.safe_export import CsvWriter

PROBLEM_HEADINGS = ("File", "Row", "Column", "What is wrong")


def problem_cells(problem: Problem) -> tuple[str, int | None, str, str]:
    """A problem as the four cells the desk and the file show: file, row, column, what is wrong."""
    return problem.file or "", problem.row, problem.column or "", problem.message


def write_problems_csv(problems: Sequence[Problem], path: Path) -> Path:
    """Every problem as a row of a CSV file (headings first; text a spreadsheet would run as a formula
    is escaped). Written to a temporary file and moved into place: a failed write leaves no half file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = CsvWriter(fh)
            writer.writerow(PROBLEM_HEADINGS)
            writer.writerows(problem_cells(p) for p in problems)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
