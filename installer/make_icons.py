"""Render the app icon's raster forms from its one source, resources/icons/painterly.svg.

    QT_QPA_PLATFORM=offscreen .venv/bin/python installer/make_icons.py

Writes resources/painterly.png (512 px: the Linux desktop entry's icon, which
the bundle carries), installer/icons/painterly.ico (Windows executable and
installer) and installer/icons/painterly.icns (macOS app).  The outputs are
committed, so a build needs no SVG renderer; run this again after changing the
SVG.  Qt renders the SVG (Pillow cannot read SVG); Pillow writes ICO and ICNS.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "resources" / "icons" / "painterly.svg"
PNG = REPO / "resources" / "painterly.png"
ICO = REPO / "installer" / "icons" / "painterly.ico"
ICNS = REPO / "installer" / "icons" / "painterly.icns"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(size: int) -> Image.Image:
    """The SVG as a size x size RGBA image."""
    from PySide6.QtCore import QBuffer, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - Qt needs one
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"{SOURCE} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    big = render(1024)
    PNG.parent.mkdir(parents=True, exist_ok=True)
    big.resize((512, 512), Image.Resampling.LANCZOS).save(PNG, optimize=True)
    ICO.parent.mkdir(parents=True, exist_ok=True)
    # Each ICO size rendered from the vector source, not downscaled, so small sizes stay crisp.
    frames = [render(s) for s in ICO_SIZES]
    frames[-1].save(ICO, format="ICO", sizes=[(s, s) for s in ICO_SIZES], append_images=frames[:-1])
    big.save(ICNS, format="ICNS")
    for path in (PNG, ICO, ICNS):
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
