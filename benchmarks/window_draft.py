"""How soon the window shows the instant draft after the second input arrives.

    .venv/bin/python benchmarks/window_draft.py [--size 512] [--repeats 7] [--out results.json]
    .venv/bin/python benchmarks/window_draft.py --screenshot docs/screenshots/draft.png   # under Xvfb

One warm window (the engine and the draft's networks loaded, one draft made and put away first), then
for each repeat and each order: the first input is in the window, the second is dropped (imported from
its file, as a drop or Open does) and the clock runs until the draft is on the view and painted. Each
repeat moves Strength a little while one input is missing, so every draft is computed afresh (a draft
already made for the same settings would be shown at once). The time includes the window's debounce
(ui.draft.DRAFT_DELAY_MS). Reported: the median and the range, with the import's share.

With --screenshot the window is shown at 1400 x 900 on a private Xvfb (as tests/screenshots.py does),
the draft of tubingen / starry_night is waited for and the window grabbed into the given file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


def wait_until(app: Any, done: Callable[[], bool], timeout: float) -> float:
    """Run the event loop until ``done()``; the moment it became true (perf_counter)."""
    from PySide6.QtCore import QEventLoop

    limit = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > limit:
            raise TimeoutError("the window did not get there in time")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.001)
    return time.perf_counter()


def settle(app: Any, seconds: float) -> None:
    end = time.perf_counter() + seconds
    wait_until(app, lambda: time.perf_counter() >= end, seconds + 5)


def measure(
    app: Any, window: Any, content: Path, style: Path, second: str, strength: float
) -> dict[str, float]:
    """Remove the ``second`` input, set Strength, then drop the input back and time the draft."""
    panel = window.params_panel
    if second == "style":
        for index in reversed(range(len(window.style_list.rows))):
            window.style_list.remove(index)
    else:
        window.content_pane.clear()
    panel.set_params(panel.last_valid.replace(strength=strength))
    settle(app, 0.6)
    assert window.model.draft is None
    started = time.perf_counter()
    if second == "style":
        window.style_list.add_images([window.importer.from_path(style)])
    else:
        window.content_pane.set_image(window.importer.from_path(content))
    imported = time.perf_counter()

    def shown() -> bool:
        draft = window.model.draft
        return draft is not None and draft.job.params.strength == strength

    wait_until(app, shown, 30)
    window.result.view.viewport().repaint()  # painted, not only handed to the view
    done = time.perf_counter()
    draft = window.model.draft
    return {
        "seconds": done - started,
        "import": imported - started,
        "draft_thread": draft.seconds,
        "width": draft.image.width(),
        "height": draft.image.height(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--content", type=Path, default=IMAGES / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=IMAGES / "starry_night.jpg")
    parser.add_argument("--size", type=int, default=512, help="long edge of the output (the draft's size)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    parser.add_argument("--screenshot", type=Path, default=None, help="grab the window with the draft")
    parser.add_argument("--window", default="1400x900")
    args = parser.parse_args()
    if not (args.content.is_file() and args.style.is_file()):
        print(f"skipped: {args.content} or {args.style} is missing")
        return 0

    server = None
    if args.screenshot is not None:
        from tests.screenshots import start_xvfb

        width, height = (int(v) for v in args.window.split("x"))
        server, display = start_xvfb(width + 200, height + 100)
        os.environ["DISPLAY"] = display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    settings = tempfile.TemporaryDirectory(prefix="painterly-window-draft-")
    os.environ["PAINTERLY_CONFIG_DIR"] = settings.name  # the user's own settings are never touched
    try:
        return run(args)
    finally:
        settings.cleanup()
        if server is not None:
            server.terminate()
            server.wait(10)


def run(args: argparse.Namespace) -> int:
    from engine.params import StyleParams
    from ui.app import create_application, create_window, load_files
    from ui.draft import DRAFT_DELAY_MS

    app = create_application([sys.argv[0]])
    window = create_window()
    width, height = (int(v) for v in args.window.split("x"))
    window.resize(width, height)
    window.move(40, 30)
    window.show()
    window.params_panel.set_params(StyleParams(size=args.size))
    # Warm: the device probe has loaded the engine and the draft thread the networks, and one draft
    # of these very pictures was made (their first decode and onnxruntime's first run at this size).
    wait_until(app, lambda: window.model.devices is not None, 120)
    load_files(window, [args.content, args.style])
    wait_until(app, lambda: window.model.draft is not None, 120)
    if window.drafts.available is False:
        print(f"no draft: {window.drafts.unavailable_reason}")
        return 1

    if args.screenshot is not None:
        settle(app, 1.0)
        screen = window.screen()
        frame = window.frameGeometry()
        picture = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        if picture.isNull():
            picture = window.grab()
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        picture.save(str(args.screenshot))
        print(f"saved {args.screenshot} ({picture.width()} x {picture.height()})")
        window.close()
        window.shutdown()
        return 0

    rows: dict[str, list[dict[str, float]]] = {"style": [], "photo": []}
    strength = 1.0
    for _ in range(args.repeats):
        for second in rows:
            strength = round(strength - 0.01, 2)
            rows[second].append(measure(app, window, args.content, args.style, second, strength))
    window.close()
    window.shutdown()

    report: dict[str, Any] = {
        "what": "second input dropped -> instant draft painted in the window (warm window)",
        "content": args.content.name,
        "style": args.style.name,
        "size": args.size,
        "debounce_ms": DRAFT_DELAY_MS,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "orders": {},
    }
    for second, measured in rows.items():
        seconds = [row["seconds"] for row in measured]
        summary = {
            "median_s": round(statistics.median(seconds), 3),
            "min_s": round(min(seconds), 3),
            "max_s": round(max(seconds), 3),
            "median_import_s": round(statistics.median(row["import"] for row in measured), 3),
            "median_draft_thread_s": round(statistics.median(row["draft_thread"] for row in measured), 3),
            "draft_size": [measured[0]["width"], measured[0]["height"]],
            "runs": [{k: round(v, 3) for k, v in row.items()} for row in measured],
        }
        report["orders"][f"{second} second"] = summary
        print(
            f"{second} arrives second: median {summary['median_s']:.2f} s "
            f"(range {summary['min_s']:.2f}-{summary['max_s']:.2f} s; "
            f"import {summary['median_import_s']:.2f} s, "
            f"debounce {DRAFT_DELAY_MS / 1000:.2f} s, draft thread {summary['median_draft_thread_s']:.2f} s) "
            f"at {summary['draft_size'][0]} x {summary['draft_size'][1]} px"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
