"""Does the window paint as fast as the command line, and does it stay responsive while it does?

    .venv/bin/python benchmarks/window_threads.py [--size 256] [--iterations 10] [--rounds 2]
                                                   [--out benchmarks/results/window-threads.json]

Each configuration runs in a fresh process on ../shared/images/tubingen.jpg and starry_night.jpg
(default preset, one level at --size):

- ``cli``: ``main.py stylize --json``, as a person runs it;
- ``window-before``: the window as it was, the engine capped at one thread fewer than the cores
  ("leaving one core to the window") and no priority change;
- ``window-now``: the window as it is (ui.worker: the command line's thread count, the engine's
  thread at lowered priority);
- ``window-nice0``: the same without the nice value on Linux (QThread's LowPriority alone, which
  Linux ignores for ordinary threads), to see what the nice value buys and costs.

Each window run is the real MainWindow (offscreen, shown, so previews are painted) started from
its Run button. Reported per configuration: the seconds per iteration (median of the iterations
after the first two, from the engine's own elapsed times) and the event loop's lateness while the
run goes: a 10 ms precise QTimer in the GUI thread, how much later than asked each tick came
(median, 95th percentile, maximum). The rounds alternate the configurations, so a machine that gets
busier affects all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "images"
CONTENT = IMAGES / "tubingen.jpg"
STYLE = IMAGES / "starry_night.jpg"
MODES = ("cli", "window-before", "window-now", "window-nice0")
TICK_MS = 10


def per_iteration(elapsed: list[float]) -> list[float]:
    """Seconds of each iteration from the elapsed time after each one."""
    return [later - earlier for earlier, later in zip([0.0, *elapsed], elapsed, strict=False)]


def steady(times: list[float]) -> float:
    """The median after two warm-up iterations (the first one also line-searches its step)."""
    settled = times[2:] or times
    return statistics.median(settled)


def run_cli(size: int, iterations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, str(ROOT / "main.py"), "stylize",
            "--content", str(CONTENT), "--style", str(STYLE),
            "--size", str(size), "--iterations", str(iterations), "--start-size", str(size),
            "--json", "--out", str(Path(folder) / "out.png"),
        ]  # fmt: skip
        lines = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    elapsed = []
    for line in lines.splitlines():
        record = json.loads(line)
        if record.get("event") == "progress":
            elapsed.append(float(record["elapsed"]))
    import torch

    return {"threads": torch.get_num_threads(), "elapsed": elapsed}


def run_window(size: int, iterations: int, before: bool, nice: int | None = None) -> dict[str, Any]:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path.insert(0, str(ROOT))
    import torch
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    import ui.worker
    from engine.params import StyleParams
    from engine.presets import apply_preset
    from ui.app import create_application, load_files
    from ui.main_window import MainWindow
    from ui.settings import AppLocations
    from ui.worker import Throttle, cpu_cores

    if nice is not None:
        ui.worker.ENGINE_NICE = nice

    app = create_application([sys.argv[0]])
    folder = tempfile.mkdtemp(prefix="painterly-bench-")
    throttle = Throttle(tune_threads=not before)
    if before:
        torch.set_num_threads(max(1, cpu_cores() - 1))  # what the worker used to do
    from engine.stylize import stylize

    threads: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        # In the run's own thread: torch's thread count is per thread once a thread has computed.
        threads.append(torch.get_num_threads())
        return stylize(*args, **kwargs)

    window = MainWindow(
        locations=AppLocations.under(folder), throttle=throttle, restore_settings=False, stylize=counted
    )
    window.resize(1280, 720)
    window.show()
    load_files(window, [CONTENT, STYLE])
    params = apply_preset(StyleParams(), "default").replace(size=size, start_size=size, iterations=iterations)
    window.params_panel.set_params(params)
    # The instant draft is made first, in its own thread: let it finish so it does not share the run's CPU.
    end = time.monotonic() + 30
    while window.model.draft is None and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    settle = time.monotonic() + 1.0
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.01)

    elapsed: list[float] = []
    lateness: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)

    def tick() -> None:
        if clock.isValid():
            lateness.append(clock.nsecsElapsed() / 1e6 - TICK_MS)
        clock.restart()

    def progress(record: Any) -> None:
        if record is not None and record.iteration > len(elapsed):
            elapsed.append(float(record.elapsed))

    timer.timeout.connect(tick)
    window.model.progress_changed.connect(progress)
    # A loop of our own: app.quit() would close the window, which may ask about the session first.
    loop = QEventLoop()
    window.model.ended.connect(loop.quit)
    window.model.state_changed.connect(lambda state: timer.start() if window.is_running else timer.stop())
    window.run_button.click()
    loop.exec()
    window.shutdown()
    return {"threads": threads[-1] if threads else None, "elapsed": elapsed, "lateness_ms": lateness}


def summarise(mode: str, raw: dict[str, Any]) -> dict[str, Any]:
    times = per_iteration(raw["elapsed"])
    out: dict[str, Any] = {
        "mode": mode,
        "threads": raw["threads"],
        "iterations": len(times),
        "seconds_per_iteration": round(steady(times), 4),
        "iteration_seconds": [round(t, 4) for t in times],
    }
    late = sorted(raw.get("lateness_ms") or [])
    if late:
        out["event_loop_lateness_ms"] = {
            "ticks": len(late),
            "median": round(statistics.median(late), 2),
            "p95": round(late[min(len(late) - 1, int(0.95 * len(late)))], 2),
            "max": round(late[-1], 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (CONTENT.is_file() and STYLE.is_file()):
        print(f"skipped: {IMAGES} with tubingen.jpg and starry_night.jpg is not available")
        return 0
    if args.child:
        if args.child == "cli":
            raw = run_cli(args.size, args.iterations)
        else:
            nice = 0 if args.child == "window-nice0" else None
            raw = run_window(args.size, args.iterations, before=args.child == "window-before", nice=nice)
        print(json.dumps(raw))
        return 0

    results: list[dict[str, Any]] = []
    for round_number in range(args.rounds):
        for mode in MODES:
            command = [
                sys.executable, __file__, "--child", mode, "--size", str(args.size),
                "--iterations", str(args.iterations),
            ]  # fmt: skip
            started = time.perf_counter()
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            raw = json.loads(output.strip().splitlines()[-1])
            summary = summarise(mode, raw) | {"round": round_number + 1}
            summary["wall_seconds"] = round(time.perf_counter() - started, 1)
            results.append(summary)
            late = summary.get("event_loop_lateness_ms", {})
            print(
                f"round {round_number + 1} {mode:14s} threads {summary['threads']}  "
                f"{summary['seconds_per_iteration']:.3f} s/iter  "
                + (
                    f"lateness median {late['median']} ms, p95 {late['p95']} ms, max {late['max']} ms"
                    if late
                    else ""
                ),
                flush=True,
            )
    by_mode = {
        mode: round(statistics.median(r["seconds_per_iteration"] for r in results if r["mode"] == mode), 4)
        for mode in MODES
    }
    report = {
        "benchmark": "window_threads",
        "size": args.size,
        "iterations": args.iterations,
        "rounds": args.rounds,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_average_at_end": os.getloadavg(),
        "median_seconds_per_iteration": by_mode,
        "runs": results,
    }
    print(json.dumps(by_mode))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
