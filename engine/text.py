"""Text from outside made safe to show: on a terminal, in a log, in a label."""

from __future__ import annotations

import unicodedata

# Control characters (C0, DEL, C1) and the invisible characters that reorder or hide text on a
# terminal or in a label (bidirectional overrides and isolates, zero-width characters): a file
# name or recipe that carries them could change the terminal's title, clear the screen, or make
# one string read as another.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u2060\ufeff") | frozenset(
    chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
)


def printable(text: object) -> str:
    """``text`` with every control or invisible formatting character shown as an inert escape."""
    text = str(text)
    if text.isprintable() and not _INVISIBLE.intersection(text):
        return text
    out = []
    for char in text:
        code = ord(char)
        if char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(_escape(code))
        else:
            out.append(char)
    return "".join(out)


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
