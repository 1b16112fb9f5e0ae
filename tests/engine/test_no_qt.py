"""engine/ must never import Qt: the command line and tests run without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Importing every engine module with Qt made unimportable: any Qt import anywhere fails loudly.
SCRIPT = """
import importlib, pkgutil, sys

class BlockQt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6"):
            raise ImportError(f"engine imported Qt: {name}")
        return None

sys.meta_path.insert(0, BlockQt())
import engine
for module in pkgutil.iter_modules(engine.__path__):
    importlib.import_module(f"engine.{module.name}")
import cli
loaded = [m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6")]
assert not loaded, loaded
print("ok", len([m for m in sys.modules if m.startswith("engine.")]))
"""


def test_engine_and_cli_import_without_qt() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
    # Every module was imported, not just the package.
    assert int(result.stdout.split()[1]) >= 8


def test_no_qt_import_statements_in_engine() -> None:
    for path in (ROOT / "engine").rglob("*.py"):
        text = path.read_text()
        for banned in ("PySide6", "PyQt5", "PyQt6", "shiboken6"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, path
