"""A changed copy of the program's rules pack, for tests of what the strict loader refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

RULES_DIR = Path(__file__).resolve().parents[2] / "resources" / "rules"


def corrupt_copy(tmp_path: Path, state: str, mutate: Any) -> Path:
    """A copy of the rules pack under ``tmp_path`` whose ``states/<state>.json`` ``mutate`` changed (it
    gets the parsed file and changes it in place); the copy's root folder."""
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR, root)
    path = root / "states" / f"{state}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return root


def newer_copy(tmp_path: Path, version: str, *, stricter_texas: bool = False, name: str = "") -> Path:
    """A copy of the rules pack under ``tmp_path`` with ``version`` in its ``pack.json``; with
    ``stricter_texas`` the Texas resale certificate (TX-01-339) also requires the purchaser's EIN."""
    root = tmp_path / (name or f"rules-{version}")
    shutil.copytree(RULES_DIR, root)
    pack = root / "pack.json"
    pack.write_text(pack.read_text(encoding="utf-8").replace('"version": "2026.12.1"', f'"version": "{version}"', 1),
                    encoding="utf-8")
    if stricter_texas:
        path = root / "states" / "TX.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        form = next(f for f in data["forms"] if f["code"] == "TX-01-339")
        form["required_fields"].append("purchaser_ein")
        path.write_text(json.dumps(data), encoding="utf-8")
    return root
