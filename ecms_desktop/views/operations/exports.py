"""Writing lists the user keeps: the problems found in an input file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ecms_desktop.services.core.errors import Problem
from ecms_desktop.services.exports.problem_list import write_problems_csv
from ecms_desktop.views.operations import Operation


def save_problems(problems: Sequence[Problem], path: Path) -> Operation[Path]:
    """The problems as a CSV file at ``path`` (file, row, column, what is wrong)."""
    items = tuple(problems)
    return Operation(lambda _p, _c: write_problems_csv(items, path), title=f"Writing {path.name}")
