"""dev.py: a Linux without the X11 libraries Qt's xcb plugin needs is told the exact apt command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("painterly_dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = _dev()
ALL = {f"lib{library}.so.0" for library, _ in dev.XCB_LIBRARIES} | {"libc.so.6"}


def test_a_fresh_debian_without_the_xcb_libraries_gets_the_apt_command() -> None:
    known = ALL - {"libxcb-cursor.so.0", "libxcb-icccm.so.0", "libxcb-keysyms.so.0"}
    problem = dev.xcb_problem({"DISPLAY": ":0"}, "linux", known)
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1\n" in problem
    assert "Could not load the Qt platform plugin xcb" in problem


def test_nothing_is_said_when_the_libraries_are_there_or_xcb_is_not_used() -> None:
    assert dev.xcb_problem({"DISPLAY": ":0"}, "linux", ALL) == ""
    assert dev.xcb_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", set()) == ""
    assert dev.xcb_problem({}, "darwin", set()) == ""
    assert dev.xcb_problem({}, "win32", set()) == ""
    wayland = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}
    assert dev.xcb_problem(wayland, "linux", set()) == ""
    # Asked for by name, xcb is checked even in a Wayland session.
    assert "libxcb-cursor0" in dev.xcb_problem({**wayland, "QT_QPA_PLATFORM": "xcb"}, "linux", set())


def test_the_loader_cache_is_read_from_ldconfig() -> None:
    known = dev.installed_libraries()
    if known is None:
        pytest.skip("no ldconfig here")
    assert any(name.startswith("libc.so") for name in known)
    # Whatever this machine has, the answer agrees with the loader's list.
    for package in dev.missing_xcb_packages(known):
        library = next(lib for lib, pkg in dev.XCB_LIBRARIES if pkg == package)
        assert not any(name.startswith(f"lib{library}.so") for name in known)


def test_find_library_is_the_fallback_without_ldconfig() -> None:
    found = {"xcb-cursor"}
    missing = dev.missing_xcb_packages(None, find=lambda name: "lib" + name if name in found else None)
    assert "libxcb-cursor0" not in missing and "libxcb-icccm4" in missing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is for Linux")
def test_dev_run_stops_before_qt_with_the_command(tmp_path: Path) -> None:
    # Run the check as `dev.py run` does, in a subprocess with xcb asked for; on a machine that has
    # every library it says nothing, on one that lacks some it prints the apt line.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(ROOT / 'dev.py')!r})\n"
        "d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)\n"
        "print(d.xcb_problem({'QT_QPA_PLATFORM': 'xcb'}, 'linux'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    known = dev.installed_libraries()
    missing = dev.missing_xcb_packages(known)
    if missing:
        assert f"sudo apt install {' '.join(missing)}" in out
    else:
        assert out.strip() == ""
