"""Painterly's desktop studio (PySide6).

Nothing in ``engine/`` imports Qt; everything Qt lives here.  ``ui.app.run_app``
is the entry point ``main.py`` calls.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# Far more references than a session can drop: 2**40 decrements at a million a second is 12 days.
_SPARE_REFERENCES = 1 << 40


def _pyside_drops_references() -> list[object]:
    """Which of None and True this PySide6 build releases without having taken a reference.

    PySide6 6.12.0's wheels return None from void methods and True from
    ``Signal.emit`` without a new reference.  On CPython 3.12+ both are
    immortal and nothing happens; on 3.11 every call lowers their reference
    count until the interpreter aborts with "deallocating None" (about 60,000
    calls: a minute of using the window) or "deallocating True or False"
    (a few hundred signals).  Measured, not assumed from the version, so a
    fixed build is left alone.
    """
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return []
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    calls = 32
    dropped: list[object] = []
    before = sys.getrefcount(None)
    for _ in range(calls):
        probe.setObjectName("probe")  # a void method
    if sys.getrefcount(None) <= before - calls // 2:
        dropped.append(None)
    before = sys.getrefcount(True)
    for _ in range(calls):
        probe.ping.emit()
    if sys.getrefcount(True) <= before - calls // 2:
        dropped.append(True)
    probe.deleteLater()
    return dropped


def _make_effectively_immortal(obj: object) -> bool:
    """Give a singleton spare references, as CPython 3.12 does for all of them."""
    before = sys.getrefcount(obj)
    count = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field of every object
    count.value += _SPARE_REFERENCES
    # Other code may take or drop a few references meanwhile; a wrong layout would be far off.
    if abs(sys.getrefcount(obj) - before - _SPARE_REFERENCES) > 10_000:
        # Not the layout we expected (a debug build): undo rather than corrupt something else.
        count.value -= _SPARE_REFERENCES
        return False
    return True


def _protect_against_pyside_reference_bug() -> None:
    try:
        dropped = _pyside_drops_references()
    except Exception:  # noqa: BLE001 - a failed probe must not stop the app from starting
        log.exception("checking PySide6 for its reference-count bug failed")
        return
    for obj in dropped:
        if _make_effectively_immortal(obj):
            log.warning(
                "PySide6 %s drops references to %r on Python %d.%d; compensated. "
                "Use PySide6 < 6.12 or Python >= 3.12 to avoid this.",
                _pyside_version(),
                obj,
                *sys.version_info[:2],
            )
        else:
            log.error("PySide6 drops references to %r and this Python cannot be compensated", obj)


def _pyside_version() -> str:
    import PySide6

    return str(getattr(PySide6, "__version__", "?"))


_protect_against_pyside_reference_bug()
