"""Files a stranger could hand the window, and a guard that fails a test instead of hanging it."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

ESCAPES = "a\x1b]0;pwned\x07\nb.png"
BIDI = "photo\u202egnp.exe"
NOT_UTF8 = os.fsdecode(b"bad\xe9.png")


def png_bytes(width: int = 12, height: int = 9) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png() -> bytes:
    """A valid-looking PNG whose header claims 100000 x 100000 pixels (40 GB decoded)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each bad input and a piece of the one-line message it must end in."""
    folder.mkdir(parents=True, exist_ok=True)
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    directory = folder / "folder.png"
    directory.mkdir()
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    truncated = folder / "truncated.png"
    truncated.write_bytes(png_bytes(64, 64)[:70])
    text = folder / "notes.png"
    text.write_text("this is not a picture\n" * 20)
    not_utf8 = folder / NOT_UTF8
    not_utf8.write_bytes(b"junk")
    escapes = folder / ESCAPES
    escapes.write_bytes(b"junk")
    bidi = folder / BIDI
    bidi.write_bytes(b"junk")
    long_name = folder / ("long-" + "x" * 240 + ".png")
    long_name.write_bytes(b"junk")
    huge = folder / "huge.png"
    huge.write_bytes(huge_png())
    html = folder / "<b>bold.png"
    html.write_bytes(b"junk")
    return {
        "fifo": (fifo, "pipe (FIFO)"),
        "dev-zero": (Path("/dev/zero"), "is a device"),
        "folder": (directory, "is a folder"),
        "empty": (empty, "is empty"),
        "truncated": (truncated, "truncated"),
        "text": (text, "not a"),
        "not-utf8": (not_utf8, "bad\\udce9.png"),
        "escapes": (escapes, "a\\x1b]0;pwned\\x07\\x0ab.png"),
        "bidi": (bidi, "photo\\u202egnp.exe"),
        "long-name": (long_name, "long-xxxx"),
        "too-long-name": (folder / ("y" * 300 + ".png"), "too long"),
        "huge": (huge, "too large"),
        "html": (html, "<b>bold.png"),
        "missing": (folder / "gone.png", "does not exist"),
    }


_WATCHER = r"""
import os, sys, time
path, marker, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        time.sleep(0.01)
        continue
    open(marker, "w").close()
    os.close(fd)  # the blocked reader sees the end of the file and the test goes on
    time.sleep(0.01)
"""


@contextlib.contextmanager
def fifo_watch(fifo: Path, seconds: float = 300.0) -> Iterator[None]:
    """Fail (instead of hanging for ever) if anything in the block opens ``fifo`` to read it.

    A separate process, so it works even when the reader blocks inside Qt holding the GIL: it opens
    the FIFO for writing whenever someone waits on it, which also lets that reader go on.
    """
    marker = fifo.with_name(fifo.name + ".opened")
    watcher = subprocess.Popen([sys.executable, "-c", _WATCHER, str(fifo), str(marker), str(seconds)])
    try:
        yield
    finally:
        watcher.kill()
        watcher.wait()
    assert not marker.exists(), f"something opened the FIFO {fifo} to read it"
