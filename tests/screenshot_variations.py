"""A screenshot of the Variations grid over the real window, as a person sees it.

    python tests/screenshot_variations.py [OUTPUT_FOLDER] [--size 160] [--iterations 40] [--count 8]

Opens the window in a private Xvfb (tests/screenshots.start_xvfb), loads ../shared/images/tubingen.jpg
and starry_night.jpg, runs Run > Variations with the default preset, waits for every tile, clicks the
second one (its settings become the current ones and the controls show them) and saves the whole
screen as variations.png in OUTPUT_FOLDER (default docs/screenshots/). Settings go to a temporary
folder. Exits 0 without a screenshot when ../shared/images is absent.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from screenshots import CONTENT, STYLE, start_xvfb  # noqa: E402

log = logging.getLogger("screenshot-variations")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", nargs="?", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--size", type=int, default=160, help="long edge of each tile")
    parser.add_argument("--iterations", type=int, default=40, help="iterations per tile")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--random-weights", action="store_true", help="tiny random network: layout only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not (CONTENT.is_file() and STYLE.is_file()):
        print("skipped: the shared images are not available")
        return 0
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    server, display = start_xvfb(1600, 1000)
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    settings = tempfile.TemporaryDirectory(prefix="painterly-screenshots-")
    os.environ["PAINTERLY_CONFIG_DIR"] = settings.name
    try:
        return _run(args, output)
    finally:
        settings.cleanup()
        server.terminate()
        server.wait(10)


def _run(args: argparse.Namespace, output: Path) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ui.app import create_application, create_window, load_files

    app = create_application([sys.argv[0]])
    window = create_window()
    if args.random_weights:
        from engine.weights import random_weights

        weights = random_weights()
        window.model.weights_factory = lambda: weights
    window.resize(1400, 900)
    window.move(20, 20)
    window.show()
    variations = window.variations
    variations.count, variations.tile_size, variations.tile_iterations = (
        args.count,
        args.size,
        args.iterations,
    )
    saved: list[Path] = []

    def start() -> None:
        load_files(window, [CONTENT, STYLE])
        QTimer.singleShot(1500, variations.start)
        QTimer.singleShot(3000, wait_for_grid)

    def wait_for_grid() -> None:
        if variations.is_painting:
            QTimer.singleShot(1000, wait_for_grid)
            return
        dialog = variations.dialog
        dialog.move(window.x() + 160, window.y() + 110)
        dialog.click_tile(1)
        QTimer.singleShot(1200, grab)

    def grab() -> None:
        app.processEvents()
        picture = window.screen().grabWindow(0, 0, 0, 1440, 940)
        path = output / "variations.png"
        picture.save(str(path))
        saved.append(path)
        log.info("saved %s", path)
        window.close()

    QTimer.singleShot(1200, start)
    QTimer.singleShot(30 * 60 * 1000, lambda: (log.error("timed out"), QApplication.quit()))
    app.exec()
    window.shutdown()
    print("\n".join(str(p) for p in saved))
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
