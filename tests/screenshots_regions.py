"""Screenshots of painting regions in a real window: a mask being painted, and a result made with it.

    python tests/screenshots_regions.py [OUTPUT_FOLDER] --result RESULT.png [--sky SKY.png]

Loads ../shared/images/tubingen.jpg with starry_night.jpg and the_scream.jpg, opens Regions, puts
the sky mask (``--sky``, else made from the photo's colours as benchmarks/regions_speed.py makes
it) into Starry Night's region and paints part of the ground for The Scream with the mouse, then
saves regions-painting.png. With ``--result`` (a picture the command line made from the same
photo, paintings and masks, e.g. docs/images/regions-sky-starry-ground-scream-512.png) that
picture goes into History as the run's result (after Fill gives The Scream all the sky leaves, as
its mask did) and regions-result.png shows it, regions-over-result.png the regions painted over it.
Runs under its own Xvfb when there is no DISPLAY (tests/screenshots.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "images"
CONTENT, STARRY, SCREAM = IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg", IMAGES / "the_scream.jpg"

log = logging.getLogger("screenshots")


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", nargs="?", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--result", type=Path, help="a picture made with the same inputs and masks")
    parser.add_argument("--sky", type=Path, help="the sky's mask (default: made from the photo)")
    parser.add_argument("--window", default="1400x900")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not all(path.is_file() for path in (CONTENT, STARRY, SCREAM)):
        print(f"skipped: {IMAGES} with tubingen, starry_night and the_scream is not available")
        return 0
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.window.split("x"))
    shots = _module(ROOT / "tests" / "screenshots.py", "painterly_screenshots")
    server = None
    if not os.environ.get("DISPLAY"):
        server, display = shots.start_xvfb(width + 200, height + 100)
        os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    settings = tempfile.TemporaryDirectory(prefix="painterly-screenshots-")
    os.environ["PAINTERLY_CONFIG_DIR"] = settings.name
    try:
        return _run(args, output, width, height, Path(settings.name))
    finally:
        settings.cleanup()
        if server is not None:
            server.terminate()
            server.wait(10)


def _run(args: argparse.Namespace, output: Path, width: int, height: int, scratch: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from engine.imageio import load_image
    from engine.records import Finished
    from engine.regions import load_mask
    from ui.app import create_application, create_window, load_files
    from ui.qtutil import rgb_to_qimage

    app = create_application([sys.argv[0]])
    window = create_window()
    window.resize(width, height)
    window.move(40, 30)
    window.show()
    saved: list[Path] = []

    def settle(milliseconds: int = 600) -> None:
        for _ in range(max(1, milliseconds // 20)):
            app.processEvents()
            time.sleep(0.02)

    def grab(name: str) -> None:
        settle()
        frame = window.frameGeometry()
        picture = window.screen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        if picture.isNull():
            picture = window.grab()
        path = output / f"{name}.png"
        picture.save(str(path))
        saved.append(path)
        log.info("saved %s (%dx%d)", path, picture.width(), picture.height())

    load_files(window, [CONTENT, STARRY, SCREAM])
    settle(1500)
    regions = window.regions
    window.content_pane.regions_button.setChecked(True)
    settle()
    sky_path = args.sky
    if sky_path is None:
        speed = _module(ROOT / "benchmarks" / "regions_speed.py", "regions_speed")
        sky_path = speed.sky_mask(scratch)["sky"]
    starry, scream = (row.region_id for row in window.style_list.rows)
    regions.masks.load_layer(starry, load_mask(sky_path).weight, "Load sky")
    editor = regions.editor
    editor.choose_region(scream)
    editor.set_brush_size(70)
    canvas = editor.canvas

    def mouse(kind: QEvent.Type, x: float, y: float, buttons: Qt.MouseButton) -> None:
        point = canvas.to_widget(x, y)
        button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
        modifiers = Qt.KeyboardModifier.NoModifier
        event = QMouseEvent(kind, point, canvas.mapToGlobal(point), button, buttons, modifiers)
        QApplication.sendEvent(canvas, event)

    mask_width, mask_height = regions.masks.size
    # Two strokes across the river and the houses' lower half, as a hand would paint them.
    for row in (0.93, 0.83, 0.73):
        y = row * mask_height
        mouse(QEvent.Type.MouseButtonPress, 0.02 * mask_width, y, Qt.MouseButton.LeftButton)
        for step in range(1, 40):
            mouse(QEvent.Type.MouseMove, (0.02 + 0.6 * step / 39) * mask_width, y, Qt.MouseButton.LeftButton)
        mouse(QEvent.Type.MouseButtonRelease, 0.62 * mask_width, y, Qt.MouseButton.NoButton)
    mouse(QEvent.Type.MouseMove, 0.66 * mask_width, 0.68 * mask_height, Qt.MouseButton.NoButton)
    grab("regions-painting")

    if args.result is not None:
        # The picture was made with the sky and the rest as the ground: Fill gives The Scream the rest.
        regions.masks.fill(scream)
        job = window._validated_inputs()
        if job is None:
            log.error("the window refused its inputs: %s", window.message_bar.text)
            return 1
        picture = load_image(args.result)
        finished = Finished(job=job, image=picture.rgb, iterations=150, seconds=0.0, device="CPU", losses={})
        entry = window.model.add_to_history(finished, rgb_to_qimage(picture.rgb))
        window.content_pane.regions_button.setChecked(False)
        window.model.view(entry)
        grab("regions-result")
        window.content_pane.regions_button.setChecked(True)
        editor.paint_over.setCurrentIndex(1)
        grab("regions-over-result")
    window.close()
    window.shutdown()
    print("\n".join(str(path) for path in saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
