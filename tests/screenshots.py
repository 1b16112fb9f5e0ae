"""Screenshots of the studio as a person sees it: a real window, before, during and after a run.

    python tests/screenshots.py [OUTPUT_FOLDER] [--scale 2] [--size 256] [--iterations 60]
                                [--geometry 1280x720]

Runs the app in a real X11 window (it starts its own Xvfb when there is no DISPLAY, or always with
--xvfb), loads ../shared/images/tubingen.jpg and starry_night.jpg, runs the default preset at a
small size and saves empty.png, before.png, during.png, after.png and compare.png (with a -200
suffix at --scale 2) in OUTPUT_FOLDER (default docs/screenshots/).  Settings go to a temporary
folder, so the user's own are never read or changed.  Exits 0 without screenshots when
../shared/images is absent.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "images"
CONTENT = IMAGES / "tubingen.jpg"
STYLE = IMAGES / "starry_night.jpg"

log = logging.getLogger("screenshots")


def start_xvfb(width: int, height: int) -> tuple[subprocess.Popen[bytes], str]:
    """A private X server on the first free display number."""
    executable = shutil.which("Xvfb")
    if executable is None:
        raise SystemExit("Xvfb is not installed (apt-get install xvfb)")
    for number in range(99, 140):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        display = f":{number}"
        server = subprocess.Popen(
            [executable, display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return server, display
            if server.poll() is not None:
                break
            time.sleep(0.1)
        server.terminate()
    raise SystemExit("could not start Xvfb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", nargs="?", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--scale", type=float, default=1.0, help="display scaling (2 = 200%%)")
    parser.add_argument("--size", type=int, default=256, help="long edge of the painting in pixels")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument(
        "--window", "--geometry", default="1400x900", help="window size in logical pixels, e.g. 1280x720"
    )
    parser.add_argument("--xvfb", action="store_true", help="always use a private Xvfb")
    parser.add_argument(
        "--random-weights", action="store_true", help="tiny random network: fast layout checks"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if not (CONTENT.is_file() and STYLE.is_file()):
        print(f"skipped: {IMAGES} with tubingen.jpg and starry_night.jpg is not available")
        return 0
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.scale == 1 else f"-{round(args.scale * 100)}"
    width, height = (int(v) for v in args.window.split("x"))

    server = None
    if args.xvfb or not os.environ.get("DISPLAY"):
        # Room for the window at this scale, plus a margin like a real desktop's.
        server, display = start_xvfb(int((width + 200) * args.scale), int((height + 100) * args.scale))
        os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    os.environ["QT_SCALE_FACTOR"] = f"{args.scale:g}"
    settings = tempfile.TemporaryDirectory(prefix="painterly-screenshots-")
    os.environ["PAINTERLY_CONFIG_DIR"] = settings.name
    try:
        return _run(args, output, suffix, width, height)
    finally:
        settings.cleanup()
        if server is not None:
            server.terminate()
            server.wait(10)


def _run(args: argparse.Namespace, output: Path, suffix: str, width: int, height: int) -> int:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from engine.params import StyleParams
    from engine.presets import apply_preset
    from ui.app import create_application, create_window, load_files

    app = create_application([sys.argv[0]])
    window = create_window()
    if args.random_weights:
        from engine.weights import random_weights

        weights = random_weights()
        window.model.weights_factory = lambda: weights
    window.resize(width, height)
    window.move(40, 30)
    window.show()
    shots: list[Path] = []
    state = {"during": False, "previews": 0}

    def grab(name: str) -> None:
        app.processEvents()
        screen = window.screen()
        frame = window.frameGeometry()
        picture = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        if picture.isNull():
            picture = window.grab()
        path = output / f"{name}{suffix}.png"
        picture.save(str(path))
        shots.append(path)
        log.info("saved %s (%dx%d)", path, picture.width(), picture.height())

    def step_empty() -> None:
        grab("empty")
        load_files(window, [CONTENT, STYLE])
        params = apply_preset(StyleParams(), "default").replace(size=args.size, iterations=args.iterations)
        window.params_panel.set_params(params)
        QTimer.singleShot(800, step_before)

    def step_before() -> None:
        grab("before")
        window.model.frame_changed.connect(
            lambda frame: frame and on_preview(frame.image, frame.record.iteration)
        )
        window.model.finished.connect(lambda finished: QTimer.singleShot(800, step_after))
        window.model.failed.connect(lambda message, entry: QTimer.singleShot(800, step_after))
        window.start_run()

    def on_preview(image: object, iteration: int) -> None:
        state["previews"] += 1
        if not state["during"] and iteration >= max(3, args.iterations // 3):
            state["during"] = True
            QTimer.singleShot(300, lambda: grab("during"))

    def step_after() -> None:
        grab("after")
        window.result.compare.setValue(450)
        QTimer.singleShot(400, step_compare)

    def step_compare() -> None:
        grab("compare")
        window.result.compare.setValue(0)
        # exit, not close: closing may ask whether to keep the session (a modal question nobody answers).
        app.exit(0)

    QTimer.singleShot(1200, step_empty)
    # Never hang a CI job: give up after a generous time.
    QTimer.singleShot(15 * 60 * 1000, lambda: (log.error("timed out"), QApplication.quit()))
    app.exec()
    window.shutdown()
    print("\n".join(str(p) for p in shots))
    return 0 if len(shots) >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
