"""GPU benchmark for a lent CUDA machine (written for one H100): one command, about 8 minutes.

    .venv/bin/python benchmarks/gpu.py                  # everything, within --budget seconds
    .venv/bin/python benchmarks/gpu.py --smoke --device cpu   # check the script itself, tiny and slow

Measures, each configuration in a fresh process (see bench.py for how):

1. complete runs against the product goals:
   * 512 px, 500 L-BFGS iterations (goal: under 2 s), with the default preset (its coarse-to-fine
     pyramid, if it has one) and with gatys2016 at one level; each twice in one process, so the
     first (cold: cuDNN autotuning, allocator growth) and second (warm, as in a long-lived app) show;
   * a 2048 px result with the default preset and its own iteration count (goal: under 30 s);
   both in float32 and bfloat16 network precision;
2. seconds per iteration and peak memory at 512, 1024, 2048 and 4096 px for float32 vs bfloat16
   network precision (StyleParams.precision) and channels_last on vs off (the engine uses
   channels_last on CUDA by default; the child process sets it through engine.stylize.RunOptions,
   see bench._run_options).

Cases run in that order and stop when ``--budget`` seconds are spent; what was skipped is listed.
Without CUDA it prints a message and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import (
    BENCH_DIR,
    describe_machine,
    fmt_mib,
    fmt_seconds,
    kill_current_child,
    markdown_table,
    parse_list,
    parse_sizes,
    probe,
    resolve_images,
    run_ours_child,
)


@dataclass
class FullCase:
    label: str
    preset: str
    size: int
    iterations: int | None  # None: the preset's own
    precision: str
    runs: int
    goal_s: float | None
    single_level: bool = False


@dataclass
class SweepCase:
    size: int
    precision: str
    channels_last: bool
    iterations: int


@dataclass
class Outcome:
    label: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def sweep_iterations(size: int) -> int:
    """Measured iterations after warm-up: cheap on a GPU, so more than bench.py's defaults."""
    if size <= 1024:
        return 20
    if size <= 2048:
        return 10
    return 5


def full_cases(args: argparse.Namespace) -> list[FullCase]:
    small, large = (64, 96) if args.smoke else (512, 2048)
    iterations = 4 if args.smoke else 500
    large_iterations = 4 if args.smoke else None
    cases = []
    for precision in args.precisions:
        cases += [
            FullCase(
                f"{small} px, {iterations} L-BFGS, default preset",
                "default",
                small,
                iterations,
                precision,
                2,
                2.0,
            ),
            FullCase(
                f"{small} px, {iterations} L-BFGS, gatys2016 (one level)",
                "gatys2016",
                small,
                iterations,
                precision,
                2,
                2.0,
                single_level=True,
            ),
            FullCase(f"{large} px, default preset", "default", large, large_iterations, precision, 1, 30.0),
        ]
    return cases


def sweep_cases(args: argparse.Namespace) -> list[SweepCase]:
    cases = []
    for size in args.sizes:
        n = args.iterations or (3 if args.smoke else sweep_iterations(size))
        for precision in args.precisions:
            for channels_last in (True, False):
                cases.append(SweepCase(size, precision, channels_last, n))
    return cases


class Runner:
    def __init__(
        self, args: argparse.Namespace, out_file: Any, work: Path, content: Path, style: Path
    ) -> None:
        self.args = args
        self.out_file = out_file
        self.work = work
        self.content = content
        self.style = style
        self.started = time.monotonic()
        self.skipped: list[str] = []
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")

    def remaining(self) -> float:
        return self.args.budget - (time.monotonic() - self.started)

    def emit(self, payload: dict[str, Any]) -> None:
        self.out_file.write(json.dumps(payload, default=str) + "\n")
        self.out_file.flush()

    def child(self, label: str, spec: dict[str, Any], log_name: str) -> Outcome:
        remaining = self.remaining()
        if remaining < self.args.min_case_seconds:
            self.skipped.append(label)
            return Outcome(label, error="skipped: budget spent")
        timeout = min(remaining, self.args.case_timeout)
        process, report = run_ours_child(
            spec, log_path=self.work / "logs" / log_name, timeout=timeout, env=self.env
        )
        if report is None:
            reason = "timed out" if process.timed_out else f"exit {process.returncode}: {process.tail(4)}"
            outcome = Outcome(label, {"wall_s": process.wall_s}, error=reason)
        else:
            report.update(
                process_wall_s=process.wall_s,
                maxrss_mib=process.maxrss_mib,
                nvidia_smi_peak_mib=process.gpu_peak_mib,
                nvidia_smi_measure=process.gpu_measure,
            )
            outcome = Outcome(label, report)
        self.emit({"label": label, "spec": spec, "error": outcome.error, **outcome.data})
        return outcome

    def base_spec(self, preset: str, size: int, precision: str) -> dict[str, Any]:
        return {
            "content": str(self.content),
            "style": str(self.style),
            "preset": preset,
            "size": size,
            "device": self.args.device,
            "precision": precision,
            "warmup": self.args.warmup,
        }

    def full(self, case: FullCase, index: int) -> Outcome:
        spec = self.base_spec(case.preset, case.size, case.precision)
        spec.update(
            iterations=case.iterations,
            optimizer="lbfgs",
            runs=case.runs,
            single_level=case.single_level,
            save=str(self.work / f"full-{index}-{case.preset}-{case.size}-{case.precision}.png"),
        )
        label = f"{case.label}, {case.precision}"
        print(f"  {label} ...", flush=True)
        outcome = self.child(label, spec, f"full-{index}")
        outcome.data["goal_s"] = case.goal_s
        return outcome

    def sweep(self, case: SweepCase) -> Outcome:
        spec = self.base_spec("gatys2016", case.size, case.precision)
        spec.update(
            iterations=self.args.warmup + case.iterations,
            optimizer="lbfgs",
            channels_last=case.channels_last,
            single_level=True,
        )
        label = f"{case.size} px {case.precision} channels_last={'on' if case.channels_last else 'off'}"
        print(f"  {label} ...", flush=True)
        outcome = self.child(label, spec, f"sweep-{case.size}-{case.precision}-cl{int(case.channels_last)}")
        outcome.data.setdefault("case", case)
        return outcome


def status(run: dict[str, Any]) -> str:
    """'completed', or why not, plus anything the engine changed on its own (tiles, precision...)."""
    words = [str(run.get("reason", "-"))]
    words += [f"engine: {text}" for text in run.get("notices", []) + run.get("fallbacks", [])]
    return "; ".join(words)


def full_table(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        runs = o.data.get("runs") or []
        seconds = [r["engine_seconds"] for r in runs]
        goal = o.data.get("goal_s")
        verdict = ", ".join(
            f"{kind} {'met' if value < goal else 'missed'}"
            for kind, value in zip(("cold", "warm"), seconds, strict=False)
            if goal is not None
        )
        sizes = runs[-1]["sizes"] if runs else []
        rows.append(
            [
                o.label,
                str(runs[-1]["iterations"]) if runs else "-",
                fmt_seconds(seconds[0]) if seconds else "-",
                fmt_seconds(seconds[1]) if len(seconds) > 1 else "-",
                f"< {goal:g} s: {verdict}" if goal and verdict else "-",
                " > ".join(f"{w}x{h}" for w, h in sizes) or "-",
                fmt_mib(o.data.get("cuda_max_allocated_mib")),
                o.error or status(runs[-1] if runs else {}),
            ]
        )
    headers = ["complete run", "iterations", "cold s", "warm s", "goal", "levels", "max alloc MiB", "status"]
    return markdown_table(headers, rows)


def sweep_table(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        case: SweepCase = o.data["case"]
        effective = o.data.get("channels_last_effective")
        rows.append(
            [
                str(case.size),
                "x".join(map(str, o.data["sizes"][-1])) if o.data.get("sizes") else "-",
                case.precision,
                ("on" if case.channels_last else "off")
                + ("" if effective in (None, case.channels_last) else " (!)"),
                fmt_seconds(o.data.get("s_per_iter")),
                fmt_mib(o.data.get("cuda_max_allocated_mib")),
                fmt_mib(o.data.get("cuda_max_reserved_mib")),
                fmt_mib(o.data.get("nvidia_smi_peak_mib")),
                o.error or status(o.data),
            ]
        )
    headers = [
        "size",
        "image",
        "precision",
        "channels_last",
        "s/iter",
        "alloc MiB",
        "reserved MiB",
        "smi MiB",
    ]
    return markdown_table([*headers, "status"], rows)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[512, 1024, 2048, 4096])
    parser.add_argument("--precisions", type=parse_list, default=["float32", "bfloat16"])
    parser.add_argument("--iterations", type=int, default=None, help="measured iterations per sweep case")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole benchmark")
    parser.add_argument("--case-timeout", type=float, default=240.0, help="seconds for one case at most")
    parser.add_argument("--min-case-seconds", type=float, default=20.0, help="skip a case with less left")
    parser.add_argument("--no-full", action="store_true", help="skip the complete runs")
    parser.add_argument("--no-sweep", action="store_true", help="skip the per-iteration sweep")
    parser.add_argument("--content")
    parser.add_argument("--style")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON lines (default benchmarks/results/gpu-<time>.json)"
    )
    parser.add_argument(
        "--device", default="cuda", choices=["cuda", "cpu"], help="cpu only to test this script"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and iterations, to test this script")
    args = parser.parse_args(argv)
    if args.smoke and args.sizes == [512, 1024, 2048, 4096]:
        args.sizes = [64]
    bad = [p for p in args.precisions if p not in ("float32", "bfloat16", "float16")]
    if bad:
        print(f"gpu.py: unknown precision(s) {bad}", file=sys.stderr)
        return 2
    info = probe()["machine"]
    if args.device == "cuda" and not info["cuda"]:
        print(
            "gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing to measure, skipping."
        )
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = (args.out or BENCH_DIR / "results" / f"gpu-{stamp}.json").resolve()
    work = out_path.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    print(describe_machine(info), flush=True)
    content, style, source = resolve_images(args.content, args.style, work)
    info.update(
        content=str(content), style=str(style), images=source, arguments=vars(args) | {"out": str(out_path)}
    )
    fulls: list[Outcome] = []
    sweeps: list[Outcome] = []
    with out_path.open("w") as out_file:
        out_file.write(json.dumps(info, default=str) + "\n")
        runner = Runner(args, out_file, work, content, style)
        try:
            if not args.no_full:
                print("\nComplete runs:", flush=True)
                for index, case in enumerate(full_cases(args)):
                    fulls.append(runner.full(case, index))
            if not args.no_sweep:
                print("\nPer-iteration sweep (gatys2016 layers, one level, L-BFGS):", flush=True)
                for case in sweep_cases(args):
                    sweeps.append(runner.sweep(case))
        except KeyboardInterrupt:
            kill_current_child()
            print("\ninterrupted; showing what was measured", file=sys.stderr)
    print(f"\nJSON lines: {out_path}\nimages and logs: {work}")
    if runner.skipped:
        print(f"Skipped (budget of {args.budget:g} s spent): " + "; ".join(runner.skipped))
    name = info["gpus"][0]["name"] if info.get("gpus") else args.device
    done_fulls = [o for o in fulls if not o.error.startswith("skipped")]
    done_sweeps = [o for o in sweeps if not o.error.startswith("skipped")]
    if done_fulls:
        print(f"\n## {name}: complete runs (engine seconds: job start to final image)\n")
        print(full_table(done_fulls))
    if done_sweeps:
        print(f"\n## {name}: seconds per iteration and peak memory\n")
        print(sweep_table(done_sweeps))
    elapsed = time.monotonic() - runner.started
    print(f"\n(total {elapsed:.0f} s; s/iter is the median after {args.warmup} warm-up iterations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
