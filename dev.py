#!/usr/bin/env python3
"""Set up .venv/ (once, and again when pyproject.toml changes) and run the app or the tests.

    python3 dev.py run [app arguments]     # set up and open Painterly
    python3 dev.py test [pytest arguments] # set up, lint and run the tests

Standard library only: it runs before any dependency is installed.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
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


# The X11 libraries Qt's xcb platform plugin needs that a fresh Debian or Ubuntu may lack (Qt 6.5+
# links libxcb-cursor; a minimal install or a container also misses icccm and keysyms), with the
# Debian/Ubuntu package of each. Without them Qt only says "Could not load the Qt platform plugin
# xcb" and aborts. Checked on this project's Debian 12 container, which lacked the last two.
XCB_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("xcb-cursor", "libxcb-cursor0"),
    ("xcb-icccm", "libxcb-icccm4"),
    ("xcb-keysyms", "libxcb-keysyms1"),
    ("xcb-image", "libxcb-image0"),
    ("xcb-render-util", "libxcb-render-util0"),
    ("xcb-shape", "libxcb-shape0"),
    ("xcb-xkb", "libxcb-xkb1"),
    ("xkbcommon-x11", "libxkbcommon-x11-0"),
)


def uses_xcb(environ: dict[str, str] | os._Environ[str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will load its xcb plugin: on Linux, with QT_QPA_PLATFORM naming xcb, or unset
    outside a Wayland session (in one, Qt 6 tries its wayland plugin first)."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if not chosen:
        wayland = environ.get("XDG_SESSION_TYPE") == "wayland" and bool(environ.get("WAYLAND_DISPLAY"))
        return not wayland
    return chosen.split(":")[0].split(";")[0] == "xcb"


def installed_libraries() -> set[str] | None:
    """The shared libraries the dynamic loader knows (``ldconfig -p``), or None when it cannot say."""
    for ldconfig in (shutil.which("ldconfig"), "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if not ldconfig or not Path(ldconfig).is_file():
            continue
        try:
            listing = subprocess.run(
                [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        names = {line.split()[0] for line in listing.splitlines()[1:] if line.strip()}
        if names:
            return names
    return None


def missing_xcb_packages(
    known: set[str] | None = None, find: Callable[[str], str | None] = ctypes.util.find_library
) -> list[str]:
    """The Debian/Ubuntu packages of the xcb libraries that cannot be found (empty when all are there)."""
    missing = []
    for library, package in XCB_LIBRARIES:
        if known is not None:
            present = any(name.startswith(f"lib{library}.so") for name in known)
        else:
            present = find(library) is not None
        if not present:
            missing.append(package)
    return missing


def xcb_problem(
    environ: dict[str, str] | os._Environ[str] = os.environ,
    platform: str = sys.platform,
    known: set[str] | None = None,
) -> str:
    """What to tell someone whose window would fail to open for want of X11 libraries, or ''."""
    if not uses_xcb(environ, platform):
        return ""
    missing = missing_xcb_packages(installed_libraries() if known is None else known)
    if not missing:
        return ""
    return (
        "Painterly's window needs X11 libraries that are not installed; without them Qt stops with "
        '"Could not load the Qt platform plugin xcb". Install them with:\n\n'
        f"    sudo apt install {' '.join(missing)}\n\n"
        "(Other distributions: install the packages that provide "
        + ", ".join(f"lib{library}" for library, package in XCB_LIBRARIES if package in missing)
        + ". Or run under another Qt platform, e.g. QT_QPA_PLATFORM=wayland.)"
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    python = str(ensure_venv())
    command, rest = argv[0], argv[1:]
    if command == "run":
        problem = xcb_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return subprocess.call([python, str(ROOT / "main.py"), *rest], cwd=ROOT)
    lint = subprocess.call([python, "-m", "ruff", "check", str(ROOT)], cwd=ROOT)
    tests = subprocess.call([python, "-m", "pytest", *(rest or ["-q"])], cwd=ROOT)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
