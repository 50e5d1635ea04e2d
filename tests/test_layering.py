"""Layers point one way: models, services and rules never import Qt (checked on the source, so that
even an import inside a function is caught)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ecms_desktop"
QT_FREE = ["models", "services", "rules", "migrations"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", QT_FREE)
def test_layer_does_not_import_qt_or_views(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no Python files found in {layer}"
    offenders = {
        str(f.relative_to(PACKAGE)): sorted(m for m in _imports(f)
                                            if m.split(".")[0] in ("PySide6", "shiboken6")
                                            or m.startswith("ecms_desktop.views"))
        for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_cli_does_not_import_qt() -> None:
    """The headless twin runs where there is no display and no Qt."""
    offenders = [str(f) for f in (PACKAGE / "cli").rglob("*.py")
                 if any(m.split(".")[0] == "PySide6" or m.startswith("ecms_desktop.views") for m in _imports(f))]
    assert offenders == []


def test_cli_reaches_data_only_through_services() -> None:
    """The command line opens no session and no transaction of its own: the services own the unit of
    work (and write its audit event), as they do for the GUI."""
    offenders: dict[str, list[str]] = {}
    for f in sorted((PACKAGE / "cli").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        found = sorted({m for m in _imports(f) if m.split(".")[0] == "sqlalchemy"}
                       | {f"{node.attr}()" for node in ast.walk(tree)
                          if isinstance(node, ast.Attribute) and node.attr in ("reader", "transaction", "Session")}
                       | {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "Session"})
        if found:
            offenders[str(f.relative_to(PACKAGE))] = found
    assert offenders == {}
