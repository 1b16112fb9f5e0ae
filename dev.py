#!/usr/bin/env python3
"""Set up .venv/ (once, and again when pyproject.toml changes) and run the app or the tests.

    python3 dev.py run [app arguments]     # set up and open Painterly
    python3 dev.py test [pytest arguments] # set up, lint and run the tests

Standard library only: it runs before any dependency is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".painterly-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> Path:
    if sys.version_info < (3, 11):
        sys.exit(f"Painterly needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    if not python.exists():
        print("Creating .venv/ ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing Painterly and its dependencies into .venv/ (first time: a few minutes) ...", flush=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    python = str(ensure_venv())
    command, rest = argv[0], argv[1:]
    if command == "run":
        return subprocess.call([python, str(ROOT / "main.py"), *rest], cwd=ROOT)
    lint = subprocess.call([python, "-m", "ruff", "check", str(ROOT)], cwd=ROOT)
    tests = subprocess.call([python, "-m", "pytest", *(rest or ["-q"])], cwd=ROOT)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
